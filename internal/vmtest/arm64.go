package vmtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/homestaker/homestaker/internal/testutil"
)

// Arm64KitEnv names the folder scripts/arm64kit fills: Debian's arm64
// kernel with its modules and arm64 busybox-static, unpacked under root/.
const Arm64KitEnv = "HOMESTAKER_TEST_ARM64KIT"

// Arm64Kit is what an arm64 guest boots: Debian 12's arm64 kernel (an
// uncompressed Image, as the Pi's firmware and kexec load it), its modules
// and a static arm64 busybox.
type Arm64Kit struct {
	Root, Kernel, ModDir, Busybox string
}

// RequireArm64 returns the arm64 kit, or skips the test (fails it in CI)
// when qemu-system-aarch64 or the kit is missing.
func RequireArm64(t testing.TB) Arm64Kit {
	t.Helper()
	testutil.RequireTool(t, "qemu-system-aarch64")
	dir := os.Getenv(Arm64KitEnv)
	if dir == "" {
		testutil.Missing(t, "no arm64 kernel and busybox: set "+Arm64KitEnv+" to the folder scripts/arm64kit prints")
	}
	kit, err := FindArm64Kit(dir)
	if err != nil {
		testutil.Missing(t, err.Error())
	}
	return kit
}

// FindArm64Kit reads the kit scripts/arm64kit left in dir.
func FindArm64Kit(dir string) (Arm64Kit, error) {
	root := filepath.Join(dir, "root")
	kernels, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	sort.Sort(sort.Reverse(sort.StringSlice(kernels)))
	for _, k := range kernels {
		ver := strings.TrimPrefix(filepath.Base(k), "vmlinuz-")
		mods := filepath.Join(root, "lib", "modules", ver)
		if _, err := os.Stat(filepath.Join(mods, "modules.dep")); err != nil {
			continue
		}
		bb := filepath.Join(root, "bin", "busybox")
		if _, err := os.Stat(bb); err != nil {
			return Arm64Kit{}, fmt.Errorf("%s has no arm64 busybox (run scripts/arm64kit --force)", dir)
		}
		return Arm64Kit{Root: root, Kernel: k, ModDir: mods, Busybox: bb}, nil
	}
	return Arm64Kit{}, fmt.Errorf("%s has no arm64 kernel with modules (run scripts/arm64kit)", dir)
}

// InitrdFile is one file of a test initrd.
type InitrdFile struct {
	// Name is its path in the initrd, without a leading slash.
	Name string
	// Data is its content, or Source a file to copy it from.
	Data   []byte
	Source string
	Mode   uint32 // permissions (0o755 for programs)
	// Link, when set, makes the entry a symbolic link to Link.
	Link string
}

// WriteInitrd writes an uncompressed newc cpio archive holding files (their
// folders are made as needed).
func WriteInitrd(path string, files []InitrdFile) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	w := newCpio(bufio.NewWriter(out))
	made := map[string]bool{}
	for _, f := range files {
		var parents []string
		for d := filepath.Dir(f.Name); d != "." && !made[d]; d = filepath.Dir(d) {
			parents = append([]string{d}, parents...)
			made[d] = true
		}
		for _, d := range parents {
			w.dir(d)
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		switch {
		case f.Link != "":
			w.symlink(f.Name, f.Link)
		case f.Source != "":
			if err := w.fileFrom(f.Name, f.Source, mode); err != nil {
				out.Close()
				return fmt.Errorf("%s: %w", f.Source, err)
			}
		default:
			w.file(f.Name, f.Data, mode)
		}
	}
	if err := w.close(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// ModuleFiles lists the named modules of the kit with their dependencies,
// in load order, as initrd files under modules/, and the list of their
// names (modules.list) for an /init to insmod in turn.
func (k Arm64Kit) ModuleFiles(names ...string) ([]InitrdFile, error) {
	order, err := moduleOrder(k.ModDir, names)
	if err != nil {
		return nil, err
	}
	var files []InitrdFile
	var list strings.Builder
	for _, m := range order {
		name := filepath.Base(m)
		files = append(files, InitrdFile{Name: "modules/" + name, Source: filepath.Join(k.ModDir, m)})
		fmt.Fprintln(&list, name)
	}
	return append(files, InitrdFile{Name: "modules.list", Data: []byte(list.String())}), nil
}

// Arm64Config is one run of an arm64 guest: QEMU's "virt" machine with a
// Cortex-A72 (the Pi 4's core) under TCG, booting Kernel with Initrd and
// Append directly, its console on the PL011 UART (ttyAMA0).
type Arm64Config struct {
	Kernel, Initrd, Append string
	MemoryMiB              int
	// NICs are virtio network cards on QEMU's restricted user network:
	// the guest reaches nothing outside.
	NICs []NIC
	// Disks are virtio disks (/dev/vda, …; the guest loads virtio_blk).
	Disks []Disk
	// Expect ends the run as soon as the console matches it.
	Expect  *regexp.Regexp
	Timeout time.Duration
}

// RunArm64 boots an arm64 guest and returns its console. The run succeeds
// when Expect matches, or when the guest prints an exit marker; a guest
// that does neither before the timeout is an error that carries the console.
func RunArm64(ctx context.Context, cfg Arm64Config) (Result, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 1024
	}
	args := []string{
		"-machine", "virt", "-accel", "tcg", "-cpu", "cortex-a72", "-smp", "1", "-m", strconv.Itoa(cfg.MemoryMiB),
		"-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot", "-nodefaults",
		"-kernel", cfg.Kernel, "-initrd", cfg.Initrd, "-append", cfg.Append,
	}
	for i, d := range cfg.Disks {
		id := fmt.Sprintf("disk%d", i)
		args = append(args,
			"-drive", fmt.Sprintf("file=%s,format=raw,if=none,id=%s,cache=writeback", escapeComma(d.Path), id),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=%s,serial=vmtest%d", id, i))
	}
	args = append(args, nicArgs(cfg.NICs)...)
	return scriptResult("arm64 guest", runGuest(ctx, "qemu-system-aarch64", args, cfg.Timeout, cfg.Expect), cfg.Timeout)
}

// TreeFiles lists the files and links under root/dir (as initrd files named
// dir/…): a part of the kit's arm64 root, such as its libraries, for an
// initrd that runs the kit's programs.
func TreeFiles(root, dir string) ([]InitrdFile, error) {
	var out []InitrdFile
	err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, InitrdFile{Name: rel, Link: target})
		case info.Mode().IsRegular():
			out = append(out, InitrdFile{Name: rel, Source: p, Mode: uint32(info.Mode().Perm())})
		}
		return nil
	})
	return out, err
}
