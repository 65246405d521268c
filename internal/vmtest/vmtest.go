// Package vmtest boots a throwaway QEMU guest for homestaker's VM tests: the
// host's Debian kernel under TCG, a busybox initrd built at test time, the
// host's root filesystem shared read-only over 9p and chrooted into, so the
// guest runs the host's tools and test binaries against real virtio disks.
//
// A guest boots in about 5 s under TCG; a test that partitions and formats a
// disk takes about 15–20 s.
package vmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homestaker/homestaker/internal/testutil"
)

// GuestShareDir is where Config.ShareDir appears in the guest (read-write).
const GuestShareDir = "/tmp/share"

// Disk is an image file attached to the guest as a virtio disk. Disks appear
// in order as /dev/vda, /dev/vdb, …
type Disk struct {
	Path string
	// SectorSize is the disk's logical and physical sector size (default 512).
	SectorSize int
}

// Config is one guest run.
type Config struct {
	Disks []Disk
	// Script is a shell script run as root in the guest, chrooted into the
	// host's root (read-only), with /proc, /sys, /dev and a tmpfs /tmp.
	// Its exit status is Result.ExitCode.
	Script string
	// ShareDir, when set, is a host folder mounted read-write at GuestShareDir.
	ShareDir string
	// Modules are extra kernel modules modprobe loads before the script,
	// e.g. "ext4", "btrfs". Virtio, 9p and virtio_blk always load.
	Modules []string
	// Timeout bounds the whole run (default 3 minutes).
	Timeout time.Duration
	// MemoryMiB is the guest's RAM (default 1024).
	MemoryMiB int
	// Kernel is the kernel image (default: the host's /boot/vmlinuz-<ver>
	// with modules in /lib/modules/<ver>).
	Kernel string
	// NICs are virtio network cards on a QEMU user-mode network
	// (restricted: the guest reaches nothing outside); the
	// guest sees them as eth0, eth1, … with virtio_net loaded.
	NICs []NIC
	// Expect, when set, ends the run successfully as soon as the console
	// matches it: for a guest that never returns from its script (it
	// kexecs into another kernel, say). Result.ExitCode is then -1 unless
	// the script did exit.
	Expect *regexp.Regexp
}

// NIC is a virtio network card.
type NIC struct {
	// MAC is its address, e.g. "52:54:00:12:34:56".
	MAC string
}

// Result is what a guest run produced.
type Result struct {
	// Console is everything the guest wrote to its serial console.
	Console string
	// ExitCode is the script's exit status.
	ExitCode int
	Duration time.Duration
	// Matched reports that Config.Expect matched the console.
	Matched bool
}

// baseModules give the guest its virtio PCI bus, the 9p host share and virtio disks.
var baseModules = []string{"virtio_pci", "9pnet_virtio", "9p", "virtio_blk"}

const exitMarker = "VMTEST-EXIT "

// Require skips the test (or fails it in CI) when the guest cannot be booted
// here: no QEMU, no kernel with modules, no static busybox, not root (the
// kernel image is readable only by root on Debian).
func Require(t testing.TB) {
	t.Helper()
	testutil.RequireTool(t, "qemu-system-x86_64")
	testutil.RequireRoot(t)
	if _, _, err := hostKernel(); err != nil {
		testutil.Missing(t, err.Error())
	}
	if _, err := busybox(); err != nil {
		testutil.Missing(t, err.Error())
	}
}

// Run boots a guest with cfg and returns its console and the script's exit
// status. A guest that does not finish within the timeout, or finishes
// without reporting an exit status, is an error that carries the console.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Minute
	}
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 1024
	}
	kernel, modDir, err := hostKernel()
	if err != nil {
		return Result{}, err
	}
	if cfg.Kernel != "" {
		kernel = cfg.Kernel
	}
	work, err := os.MkdirTemp("", "homestaker-vm-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(work)
	initrd := filepath.Join(work, "initrd.cpio")
	extra := cfg.Modules
	if len(cfg.NICs) > 0 {
		extra = append(append([]string{}, extra...), "virtio_net")
	}
	if err := buildInitrd(initrd, modDir, baseModules, extra, cfg.Script, cfg.ShareDir != ""); err != nil {
		return Result{}, fmt.Errorf("build the guest initrd: %w", err)
	}
	args := []string{
		"-machine", "q35", "-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", strconv.Itoa(cfg.MemoryMiB),
		"-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot", "-nodefaults",
		"-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 loglevel=4 rdinit=/init",
		"-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
	}
	if cfg.ShareDir != "" {
		args = append(args, "-virtfs", "local,path="+cfg.ShareDir+",mount_tag=share,security_model=none,multidevs=remap")
	}
	for i, d := range cfg.Disks {
		ss := d.SectorSize
		if ss == 0 {
			ss = 512
		}
		id := fmt.Sprintf("disk%d", i)
		args = append(args,
			"-drive", fmt.Sprintf("file=%s,format=raw,if=none,id=%s,cache=writeback", escapeComma(d.Path), id),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=%s,serial=vmtest%d,logical_block_size=%d,physical_block_size=%d", id, i, ss, ss))
	}
	args = append(args, nicArgs(cfg.NICs)...)
	return scriptResult("guest", runGuest(ctx, "qemu-system-x86_64", args, cfg.Timeout, cfg.Expect), cfg.Timeout)
}

func escapeComma(s string) string { return strings.ReplaceAll(s, ",", ",,") }

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// hostKernel finds the newest /boot/vmlinuz-<ver> whose modules are installed.
func hostKernel() (kernel, modDir string, err error) {
	matches, _ := filepath.Glob("/boot/vmlinuz-*")
	sort.Sort(sort.Reverse(sort.StringSlice(matches)))
	for _, k := range matches {
		ver := strings.TrimPrefix(filepath.Base(k), "vmlinuz-")
		dir := filepath.Join("/lib/modules", ver)
		if _, err := os.Stat(filepath.Join(dir, "modules.dep")); err == nil {
			return k, dir, nil
		}
	}
	return "", "", errors.New("no kernel /boot/vmlinuz-<ver> with modules in /lib/modules/<ver> (install linux-image-amd64)")
}

func busybox() (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no static busybox (install busybox-static)")
}
