package disk

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// System is where block devices are looked up: the root under which /sys,
// /proc and /dev are found. Production uses System{Root: "/"}; tests point it
// at recorded machines under testdata/.
type System struct {
	Root string
}

func (s System) path(p string) string {
	root := s.Root
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, p)
}

// BlockDevice is a whole disk as homestaker shows it and checks it before
// writing. The JSON form is what `homestaker disk list --json` and
// `homestaker detect --json` print.
type BlockDevice struct {
	// Name is the kernel name (nvme0n1, sda, mmcblk0).
	Name string `json:"name"`
	// Path is /dev/<Name>.
	Path string `json:"path"`
	// ByID is the stable /dev/disk/by-id path, "" when udev made none.
	ByID      string `json:"byId"`
	SizeBytes uint64 `json:"sizeBytes"`
	Model     string `json:"model"`
	// Rotational is true for spinning disks.
	Rotational bool `json:"rotational"`
	Removable  bool `json:"removable"`
	// InUse is true when the disk must not be written; InUseReason says why.
	InUse       bool   `json:"inUse"`
	InUseReason string `json:"inUseReason"`

	// SectorSize is the logical sector size in bytes.
	SectorSize uint64 `json:"-"`
	// Partitions are the kernel names of the disk's partitions.
	Partitions []string `json:"-"`
}

// ignoredDevices are virtual or optical block devices that never hold a data disk.
func ignoredDevice(name string) bool {
	for _, p := range []string{"loop", "ram", "zram", "sr", "fd", "dm-", "md", "nbd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Discover lists the whole disks of sys, sorted by name, with the reasons any
// of them is in use: a partition mounted, holding / or swap, or held by
// LVM, RAID or device-mapper.
func Discover(sys System) ([]BlockDevice, error) {
	entries, err := os.ReadDir(sys.path("/sys/block"))
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !ignoredDevice(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return readDevices(sys, names)
}

// readDevices reads the named whole disks, with what uses them, sorted by name.
func readDevices(sys System, names []string) ([]BlockDevice, error) {
	mounts, err := readMounts(sys)
	if err != nil {
		return nil, err
	}
	swaps, err := readSwaps(sys)
	if err != nil {
		return nil, err
	}
	byID := readByID(sys)
	devs := make([]BlockDevice, 0, len(names))
	for _, name := range names {
		d, err := readDevice(sys, name, mounts, swaps, byID)
		if err != nil {
			return nil, err
		}
		devs = append(devs, d)
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i].Name < devs[j].Name })
	return devs, nil
}

func readDevice(sys System, name string, mounts []Mount, swaps []string, byID map[string]string) (BlockDevice, error) {
	dir := sys.path("/sys/block/" + name)
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	sectors, err := strconv.ParseUint(read("size"), 10, 64)
	if err != nil {
		return BlockDevice{}, fmt.Errorf("read size of %s: %q is not a number of sectors", name, read("size"))
	}
	d := BlockDevice{
		Name:       name,
		Path:       "/dev/" + name,
		SizeBytes:  sectors * 512, // sysfs counts 512-byte units whatever the sector size
		SectorSize: 512,
		Rotational: read("queue/rotational") == "1",
		Removable:  read("removable") == "1",
		ByID:       byID[name],
	}
	if n, err := strconv.ParseUint(read("queue/logical_block_size"), 10, 64); err == nil && n > 0 {
		d.SectorSize = n
	}
	d.Model = read("device/model")
	if d.Model == "" {
		d.Model = read("device/name") // SD and eMMC cards
	}
	d.Model = strings.Join(strings.Fields(d.Model), " ")

	// The disk itself and each partition can be mounted, swap, or held.
	parts := []string{name}
	subs, _ := os.ReadDir(dir)
	for _, s := range subs {
		if _, err := os.Stat(filepath.Join(dir, s.Name(), "partition")); err == nil {
			d.Partitions = append(d.Partitions, s.Name())
			parts = append(parts, s.Name())
		}
	}
	var reasons []string
	for _, p := range parts {
		pdir := dir
		if p != name {
			pdir = filepath.Join(dir, p)
		}
		majmin := readTrim(filepath.Join(pdir, "dev"))
		for _, m := range mounts {
			if (majmin != "" && m.MajorMinor == majmin) || m.Source == "/dev/"+p {
				if m.MountPoint == "/" {
					reasons = append(reasons, fmt.Sprintf("%s holds / (the running system)", p))
				} else {
					reasons = append(reasons, fmt.Sprintf("%s is mounted at %s", p, m.MountPoint))
				}
			}
		}
		for _, s := range swaps {
			if s == "/dev/"+p {
				reasons = append(reasons, fmt.Sprintf("%s is in use as swap", p))
			}
		}
		holders, _ := os.ReadDir(filepath.Join(pdir, "holders"))
		for _, h := range holders {
			reasons = append(reasons, fmt.Sprintf("%s is held by %s (RAID, LVM or device-mapper)", p, h.Name()))
		}
	}
	if read("ro") == "1" {
		reasons = append(reasons, name+" is read-only")
	}
	if len(reasons) > 0 {
		d.InUse = true
		d.InUseReason = strings.Join(reasons, "; ")
	}
	return d, nil
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// readByID maps kernel names to their preferred /dev/disk/by-id path.
func readByID(sys System) map[string]string {
	dir := sys.path("/dev/disk/by-id")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	best := map[string]string{}
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		dev := filepath.Base(target)
		if cur, ok := best[dev]; !ok || byIDRank(e.Name()) < byIDRank(cur) ||
			byIDRank(e.Name()) == byIDRank(cur) && e.Name() < cur {
			best[dev] = e.Name()
		}
	}
	for dev, n := range best {
		best[dev] = "/dev/disk/by-id/" + n
	}
	return best
}

// byIDRank prefers names a person recognises (model and serial) over WWNs and EUIs.
func byIDRank(n string) int {
	switch {
	case strings.HasPrefix(n, "wwn-"), strings.HasPrefix(n, "nvme-eui."), strings.HasPrefix(n, "nvme-nvme."),
		strings.HasPrefix(n, "scsi-3"), strings.HasPrefix(n, "scsi-S"):
		return 1
	default:
		return 0
	}
}

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	// MajorMinor is the device number, "259:2".
	MajorMinor string
	// Root is the folder of the filesystem the mount shows ("/" for a
	// whole filesystem, the folder for a bind mount).
	Root       string
	MountPoint string
	FSType     string
	Source     string
}

// ReadMounts reads the mounts of the system (its /proc/self/mountinfo).
func ReadMounts(sys System) ([]Mount, error) { return readMounts(sys) }

func readMounts(sys System) ([]Mount, error) {
	path := sys.path("/proc/self/mountinfo")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	ms, err := ParseMountInfo(f)
	if err != nil {
		return nil, fmt.Errorf("read mounts from %s: %w", path, err)
	}
	return ms, nil
}

// ParseMountInfo reads the format of /proc/<pid>/mountinfo.
func ParseMountInfo(r io.Reader) ([]Mount, error) {
	var ms []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		sep := -1
		for i := 6; i < len(fields); i++ {
			if fields[i] == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 7 || sep < 0 || sep+2 >= len(fields) || !strings.Contains(fields[2], ":") {
			return nil, fmt.Errorf("line %d: not a mountinfo line: %q", line, sc.Text())
		}
		ms = append(ms, Mount{
			MajorMinor: fields[2],
			Root:       unescapeOctal(fields[3]),
			MountPoint: unescapeOctal(fields[4]),
			FSType:     fields[sep+1],
			Source:     unescapeOctal(fields[sep+2]),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return ms, nil
}

// unescapeOctal undoes the kernel's \ooo escaping of spaces, tabs, newlines
// and backslashes in mount paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func readSwaps(sys System) ([]string, error) {
	f, err := os.Open(sys.path("/proc/swaps"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // a kernel without swap support
	}
	if err != nil {
		return nil, fmt.Errorf("read swaps: %w", err)
	}
	defer f.Close()
	return ParseSwaps(f)
}

// ParseSwaps reads the file names from the format of /proc/swaps.
func ParseSwaps(r io.Reader) ([]string, error) {
	var names []string
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if first {
			first = false
			if len(fields) > 0 && fields[0] == "Filename" {
				continue
			}
		}
		if len(fields) == 0 {
			continue
		}
		names = append(names, unescapeOctal(fields[0]))
	}
	return names, sc.Err()
}

// Lookup finds the whole disk that path names (/dev/sdb,
// /dev/disk/by-id/…) among devs, following symlinks under sys. It refuses
// partitions and devices homestaker does not list.
func Lookup(sys System, devs []BlockDevice, path string) (BlockDevice, error) {
	if !strings.HasPrefix(path, "/dev/") {
		return BlockDevice{}, fmt.Errorf("%s: name the disk by its /dev path, e.g. /dev/disk/by-id/…", path)
	}
	real, err := filepath.EvalSymlinks(sys.path(path))
	if err != nil {
		return BlockDevice{}, fmt.Errorf("%s: no such device: %w", path, err)
	}
	name := filepath.Base(real)
	for _, d := range devs {
		if d.Name == name {
			return d, nil
		}
		for _, p := range d.Partitions {
			if p == name {
				return BlockDevice{}, fmt.Errorf("%s is partition %s of %s: name the whole disk (%s)", path, name, d.Name, d.Path)
			}
		}
	}
	return BlockDevice{}, fmt.Errorf("%s (%s) is not a disk homestaker can use (loop, RAM, optical and virtual devices are left out)", path, name)
}

// SizeText is a disk size in the decimal units printed on disk labels
// ("3.8 TB", "512 GB"), as homestaker shows sizes to users.
func SizeText(n uint64) string {
	const (
		gb = 1000 * 1000 * 1000
		tb = 1000 * gb
	)
	switch {
	case n >= tb:
		return fmt.Sprintf("%.1f TB", float64(n)/tb)
	case n >= gb:
		return fmt.Sprintf("%.0f GB", float64(n)/gb)
	default:
		return fmt.Sprintf("%.0f MB", float64(n)/1e6)
	}
}
