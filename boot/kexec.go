package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/netstate"
	"github.com/homestaker/homestaker/nixbuild"
	"github.com/homestaker/homestaker/plan"
)

// KexecSyscalls is the kernel interface a kexec needs; tests replace it.
type KexecSyscalls interface {
	// KexecFileLoad is kexec_file_load(2).
	KexecFileLoad(kernelFd, initrdFd int, cmdline string, flags int) error
	// Sync is sync(2).
	Sync()
	// Reboot is reboot(2) with one of the LINUX_REBOOT_CMD_* commands.
	Reboot(cmd int) error
}

// LinuxSyscalls is the real KexecSyscalls.
type LinuxSyscalls struct{}

// KexecFileLoad calls kexec_file_load(2).
func (LinuxSyscalls) KexecFileLoad(kernelFd, initrdFd int, cmdline string, flags int) error {
	return unix.KexecFileLoad(kernelFd, initrdFd, cmdline, flags)
}

// Sync calls sync(2).
func (LinuxSyscalls) Sync() { unix.Sync() }

// Reboot calls reboot(2).
func (LinuxSyscalls) Reboot(cmd int) error { return unix.Reboot(cmd) }

// Kexec checks a machine, carries its network over and boots a node image
// from RAM. Its fields are the capabilities it uses; the zero value of each
// is the real one.
type Kexec struct {
	// Root is where /proc, /sys and /dev are read ("" is "/").
	Root string
	// Sys is the kernel interface (nil: LinuxSyscalls).
	Sys KexecSyscalls
	// Euid returns the effective user id (nil: os.Geteuid).
	Euid func() int
	// Machine returns the machine's architecture as uname -m says it (nil:
	// uname(2)).
	Machine func() (string, error)
	// ReadNetwork records the running network (nil: netstate.Read, live).
	ReadNetwork func(ctx context.Context) (netstate.State, error)
	// InRAM reports whether files written under path live in RAM (tmpfs),
	// so a copy of the initrd there costs memory (nil: statfs(2)).
	InRAM func(path string) (bool, error)
	// LookPath finds kexec-tools' kexec for kernels without
	// kexec_file_load (nil: exec.LookPath).
	LookPath func(string) (string, error)
	// Run runs kexec-tools (nil: disk.ExecRunner).
	Run Runner
	// Now is the clock (nil: time.Now); Sleep waits (nil: a timer that
	// stops with ctx).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

func (k *Kexec) path(p string) string {
	root := k.Root
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, p)
}

func (k *Kexec) sys() KexecSyscalls {
	if k.Sys == nil {
		return LinuxSyscalls{}
	}
	return k.Sys
}

func (k *Kexec) now() time.Time {
	if k.Now == nil {
		return time.Now()
	}
	return k.Now()
}

// KexecRequest is what to boot and what the node was configured with.
type KexecRequest struct {
	Image KexecImage
	// Plan is the node's answers; nil when they are not known (the SSH key
	// and data-disk checks are then reported as not checked).
	Plan *plan.Plan
	// PlanSource names where Plan came from, for messages.
	PlanSource string
	// KnownHosts is the node's known_hosts line ("name ssh-ed25519 AAAA…"),
	// "" when unknown; it is carried to the node and its key's fingerprint
	// is shown to the user.
	KnownHosts string
	// TempDir is where the initrd copy with the carry-over archive goes.
	TempDir string
}

// CheckStatus is the outcome of one preflight check.
type CheckStatus int

// Outcomes of a check.
const (
	CheckOK CheckStatus = iota
	CheckWarning
	CheckNotChecked
	CheckRefused
)

func (s CheckStatus) String() string {
	return [...]string{"ok", "warning", "not checked", "refused"}[s]
}

// Check is one preflight check: what was found and, when it refuses or
// warns, what the user can do.
type Check struct {
	Name   string
	Status CheckStatus
	// Detail is what was found, as a sentence.
	Detail string
	// Fix is what to do about it ("" when nothing is to be done).
	Fix string
}

// Preflight is the result of every check before a kexec, with what the
// later steps need.
type Preflight struct {
	Checks  []Check
	Kernel  KernelInfo
	Initrd  InitrdEstimate
	Network netstate.State
	// Carried is Network.Carried(): what the node gets.
	Carried netstate.State
}

// Refused lists the checks that refused.
func (p Preflight) Refused() []Check {
	var out []Check
	for _, c := range p.Checks {
		if c.Status == CheckRefused {
			out = append(out, c)
		}
	}
	return out
}

// OK reports whether no check refused.
func (p Preflight) OK() bool { return len(p.Refused()) == 0 }

// RefusedError is returned when preflight checks refuse the kexec.
type RefusedError struct {
	Checks []Check
}

func (e *RefusedError) Error() string {
	names := make([]string, len(e.Checks))
	for i, c := range e.Checks {
		names[i] = c.Name
	}
	return "kexec refused by the checks: " + strings.Join(names, ", ")
}

// Limits used by the checks.
const (
	// KexecInitrdMax is the largest initrd kexec_file_load reads: the
	// kernel reads it with a limit of INT_MAX bytes (Linux 6.1; larger
	// files fail with EFBIG).
	KexecInitrdMax = 1<<31 - 1
	// kexecInitrdNear is where the size check starts to warn.
	kexecInitrdNear = 3 << 29 // 1.5 GiB
	// kexecRAMMargin is the working room kept free on top of the image:
	// the new kernel's own allocations, page tables and the first
	// processes, while the initrd is unpacked.
	kexecRAMMargin = 256 << 20
	// carryAllowance is room for the carry-over archive before it exists.
	carryAllowance = 64 << 10
)

// Preflight runs every check before a kexec and records the network. It
// returns an error only when a check could not run at all; refusals are in
// the returned checks.
func (k *Kexec) Preflight(ctx context.Context, req KexecRequest) (Preflight, error) {
	var p Preflight
	add := func(name string, s CheckStatus, detail, fix string) {
		p.Checks = append(p.Checks, Check{Name: name, Status: s, Detail: detail, Fix: fix})
	}

	// Root.
	euid := os.Geteuid
	if k.Euid != nil {
		euid = k.Euid
	}
	if euid() != 0 {
		add("root", CheckRefused, "homestaker is not running as root, and only root may load a kernel.",
			"Run it again as root (sudo homestaker kexec …).")
	} else {
		add("root", CheckOK, "running as root.", "")
	}

	// kexec in the running kernel.
	disabled, derr := os.ReadFile(k.path("/proc/sys/kernel/kexec_load_disabled"))
	_, lerr := os.Stat(k.path("/sys/kernel/kexec_loaded"))
	switch {
	case derr == nil && strings.TrimSpace(string(disabled)) == "1":
		add("kexec", CheckRefused, "kexec is disabled in this kernel (kernel.kexec_load_disabled = 1), and it stays disabled until the next reboot.",
			"Reboot the machine (into the rescue system again) without setting kernel.kexec_load_disabled, then run homestaker kexec.")
	case derr != nil && os.IsNotExist(derr) && lerr != nil && os.IsNotExist(lerr):
		if _, err := os.Stat(k.path("/proc/sys/kernel")); err == nil {
			add("kexec", CheckRefused, "the running kernel has no kexec support (no /proc/sys/kernel/kexec_load_disabled, no /sys/kernel/kexec_loaded).",
				"Boot a rescue system whose kernel has kexec (Hetzner's has), or write the node's ISO to a USB stick instead.")
		} else {
			add("kexec", CheckNotChecked, "cannot tell whether the kernel has kexec: /proc is not mounted.", "")
		}
	case derr != nil && !os.IsNotExist(derr):
		return p, fmt.Errorf("read /proc/sys/kernel/kexec_load_disabled: %w", derr)
	default:
		add("kexec", CheckOK, "the kernel has kexec, and it is enabled.", "")
	}

	// Lockdown (Secure Boot).
	lock, err := os.ReadFile(k.path("/sys/kernel/security/lockdown"))
	switch {
	case err == nil:
		mode := lockdownMode(string(lock))
		switch mode {
		case "none", "":
			add("secure boot", CheckOK, "the kernel is not locked down.", "")
		default:
			add("secure boot", CheckRefused, fmt.Sprintf("the kernel is locked down (%s), usually because Secure Boot is on: it loads only signed kernels, and the node's NixOS kernel is not signed.", mode),
				"Disable Secure Boot in the firmware setup, boot the rescue system again and run homestaker kexec.")
		}
	case os.IsNotExist(err):
		add("secure boot", CheckNotChecked, "cannot read the lockdown state (/sys/kernel/security/lockdown is missing: no lockdown support, or securityfs is not mounted); if Secure Boot is on, loading the kernel will fail and say so.", "")
	default:
		return p, fmt.Errorf("read /sys/kernel/security/lockdown: %w", err)
	}

	// The image: architecture and size.
	kinfo, kerr := InspectKernel(req.Image.Kernel)
	machine, merr := k.machine()
	switch {
	case kerr != nil && errors.Is(kerr, errNotKernel):
		add("architecture", CheckRefused, fmt.Sprintf("the kernel %v.", kerr), "Give the kernel of the node's kexec tree (bzImage, or Image on arm64).")
	case kerr != nil:
		return p, kerr
	case merr != nil:
		return p, fmt.Errorf("find this machine's architecture: %w", merr)
	case string(kinfo.Arch) != machine:
		add("architecture", CheckRefused, fmt.Sprintf("the kernel is a %s kernel (%s), but this machine is %s.", kinfo.Arch, kinfo.Format, machine),
			fmt.Sprintf("Set host.arch to %q in the answers, build again, and kexec the new image.", machine))
	case kinfo.Unloadable != "":
		add("architecture", CheckRefused, fmt.Sprintf("the kernel (%s) cannot be kexec'd: %s.", kinfo.Format, kinfo.Unloadable), "Build the node with a current NixOS kernel.")
	default:
		add("architecture", CheckOK, fmt.Sprintf("%s kernel (%s) on this %s machine.", kinfo.Arch, kinfo.Format, machine), "")
	}
	p.Kernel = kinfo

	est, err := EstimateInitrd(req.Image.Initrd)
	if err != nil {
		return p, err
	}
	p.Initrd = est
	total := est.Bytes + 3 + carryAllowance
	switch {
	case total > KexecInitrdMax:
		add("initrd size", CheckRefused, fmt.Sprintf("the initrd is %s; the kernel reads at most 2 GiB of initrd when loading it (kexec_file_load), and cpio tooling corrupts archives this large.", nixbuild.FormatBytes(est.Bytes)),
			"Make the system smaller (fewer packages, no documentation) and build again.")
	case total >= kexecInitrdNear:
		add("initrd size", CheckWarning, fmt.Sprintf("the initrd is %s, close to the 2 GiB the kernel reads when loading it.", nixbuild.FormatBytes(est.Bytes)),
			"Keep the system small: a few more packages may stop it from loading.")
	default:
		add("initrd size", CheckOK, fmt.Sprintf("the initrd is %s.", nixbuild.FormatBytes(est.Bytes)), "")
	}

	// RAM.
	if c, err := k.ramCheck(req, kinfo, est); err != nil {
		return p, err
	} else {
		p.Checks = append(p.Checks, c)
	}

	// SSH keys and the data disk come from the answers.
	if req.Plan == nil {
		add("ssh key", CheckNotChecked, "no answers given, so homestaker cannot tell whether the node lets anyone log in.",
			"Give the node's answers with --answers FILE to check it.")
		add("data disk", CheckNotChecked, "no answers given, so the data disk the node mounts is not checked.", "")
	} else {
		p.Checks = append(p.Checks, sshKeyCheck(req.Plan, req.PlanSource))
		c, err := k.dataDiskCheck(req.Plan, req.PlanSource)
		if err != nil {
			return p, err
		}
		p.Checks = append(p.Checks, c)
	}

	// Network.
	read := k.ReadNetwork
	if read == nil {
		read = func(ctx context.Context) (netstate.State, error) { return netstate.Read(ctx, nil) }
	}
	st, err := read(ctx)
	if err != nil {
		add("network", CheckRefused, fmt.Sprintf("cannot record the network configuration: %v.", err),
			"Install iproute2 (the ip command) and try again: without the network carried over, the node may be unreachable.")
	} else {
		p.Network, p.Carried = st, st.Carried()
		addrs := CarriedAddresses(p.Carried)
		dhcp := false
		for _, in := range p.Carried.Interfaces {
			dhcp = dhcp || in.DHCP4 || in.DHCP6
		}
		if len(addrs) == 0 && !dhcp {
			add("network", CheckRefused, "no interface has an address to carry over, so the node would come up without a network.",
				"Configure the network of this system (the address you reach it on) and run homestaker kexec again.")
		} else {
			add("network", CheckOK, fmt.Sprintf("carrying %d interface(s), %d address(es) and %d route(s) over.", len(p.Carried.Interfaces), len(addrs), len(p.Carried.Routes)), "")
		}
	}
	return p, nil
}

func (k *Kexec) machine() (string, error) {
	if k.Machine != nil {
		return k.Machine()
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", err
	}
	return unix.ByteSliceToString(u.Machine[:]), nil
}

// lockdownMode returns the selected mode of /sys/kernel/security/lockdown
// ("none [integrity] confidentiality" → "integrity").
func lockdownMode(s string) string {
	i := strings.IndexByte(s, '[')
	j := strings.IndexByte(s, ']')
	if i < 0 || j < i {
		return strings.TrimSpace(s)
	}
	return s[i+1 : j]
}

// ramCheck compares MemAvailable with what the kexec needs. Swap does not
// count: the image must sit in RAM.
func (k *Kexec) ramCheck(req KexecRequest, kinfo KernelInfo, est InitrdEstimate) (Check, error) {
	c := Check{Name: "memory"}
	avail, err := memAvailable(k.path("/proc/meminfo"))
	if err != nil {
		return c, err
	}
	inRAM := k.InRAM
	if inRAM == nil {
		inRAM = tmpfsPath
	}
	copyBytes := uint64(0)
	dir := req.TempDir
	if dir == "" {
		dir = os.TempDir()
	}
	if ram, err := inRAM(dir); err != nil {
		return c, fmt.Errorf("check whether %s is in RAM: %w", dir, err)
	} else if ram {
		copyBytes = est.Bytes
	}
	need := kinfo.MemoryBytes + est.Bytes + est.Unpacked + copyBytes + kexecRAMMargin
	parts := fmt.Sprintf("kernel %s + initrd %s + unpacked %s (%s)",
		nixbuild.FormatBytes(kinfo.MemoryBytes), nixbuild.FormatBytes(est.Bytes), nixbuild.FormatBytes(est.Unpacked), est.Method)
	if copyBytes > 0 {
		parts += fmt.Sprintf(" + its copy in %s (in RAM) %s", dir, nixbuild.FormatBytes(copyBytes))
	}
	parts += " + margin " + nixbuild.FormatBytes(kexecRAMMargin)
	if need > avail {
		c.Status = CheckRefused
		c.Detail = fmt.Sprintf("not enough free RAM: %s available (swap does not count), the kexec needs %s: %s.",
			nixbuild.FormatBytes(avail), nixbuild.FormatBytes(need), parts)
		c.Fix = "Free memory (stop services, empty tmpfs folders), or use a machine with more RAM or a smaller image."
		return c, nil
	}
	c.Detail = fmt.Sprintf("%s available, %s needed: %s.", nixbuild.FormatBytes(avail), nixbuild.FormatBytes(need), parts)
	return c, nil
}

// memAvailable reads MemAvailable from a /proc/meminfo file, in bytes.
func memAvailable(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read the free memory: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "MemAvailable:" {
			var kb uint64
			if _, err := fmt.Sscanf(f[1], "%d", &kb); err != nil {
				break
			}
			if len(f) < 3 || f[2] != "kB" {
				return 0, fmt.Errorf("%s: MemAvailable is not in kB: %q", path, line)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("%s has no MemAvailable line (Linux 3.14 or later has it)", path)
}

// tmpfsPath reports whether path is on tmpfs or ramfs.
func tmpfsPath(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, err
	}
	return st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC, nil
}

func sshKeyCheck(p *plan.Plan, source string) Check {
	c := Check{Name: "ssh key"}
	valid := 0
	for _, key := range p.SSH.AuthorizedKeys {
		if _, _, _, _, err := parseAuthorizedKey(key); err == nil {
			valid++
		}
	}
	if valid == 0 {
		c.Status = CheckRefused
		c.Detail = fmt.Sprintf("the node has no valid SSH key in ssh.authorizedKeys (%s), so nobody could log in to it.", source)
		c.Fix = "Add your public key (ssh-ed25519 AAAA…) to ssh.authorizedKeys, render and build again."
		return c
	}
	c.Detail = fmt.Sprintf("%d SSH key(s) may log in as root.", valid)
	return c
}

func (k *Kexec) dataDiskCheck(p *plan.Plan, source string) (Check, error) {
	c := Check{Name: "data disk"}
	dev := p.Disk.Device
	if dev == "" {
		c.Status = CheckRefused
		c.Detail = fmt.Sprintf("the answers (%s) name no data disk (disk.device).", source)
		c.Fix = "Set disk.device to the data disk's /dev/disk/by-id path."
		return c, nil
	}
	sys := disk.System{Root: k.Root}
	devs, err := disk.Discover(sys)
	if err != nil {
		return c, err
	}
	d, err := disk.Lookup(sys, devs, dev)
	if err != nil {
		c.Status = CheckRefused
		c.Detail = fmt.Sprintf("the data disk the node mounts is not here: %v.", err)
		c.Fix = "Check disk.device in the answers against 'homestaker disk list'; the node would boot without its chain data."
		return c, nil
	}
	if d.InUse {
		c.Status = CheckRefused
		c.Detail = fmt.Sprintf("the data disk %s is in use by this system: %s.", dev, d.InUseReason)
		c.Fix = fmt.Sprintf("Unmount it (umount the partitions of %s) so no write is lost in the jump, or check disk.device if it is the wrong disk.", d.Path)
		return c, nil
	}
	c.Detail = fmt.Sprintf("%s (%s, %s) is here and not mounted.", dev, d.Path, nixbuild.FormatBytes(d.SizeBytes))
	return c, nil
}

// CarriedAddresses lists the addresses (without prefix length) of a
// carried state, static ones first, in interface order.
func CarriedAddresses(s netstate.State) []string {
	var static, dynamic []string
	for _, in := range s.Interfaces {
		for _, a := range in.Addresses {
			addr, _, _ := strings.Cut(a.Address, "/")
			if a.Dynamic {
				dynamic = append(dynamic, addr)
			} else {
				static = append(static, addr)
			}
		}
	}
	return append(static, dynamic...)
}

// WriteChecks prints the checks, one block per check, within 80 columns.
func WriteChecks(w io.Writer, checks []Check) {
	for _, c := range checks {
		mark := map[CheckStatus]string{CheckOK: "ok", CheckWarning: "!!", CheckNotChecked: "--", CheckRefused: "NO"}[c.Status]
		writeWrapped(w, fmt.Sprintf("[%s] %s: ", mark, c.Name), "     ", c.Detail)
		if c.Fix != "" && c.Status != CheckOK {
			writeWrapped(w, "     -> ", "        ", c.Fix)
		}
	}
}

// writeWrapped writes text after first, wrapping at 78 columns with
// continuation lines starting with indent.
func writeWrapped(w io.Writer, first, indent, text string) {
	const width = 78
	line := first
	lineLen := len(first)
	fresh := true
	for _, word := range strings.Fields(text) {
		if !fresh && lineLen+1+len(word) > width {
			fmt.Fprintln(w, line)
			line, lineLen, fresh = indent, len(indent), true
		}
		if !fresh {
			line += " "
			lineLen++
		}
		line += word
		lineLen += len(word)
		fresh = false
	}
	fmt.Fprintln(w, line)
}
