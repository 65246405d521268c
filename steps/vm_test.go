package steps

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/homestaker/homestaker/assets"
	"github.com/homestaker/homestaker/boot"
	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/internal/vmtest"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/secrets"
)

// The VM tests below go through the pipeline as install and reconfigure
// do: steps.Run with a journal runs the disk step (on an image file) and
// the boot-entry step with a build's manifest; then QEMU powers the image
// on with its firmware and nobody at the keyboard, as after a power cut.

// flakeBootLoader makes the boot loader folder the flake builds, by running
// the build script of assets/nix/modules/boot-loader.nix itself with
// Debian's packages standing in for nixpkgs' (systemd-boot-efi for
// ${systemd}, grub-pc-bin and grub-common's grub-mkimage for ${grub2}).
func flakeBootLoader(t *testing.T, dir string) string {
	t.Helper()
	testutil.RequireTool(t, "grub-mkimage")
	testutil.RequireTool(t, "bash")
	for _, f := range []string{"/usr/lib/systemd/boot/efi/systemd-bootx64.efi", "/usr/lib/grub/i386-pc/boot.img"} {
		if _, err := os.Stat(f); err != nil {
			testutil.Missing(t, f+" is missing (install systemd-boot-efi and grub-pc-bin)")
		}
	}
	nix, err := assets.Modules.ReadFile("nix/modules/boot-loader.nix")
	if err != nil {
		t.Fatal(err)
	}
	// The runCommand's script: between the first '' and the last.
	text := string(nix)
	start, end := strings.Index(text, "''\n"), strings.LastIndex(text, "''")
	if start < 0 || end <= start {
		t.Fatalf("boot-loader.nix: no '' … '' build script in\n%s", text)
	}
	script := text[start+3 : end]
	out := filepath.Join(dir, "homestaker-boot-loader")
	script = strings.NewReplacer("${systemd}", "/usr", "${grub2}", "/usr", "$out", out).Replace(script)
	if strings.Contains(script, "${") {
		t.Fatalf("boot-loader.nix's script uses a store path this test does not stand in for:\n%s", script)
	}
	if !strings.Contains(script, "-p '"+boot.GRUBPrefix+"'") {
		t.Errorf("boot-loader.nix makes core.img without -p '%s', the prefix boot.Installer's partition layout needs:\n%s", boot.GRUBPrefix, script)
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("boot-loader.nix's build script: %v\n%s\n%s", err, b, script)
	}
	for _, f := range []string{"systemd-bootx64.efi", "i386-pc/boot.img", "i386-pc/core.img", "i386-pc/normal.mod", "i386-pc/linux.mod"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Fatalf("the boot loader folder lacks %s: %v", f, err)
		}
	}
	return out
}

// vmNode is a node installed on an image through the steps.
type vmNode struct {
	t       *testing.T
	dir     string
	img     string
	kernel  string
	loader  string
	key     string
	tg      *Target
	builds  int
	markers map[int]string // generation → the marker its initrd prints
}

func newVMNode(t *testing.T, fw plan.Firmware) *vmNode {
	t.Helper()
	vmtest.RequireFirmware(t, string(fw))
	for _, tool := range []string{"mkfs.vfat", "mkfs.ext4", "mcopy", "mdir", "mtype"} {
		testutil.RequireTool(t, tool)
	}
	kernel, err := vmtest.HostKernel()
	if err != nil {
		testutil.Missing(t, err.Error())
	}
	dir := t.TempDir()
	n := &vmNode{t: t, dir: dir, img: filepath.Join(dir, "data.img"), kernel: kernel, loader: flakeBootLoader(t, dir), markers: map[int]string{}}
	var p plan.Plan
	p.Host.Name, p.Host.Arch, p.Host.Format, p.Host.Firmware = "node1", plan.ArchX86_64, plan.FormatKexec, fw
	p.Disk.Device = "/dev/disk/by-id/ata-TEST"
	p.Ethereum.Execution, p.Ethereum.Consensus = "geth", "lighthouse"
	key, _, err := secrets.EnsureHostKey(filepath.Join(dir, "private"), "node1")
	if err != nil {
		t.Fatal(err)
	}
	n.key = key.PrivatePath
	n.tg = &Target{Plan: p, FlakeDir: filepath.Join(dir, "flake"), Private: filepath.Join(dir, "private"), System: disk.System{Root: dir}}
	return n
}

// build makes a new build whose initrd prints marker, as the build step
// leaves it for the steps after it.
func (n *vmNode) build(marker string) {
	n.t.Helper()
	n.buildWith(marker, vmtest.MarkerInitrd)
}

// buildWith makes a new build whose initrd is written by initrd (with
// vmtest.RebootingInitrd: a build whose boots never complete).
func (n *vmNode) buildWith(marker string, initrd func(path, marker string) error) {
	t := n.t
	t.Helper()
	n.builds++
	file := filepath.Join(n.dir, marker+".cpio")
	if err := initrd(file, marker); err != nil {
		t.Fatal(err)
	}
	m := storeBuild(t, n.dir, "build"+strconv.Itoa(n.builds), n.loader, buildFiles{
		Kernel: n.kernel, Initrd: file,
		Cmdline: "console=ttyS0 panic=-1 homestaker.test=" + marker,
	})
	n.tg.Built = &m
}

// apply runs the steps with a journal in the private folder, as install
// and reconfigure do, and returns the events.
func (n *vmNode) apply(command string, list ...Step) []Event {
	t := n.t
	t.Helper()
	var names []string
	for _, s := range list {
		names = append(names, s.Name())
	}
	req := Request{Command: command, Plan: n.tg.Plan, FlakeDir: n.tg.FlakeDir, Private: n.tg.Private, Steps: names}
	j, resumed, err := OpenJournal(n.tg.Private, req, nil)
	if err != nil || resumed {
		t.Fatalf("OpenJournal: resumed %v, %v", resumed, err)
	}
	var events []Event
	start := time.Now()
	if err := Run(context.Background(), n.tg, list, Options{Journal: j, Emit: func(e Event) { events = append(events, e) }}); err != nil {
		t.Fatalf("%s %v: %v\n%s", command, names, err, eventText(events))
	}
	rec, err := ReadJournal(n.tg.Private)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != StateDone || len(rec.Steps) != len(list) {
		t.Fatalf("journal after %s: state %q, steps %+v", command, rec.State, rec.Steps)
	}
	for _, s := range rec.Steps {
		if s.Finished.IsZero() || s.Error != "" {
			t.Errorf("journal after %s: step %+v did not finish", command, s)
		}
	}
	t.Logf("%s %v in %s", command, names, time.Since(start).Round(10*time.Millisecond))
	return events
}

func eventText(events []Event) string {
	var b strings.Builder
	for _, e := range events {
		b.WriteString(e.Step + " " + string(e.Status) + " " + e.Title + e.Message + "\n")
	}
	return b.String()
}

// noted fails the test unless a note of the boot-entry step says want.
func noted(t *testing.T, events []Event, want string) {
	t.Helper()
	if !slices.ContainsFunc(events, func(e Event) bool { return e.Step == "boot-entry" && strings.Contains(e.Message, want) }) {
		t.Errorf("the boot-entry step never said %q:\n%s", want, eventText(events))
	}
}

// boot powers the image on with its firmware and no input, and waits for
// the marker of the generation that should start, with its command line.
func (n *vmNode) boot(marker string) {
	t := n.t
	t.Helper()
	want := regexp.MustCompile(`HOMESTAKER-BOOTED ` + marker + ` cmdline=[^\n]*init=[^ ]*/init loglevel=4 [^\n]*homestaker.test=` + marker)
	fw := string(n.tg.Plan.Host.Firmware)
	res, err := vmtest.BootDisk(context.Background(), vmtest.DiskBoot{Firmware: fw, Disk: n.img, Expect: want})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s boot in %s: %s", fw, res.Duration.Round(100*time.Millisecond), strings.TrimSpace(want.FindString(res.Console)))
	if m := regexp.MustCompile(`HOMESTAKER-BOOTED (\S+)`).FindAllStringSubmatch(res.Console, -1); len(m) != 1 {
		t.Errorf("the console shows %d markers, want the one of %s", len(m), marker)
	}
}

// mtools runs an mtools command on the image's EFI system partition.
func (n *vmNode) mtools(args ...string) string {
	t := n.t
	t.Helper()
	tg, err := boot.ReadTarget(n.img)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], append([]string{"-i", n.img + "@@" + strconv.FormatUint(tg.ESP.StartBytes, 10)}, args[1:]...)...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "MTOOLSRC=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return string(out)
}

// installAndRebuild is the install (disk and boot-entry steps, build A),
// a boot, a rebuild (boot-entry step, build B) and a boot: what both
// firmware tests share. It leaves generation 2 (B) the default and
// generation 1 (A) the fallback, both checked on the boot partition.
func (n *vmNode) installAndRebuild() {
	t := n.t
	t.Helper()
	n.build("A")
	events := n.apply("install", DiskStep{Image: n.img, ImageSize: 4 << 30, HostKeyFile: n.key}, BootEntryStep{Image: n.img})
	noted(t, events, "boots generation 1")
	// The boot loader is the build's (found through the manifest), not
	// this machine's.
	noted(t, events, "boot loader from the build: "+n.loader)
	n.boot("A")

	n.build("B")
	events = n.apply("reconfigure", BootEntryStep{Image: n.img})
	noted(t, events, "boots generation 2; generation 1 is the fallback")
	n.boot("B")

	// On UEFI generation 2 carries a boot counter, and systemd-boot took
	// one try off when it started it (nothing in the test initrd marks the
	// boot complete); GRUB's entries have none.
	second := "homestaker-0002.conf"
	if n.tg.Plan.Host.Firmware == plan.FirmwareUEFI {
		second = "homestaker-0002+2-1.conf"
	}
	entries, _ := espEntries(t, n.img)
	if len(entries) != 2 || !strings.Contains(entries["homestaker-0001.conf"], "initrd /homestaker/0001/initrd") ||
		!strings.Contains(entries["homestaker-0001.conf"], "homestaker.test=A") ||
		!strings.Contains(entries[second], "homestaker.test=B") {
		t.Fatalf("after the rebuild and one boot: entries %v, want homestaker-0001.conf and %s", entryNames(entries), second)
	}
}

func entryNames(entries map[string]string) []string {
	var names []string
	for name := range entries {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// TestVMBootEntryStepUEFI: after the install through the steps, OVMF with
// an empty variable store (no boot entry in NVRAM) starts systemd-boot from
// the data disk, which boots build A; after the rebuild it boots build B by
// default, and the fallback entry — picked as someone at the menu would,
// by making it loader.conf's default — still boots build A from the
// generation 1 files on the disk.
func TestVMBootEntryStepUEFI(t *testing.T) {
	n := newVMNode(t, plan.FirmwareUEFI)
	n.installAndRebuild()

	// Someone at the menu picks the fallback entry (systemd-boot's
	// automatic fallback, after the tries of a generation whose boots never
	// complete, is TestVMBootEntryStepUEFIFallsBack).
	conf := n.mtools("mtype", "::/loader/loader.conf")
	if !strings.Contains(conf, "default homestaker-*\n") {
		t.Fatalf("loader.conf:\n%s", conf)
	}
	local := filepath.Join(n.dir, "loader.conf")
	if err := os.WriteFile(local, []byte(strings.Replace(conf, "default homestaker-*", "default homestaker-0001.conf", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	n.mtools("mcopy", "-o", local, "::/loader/loader.conf")
	n.boot("A")
}

// TestVMBootEntryStepBIOS: after the install through the steps, SeaBIOS
// starts GRUB (boot.img in the MBR, core.img in the BIOS boot partition,
// both from the flake's boot loader folder), which boots build A from the
// boot partition; after the rebuild it boots build B, and when generation
// 2's kernel cannot be loaded GRUB falls back to generation 1 by itself:
// build A boots, nobody at the keyboard.
func TestVMBootEntryStepBIOS(t *testing.T) {
	n := newVMNode(t, plan.FirmwareBIOS)
	n.installAndRebuild()

	n.mtools("mdel", "::/homestaker/0002/linux")
	n.boot("A")
}

// TestVMBootEntryStepUEFIFallsBack: systemd-boot's boot counting brings the
// node back by itself. The install writes build A (generation 1, no
// counter); the rebuild writes build B, whose boots never complete (its
// initrd prints its marker and reboots, as a node that panics or hangs
// before boot-complete.target would be reset), as generation 2 with
// boot.DefaultTries tries. One power-on with nobody at the keyboard and
// resets allowed: systemd-boot starts B until its tries run out (renaming
// the entry +3 → +2-1 → +1-2 → +0-3 on the partition), then sorts it last
// and boots A. The next rebuild keeps A as the fallback and drops B.
func TestVMBootEntryStepUEFIFallsBack(t *testing.T) {
	n := newVMNode(t, plan.FirmwareUEFI)
	n.build("A")
	n.apply("install", DiskStep{Image: n.img, ImageSize: 4 << 30, HostKeyFile: n.key}, BootEntryStep{Image: n.img})
	n.buildWith("B", vmtest.RebootingInitrd)
	events := n.apply("reconfigure", BootEntryStep{Image: n.img})
	noted(t, events, "boots generation 2; generation 1 is the fallback")
	noted(t, events, fmt.Sprintf("systemd-boot starts it up to %d times", boot.DefaultTries))
	if entries, _ := espEntries(t, n.img); !slices.Equal(entryNames(entries), []string{"homestaker-0001.conf", fmt.Sprintf("homestaker-0002+%d.conf", boot.DefaultTries)}) {
		t.Fatalf("after the rebuild: entries %v", entryNames(entries))
	}

	wantA := regexp.MustCompile(`HOMESTAKER-BOOTED A cmdline=[^\n]*homestaker.test=A`)
	res, err := vmtest.BootDisk(context.Background(), vmtest.DiskBoot{
		Firmware: vmtest.UEFI, Disk: n.img, Expect: wantA, Reboot: true, Timeout: time.Duration(boot.DefaultTries+2) * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, m := range regexp.MustCompile(`HOMESTAKER-BOOTED (\S+)`).FindAllStringSubmatch(res.Console, -1) {
		order = append(order, m[1])
	}
	want := append(slices.Repeat([]string{"B"}, boot.DefaultTries), "A")
	if !slices.Equal(order, want) {
		t.Errorf("the machine booted %v, want %v", order, want)
	}
	t.Logf("one power-on, %d boots in %s: %v", len(order), res.Duration.Round(100*time.Millisecond), order)
	entries, _ := espEntries(t, n.img)
	if names := entryNames(entries); !slices.Equal(names, []string{"homestaker-0001.conf", fmt.Sprintf("homestaker-0002+0-%d.conf", boot.DefaultTries)}) {
		t.Errorf("after the fallback: entries %v, want generation 2 marked bad (+0-%d)", names, boot.DefaultTries)
	}

	// The next rebuild: generation 2 never booted, so it is no fallback.
	n.build("C")
	events = n.apply("reconfigure", BootEntryStep{Image: n.img})
	noted(t, events, "boots generation 3; generation 1 is the fallback")
	noted(t, events, "remove generation 2")
	if entries, _ := espEntries(t, n.img); !slices.Equal(entryNames(entries), []string{"homestaker-0001.conf", fmt.Sprintf("homestaker-0003+%d.conf", boot.DefaultTries)}) {
		t.Errorf("after the next rebuild: entries %v", entryNames(entries))
	}
}
