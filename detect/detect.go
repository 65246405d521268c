// Package detect describes the machine homestaker runs on: architecture,
// board, RAM, CPUs, disks and network. The wizard takes its defaults from
// it; `homestaker detect` prints it. Everything is read from an injectable
// system root and network source, so recorded machines stand in for real
// ones in tests.
package detect

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/netstate"
)

// Machine is what homestaker detected. Its JSON form is what
// `homestaker detect --json` prints.
type Machine struct {
	// Arch is "x86_64" or "aarch64"; any other kernel architecture is kept
	// as the kernel names it, with a warning.
	Arch string `json:"arch"`
	// Board is "rpi4" for a Raspberry Pi 4 Model B, else "generic".
	Board string `json:"board"`
	// BoardModel is the device tree's model string ("Raspberry Pi 4 Model B
	// Rev 1.4"), "" on machines without a device tree (most PCs).
	BoardModel  string `json:"boardModel,omitempty"`
	MemoryBytes uint64 `json:"memoryBytes"`
	CPUs        int    `json:"cpus"`
	// Disks are the whole disks, with the reasons any of them is in use.
	Disks      []disk.BlockDevice   `json:"disks"`
	Interfaces []netstate.Interface `json:"interfaces"`
	Routes     []netstate.Route     `json:"routes"`
	// Warnings say what could not be read; the rest of the machine still is.
	Warnings []string `json:"warnings"`
}

// Architectures homestaker builds nodes for, as Machine.Arch names them.
const (
	ArchX86_64  = "x86_64"
	ArchAarch64 = "aarch64"
)

// Boards, as Machine.Board names them.
const (
	BoardGeneric = "generic"
	BoardRPi4    = "rpi4"
)

// Sources is where detection reads from.
type Sources struct {
	// System is the root under which /proc, /sys and /dev are found.
	System disk.System
	// Network produces the iproute2 dumps; nil leaves the network out with a warning.
	Network netstate.Source
}

// Live reads the running machine.
func Live() Sources {
	return Sources{System: disk.System{Root: "/"}, Network: netstate.Command{}}
}

// Detect describes the machine of src. It fails only when src.System is
// not a Linux system root at all (no /proc); anything else that cannot be
// read becomes a warning in Machine.Warnings.
func Detect(ctx context.Context, src Sources) (Machine, error) {
	root := rootOf(src.System)
	if st, err := os.Stat(filepath.Join(root, "proc")); err != nil || !st.IsDir() {
		return Machine{}, fmt.Errorf("%s is not a Linux system root: it has no /proc", root)
	}
	m := Machine{
		Board:      BoardGeneric,
		Disks:      []disk.BlockDevice{},
		Interfaces: []netstate.Interface{},
		Routes:     []netstate.Route{},
		Warnings:   []string{},
	}
	warn := func(format string, args ...any) { m.Warnings = append(m.Warnings, fmt.Sprintf(format, args...)) }

	arch, err := readArch(root)
	if err != nil {
		warn("architecture: %v", err)
	} else {
		m.Arch = arch
		if arch != ArchX86_64 && arch != ArchAarch64 {
			warn("architecture %s: homestaker builds nodes for x86_64 and aarch64 (64-bit ARM) only", arch)
		}
	}

	model, err := readModel(root)
	if err != nil {
		warn("board: %v", err)
	}
	m.BoardModel = model
	if strings.HasPrefix(model, "Raspberry Pi 4 Model B") {
		m.Board = BoardRPi4
	}

	if m.MemoryBytes, err = readMemTotal(root); err != nil {
		warn("memory: %v", err)
	}
	if m.CPUs, err = readOnlineCPUs(root); err != nil {
		warn("CPUs: %v", err)
	}

	if devs, err := disk.Discover(src.System); err != nil {
		warn("disks: %v", err)
	} else if devs != nil {
		m.Disks = devs
	}

	if src.Network == nil {
		warn("network: not read")
	} else if st, err := netstate.Read(ctx, src.Network); err != nil {
		if ctx.Err() != nil {
			return Machine{}, ctx.Err()
		}
		warn("network: %v (without it the network cannot be carried over a kexec)", err)
	} else {
		m.Interfaces, m.Routes = st.Interfaces, st.Routes
	}
	return m, nil
}

func rootOf(sys disk.System) string {
	if sys.Root == "" {
		return "/"
	}
	return sys.Root
}

// readArch reads the kernel's architecture from /proc/sys/kernel/arch, the
// same string as `uname -m`, which newer kernels publish there and which a
// recorded machine can hold. On the running machine (root "/") of an older
// kernel without that file it asks uname(2).
func readArch(root string) (string, error) {
	path := filepath.Join(root, "proc/sys/kernel/arch")
	b, err := os.ReadFile(path)
	var arch string
	switch {
	case err == nil:
		arch = strings.TrimSpace(string(b))
	case errors.Is(err, fs.ErrNotExist) && filepath.Clean(root) == "/":
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return "", fmt.Errorf("uname: %w", err)
		}
		arch = unix.ByteSliceToString(u.Machine[:])
	default:
		return "", err
	}
	switch arch {
	case "":
		return "", fmt.Errorf("%s is empty", path)
	case "arm64":
		return ArchAarch64, nil
	}
	return arch, nil
}

// readModel reads the device tree's model (a NUL-terminated string); ""
// when the machine has no device tree.
func readModel(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "proc/device-tree/model"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(bytes.TrimRight(b, "\x00"))), nil
}

func readMemTotal(root string) (uint64, error) {
	path := filepath.Join(root, "proc/meminfo")
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return ParseMemTotal(f, path)
}

// ParseMemTotal reads MemTotal in bytes from the format of /proc/meminfo;
// name is the file named in errors.
func ParseMemTotal(r io.Reader, name string) (uint64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "MemTotal:" {
			continue
		}
		if len(fields) != 3 || fields[2] != "kB" {
			return 0, fmt.Errorf("%s: MemTotal line %q is not \"MemTotal: <n> kB\"", name, sc.Text())
		}
		kb, err := strconv.ParseUint(fields[1], 10, 64)
		if err != nil || kb > 1<<53 {
			return 0, fmt.Errorf("%s: MemTotal %q is not a number of kB", name, fields[1])
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return 0, fmt.Errorf("%s has no MemTotal line", name)
}

func readOnlineCPUs(root string) (int, error) {
	path := filepath.Join(root, "sys/devices/system/cpu/online")
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := ParseCPUList(string(b))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// ParseCPUList counts the CPUs of a kernel CPU list such as "0-3,6,8-11".
func ParseCPUList(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty CPU list")
	}
	n := 0
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return 0, fmt.Errorf("%q is not a CPU list", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b-a > 1<<16 {
				return 0, fmt.Errorf("%q is not a CPU list", s)
			}
		}
		n += b - a + 1
		if n > 1<<20 {
			return 0, fmt.Errorf("%q lists too many CPUs", s)
		}
	}
	return n, nil
}
