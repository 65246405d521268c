package disk

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/plan"
)

func testPlan(fs plan.Filesystem) plan.Plan {
	var p plan.Plan
	p.Host.Name = "node1"
	p.Disk.Device = "/dev/disk/by-id/nvme-Samsung_SSD_990_PRO_4TB_S7DNNJ0X123456"
	p.Disk.Filesystem = fs
	p.Ethereum.Execution = "geth"
	p.Ethereum.Consensus = "lighthouse"
	p.Ethereum.Validator.Enable = true
	return p
}

func placed(t *testing.T, fs plan.Filesystem, size, sector uint64) Layout {
	t.Helper()
	l, err := New(testPlan(fs))
	if err != nil {
		t.Fatal(err)
	}
	l, err = l.Place(size, sector)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestPlaceFillsAlignedDisk(t *testing.T) {
	const tib4 = 4000787030016 // a "4 TB" NVMe
	for _, sector := range []uint64{512, 4096} {
		l := placed(t, plan.Ext4, tib4, sector)
		p := l.Data()
		if want := uint64(Alignment + BIOSBootBytes + BootBytes); p.StartBytes != want {
			t.Errorf("sector %d: data starts at %d, want %d (after the BIOS boot and EFI system partitions)", sector, p.StartBytes, want)
		}
		if b := l.Partitions[0]; b.StartBytes != Alignment || b.SizeBytes != BIOSBootBytes || b.TypeGUID != TypeBIOSBoot {
			t.Errorf("sector %d: BIOS boot partition %+v", sector, b)
		}
		if e, n, ok := l.Boot(); !ok || n != 2 || e.StartBytes != 2*Alignment || e.SizeBytes != BootBytes || e.Filesystem.Type != VFAT {
			t.Errorf("sector %d: EFI system partition #%d %+v", sector, n, e)
		}
		_, end := usableRange(tib4, sector)
		if p.EndBytes()%Alignment != 0 || p.EndBytes() > end || end-p.EndBytes() >= Alignment {
			t.Errorf("sector %d: end %d not the last MiB boundary before %d", sector, p.EndBytes(), end)
		}
	}
}

func TestNewFolders(t *testing.T) {
	l, err := New(testPlan(plan.Btrfs))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range l.Data().Filesystem.Folders {
		got = append(got, f.Path)
		if strings.HasPrefix(f.Path, "secrets") != (f.Mode == 0o700) {
			t.Errorf("folder %s mode %o", f.Path, f.Mode)
		}
		if f.Subvolume == strings.HasPrefix(f.Path, "secrets") {
			t.Errorf("folder %s subvolume=%v", f.Path, f.Subvolume)
		}
	}
	want := "execution-geth consensus-lighthouse validator-lighthouse secrets secrets/ssh"
	if strings.Join(got, " ") != want {
		t.Errorf("folders %q, want %q", got, want)
	}
}

func TestLayoutRefusals(t *testing.T) {
	bad := func(name string, mutate func(*plan.Plan), size, sector uint64, want string) {
		t.Helper()
		p := testPlan(plan.Ext4)
		mutate(&p)
		l, err := New(p)
		if err == nil {
			_, err = l.Place(size, sector)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, want)
		}
	}
	none := func(*plan.Plan) {}
	bad("fs", func(p *plan.Plan) { p.Disk.Filesystem = "zfs" }, 8<<30, 512, "disk.filesystem")
	bad("device", func(p *plan.Plan) { p.Disk.Device = " " }, 8<<30, 512, "disk.device")
	bad("client", func(p *plan.Plan) { p.Ethereum.Execution = "../etc" }, 8<<30, 512, "ethereum.execution")
	bad("sector", none, 8<<30, 520, "sector size")
	bad("unaligned size", none, 8<<30+512, 4096, "multiple")
	bad("tiny", none, 512<<20, 512, "smaller than the minimum")
	bad("no room for data", none, 3<<30, 512, "smaller than the minimum")
	bad("too small for gpt", none, 1<<20, 512, "too small")

	l := placed(t, plan.Ext4, 8<<30, 512)
	l.Partitions = append(l.Partitions, l.Data())
	l.Partitions[3].Name = "other"
	if err := l.Validate(); err == nil || !strings.Contains(err.Error(), "outside") && !strings.Contains(err.Error(), "inside the previous") {
		t.Errorf("overlap: %v", err)
	}
	l = placed(t, plan.Ext4, 8<<30, 512)
	l.Partitions[2].StartBytes += 4096
	if err := l.Validate(); err == nil || !strings.Contains(err.Error(), "multiples of 1 MiB") {
		t.Errorf("misaligned: %v", err)
	}
	l = placed(t, plan.Ext4, 8<<30, 512)
	l.Partitions[0].Filesystem = l.Data().Filesystem
	if err := l.Validate(); err == nil || !strings.Contains(err.Error(), "holds no filesystem") {
		t.Errorf("BIOS boot partition with a filesystem: %v", err)
	}
	l = placed(t, plan.Ext4, 8<<30, 512)
	l.Partitions[1].Filesystem.Label = "hsboot"
	if err := l.Validate(); err == nil || !strings.Contains(err.Error(), "FAT label") {
		t.Errorf("lower-case FAT label: %v", err)
	}
}

func TestNixString(t *testing.T) {
	cases := map[string]string{
		`plain`:      `"plain"`,
		`a"b\c`:      `"a\"b\\c"`,
		"x${y}$z":    `"x\${y}$z"`,
		"l1\nl2\t":   `"l1\nl2\t"`,
		"$${":        `"$\${"`,
		"/dev/a b'c": `"/dev/a b'c"`,
	}
	for in, want := range cases {
		if got := nixString(in); got != want {
			t.Errorf("nixString(%q) = %s, want %s", in, got, want)
		}
	}
}

// evalNix evaluates a Nix file to JSON with the real nix-instantiate.
func evalNix(t *testing.T, src []byte) map[string]any {
	t.Helper()
	bin := testutil.RequireTool(t, "nix-instantiate")
	dir := t.TempDir()
	path := filepath.Join(dir, "disko.nix")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "--parse", path).CombinedOutput(); err != nil {
		t.Fatalf("nix-instantiate --parse: %v\n%s\n%s", err, out, src)
	}
	cmd := exec.Command(bin, "--eval", "--strict", "--json", path)
	cmd.Env = append(os.Environ(), "NIX_STATE_DIR="+filepath.Join(dir, "state"), "HOME="+dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix-instantiate --eval: %v\n%s", err, src)
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	return v
}

// diskoPartition is the part of a disko partition declaration homestaker writes.
type diskoPartition struct {
	Priority int    `json:"priority"`
	Label    string `json:"label"`
	Type     string `json:"type"`
	Size     string `json:"size"`
	Content  struct {
		Type         string              `json:"type"`
		Format       string              `json:"format"`
		ExtraArgs    []string            `json:"extraArgs"`
		Mountpoint   string              `json:"mountpoint"`
		Subvolumes   map[string]struct{} `json:"subvolumes"`
		MountOptions []string            `json:"mountOptions"`
	} `json:"content"`
}

type diskoDisk struct {
	Type    string `json:"type"`
	Device  string `json:"device"`
	Content struct {
		Type       string                    `json:"type"`
		Partitions map[string]diskoPartition `json:"partitions"`
	} `json:"content"`
}

// decodeDisko evaluates disko.nix and returns disko.devices.disk.
func decodeDisko(t *testing.T, src []byte) map[string]diskoDisk {
	t.Helper()
	v := evalNix(t, src)
	raw, _ := json.Marshal(v["disko"].(map[string]any)["devices"].(map[string]any)["disk"])
	var disks map[string]diskoDisk
	if err := json.Unmarshal(raw, &disks); err != nil {
		t.Fatal(err)
	}
	return disks
}

// typeCodes maps the sgdisk codes homestaker declares to GPT type GUIDs.
var typeCodes = map[string]string{
	TypeCodeLinuxFilesystem: TypeLinuxFilesystem,
	TypeCodeEFISystem:       TypeEFISystem,
	TypeCodeBIOSBoot:        TypeBIOSBoot,
}

// checkDiskoAgrees proves that disko.nix declares exactly layout l.
func checkDiskoAgrees(t *testing.T, l Layout, src []byte) {
	t.Helper()
	disks := decodeDisko(t, src)
	if len(disks) != 1 {
		t.Fatalf("disko declares %d disks, want 1", len(disks))
	}
	d, ok := disks[DiskName]
	if !ok || d.Type != "disk" || d.Device != l.Device || d.Content.Type != "gpt" {
		t.Fatalf("disko disk %+v does not match layout device %s", disks, l.Device)
	}
	if len(d.Content.Partitions) != len(l.Partitions) {
		t.Fatalf("disko has %d partitions, layout %d", len(d.Content.Partitions), len(l.Partitions))
	}
	prio := -1
	for _, p := range l.Partitions {
		dp, ok := d.Content.Partitions[p.Name]
		if !ok {
			t.Fatalf("disko lacks partition %q", p.Name)
		}
		if dp.Priority <= prio {
			t.Errorf("partition %s: disko priority %d does not come after %d: disko would order the partitions differently", p.Name, dp.Priority, prio)
		}
		prio = dp.Priority
		if !p.Fill && dp.Size != fmt.Sprintf("%dM", p.SizeBytes>>20) {
			t.Errorf("partition %s: disko size %q, layout %d bytes", p.Name, dp.Size, p.SizeBytes)
		}
		if dp.Label != p.Label || typeCodes[dp.Type] != p.TypeGUID {
			t.Errorf("partition %s: disko label %q type %q, layout %q %q", p.Name, dp.Label, dp.Type, p.Label, p.TypeGUID)
		}
		if p.Fill && dp.Size != "100%" {
			t.Errorf("partition %s fills the disk, disko size %q", p.Name, dp.Size)
		}
		fsys := p.Filesystem
		if fsys.Type == "" {
			if dp.Content.Type != "" {
				t.Errorf("partition %s holds no filesystem, disko declares %q", p.Name, dp.Content.Type)
			}
			continue
		}
		if fsys.Type == VFAT {
			if dp.Content.Type != "filesystem" || dp.Content.Format != "vfat" || dp.Content.Mountpoint != BootMountPoint ||
				strings.Join(dp.Content.ExtraArgs, " ") != "-F 32 -n "+BootFilesystemLabel || !slices.Contains(dp.Content.MountOptions, "umask=0077") {
				t.Errorf("partition %s: disko declares %+v, want vfat labelled %s at %s", p.Name, dp.Content, BootFilesystemLabel, BootMountPoint)
			}
			continue
		}
		if dp.Content.Mountpoint != fsys.MountPoint || strings.Join(dp.Content.ExtraArgs, " ") != "-L "+fsys.Label {
			t.Errorf("partition %s: disko mountpoint %q args %q", p.Name, dp.Content.Mountpoint, dp.Content.ExtraArgs)
		}
		if fsys.Type == plan.Btrfs {
			if dp.Content.Type != "btrfs" {
				t.Errorf("disko content type %q, want btrfs", dp.Content.Type)
			}
			var subs []string
			for _, f := range fsys.Folders {
				if f.Subvolume {
					subs = append(subs, f.Path)
					if _, ok := dp.Content.Subvolumes["/"+f.Path]; !ok {
						t.Errorf("disko lacks subvolume /%s", f.Path)
					}
				}
			}
			if len(subs) != len(dp.Content.Subvolumes) {
				t.Errorf("disko subvolumes %v, layout %v", dp.Content.Subvolumes, subs)
			}
		} else if dp.Content.Type != "filesystem" || dp.Content.Format != string(fsys.Type) {
			t.Errorf("disko content %q format %q, want filesystem %s", dp.Content.Type, dp.Content.Format, fsys.Type)
		}
	}
}

func TestDiskoNixAgreesWithLayout(t *testing.T) {
	for _, fs := range []plan.Filesystem{plan.Ext4, plan.XFS, plan.Btrfs} {
		t.Run(string(fs), func(t *testing.T) {
			l := placed(t, fs, 64<<30, 4096)
			checkDiskoAgrees(t, l, l.DiskoNix())
		})
	}
}

func TestDiskoNixEscapesDevice(t *testing.T) {
	p := testPlan(plan.Ext4)
	p.Disk.Device = `/dev/disk/by-id/odd"name${builtins.abort "x"}\`
	l, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	disks := decodeDisko(t, l.DiskoNix())
	if got := disks[DiskName].Device; got != p.Disk.Device {
		t.Errorf("device round-trips as %q, want %q", got, p.Disk.Device)
	}
}
