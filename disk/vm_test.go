package disk

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homestaker/homestaker/internal/vmtest"
	"github.com/homestaker/homestaker/secrets"
)

// vmShare builds the homestaker binary into a share folder for the guest,
// with an answers file for /dev/vda and a host key.
func vmShare(t *testing.T, fs string) string {
	t.Helper()
	vmtest.Require(t)
	share := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(share, "homestaker"), "github.com/homestaker/homestaker")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	answers := `{"version":1,"host":{"name":"node1"},"ethereum":{"execution":"geth","consensus":"lighthouse","validator":{"enable":true,"feeRecipient":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"},"mevBoost":{"enable":false}},"disk":{"device":"/dev/vda","filesystem":"` + fs + `"},"ssh":{"authorizedKeys":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIrAWAe8Eu8oR0nqj8sN7aHINtNpPHK2dZ4dS1IZqosR staker@laptop"]},"secrets":{}}`
	if err := os.WriteFile(filepath.Join(share, "homestaker.json"), []byte(answers), 0o644); err != nil {
		t.Fatal(err)
	}
	// disk format reads the key: it must be a real one.
	k, _, err := secrets.EnsureHostKey(t.TempDir(), "node1")
	if err != nil {
		t.Fatal(err)
	}
	key := k.PrivatePath
	for _, f := range []string{key, key + ".pub"} {
		b, _ := os.ReadFile(f)
		os.WriteFile(filepath.Join(share, filepath.Base(f)), b, 0o600)
	}
	return share
}

func sparseDisk(t *testing.T, dir string, size int64) string {
	t.Helper()
	img := filepath.Join(dir, "vda.img")
	if err := resetImage(img, size); err != nil {
		t.Fatal(err)
	}
	return img
}

func runVM(t *testing.T, cfg vmtest.Config) vmtest.Result {
	t.Helper()
	res, err := vmtest.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guest ran in %s", res.Duration.Round(100*time.Millisecond))
	return res
}

// TestVMFormat runs the real `homestaker disk format` on a virtio disk: the
// kernel sees the new partition, the filesystem mounts, the folders, modes
// and the host key are there.
func TestVMFormat(t *testing.T) {
	for _, c := range []struct {
		fs     string
		sector int
	}{{"ext4", 4096}, {"btrfs", 512}} {
		t.Run(fmt.Sprintf("%s/%d", c.fs, c.sector), func(t *testing.T) {
			share := vmShare(t, c.fs)
			pub, err := os.ReadFile(filepath.Join(share, "ssh_host_ed25519_key.pub"))
			if err != nil {
				t.Fatal(err)
			}
			img := sparseDisk(t, share, 2<<30)
			S := vmtest.GuestShareDir
			res := runVM(t, vmtest.Config{
				Disks:    []vmtest.Disk{{Path: img, SectorSize: c.sector}},
				ShareDir: share,
				Modules:  []string{c.fs},
				Script: `set -e
` + S + `/homestaker disk format --answers ` + S + `/homestaker.json --host-key ` + S + `/ssh_host_ed25519_key --yes --confirm-device /dev/vda
echo "CHECK partitions: $(ls /sys/block/vda | grep vda | tr '\n' ' ')"
echo "CHECK blkid: $(blkid -o export /dev/vda1 | grep -E '^(TYPE|LABEL|PARTLABEL)=' | tr '\n' ' ')"
mkdir /tmp/m
mount /dev/vda1 /tmp/m
for f in execution-geth consensus-lighthouse validator-lighthouse secrets secrets/ssh secrets/ssh/ssh_host_ed25519_key; do
  echo "CHECK mode $f $(stat -c %a /tmp/m/$f)"
done
cat /tmp/m/secrets/ssh/ssh_host_ed25519_key.pub
if [ "$(stat -f -c %T /tmp/m)" = btrfs ]; then btrfs subvolume list /tmp/m | sed 's/^/CHECK subvolume /'; fi
umount /tmp/m
sgdisk -v /dev/vda | grep -q 'No problems found' && echo "CHECK sgdisk clean"
`,
			})
			if res.ExitCode != 0 {
				t.Fatalf("guest script failed (exit %d):\n%s", res.ExitCode, res.Console)
			}
			want := []string{
				"CHECK partitions: vda1 ",
				"TYPE=" + c.fs + " ", "LABEL=homestaker ", "PARTLABEL=disk-data-data ",
				"CHECK mode execution-geth 755", "CHECK mode validator-lighthouse 755",
				"CHECK mode secrets 700", "CHECK mode secrets/ssh 700", "CHECK mode secrets/ssh/ssh_host_ed25519_key 600",
				strings.TrimSpace(string(pub)), "CHECK sgdisk clean",
			}
			if c.fs == "btrfs" {
				want = append(want, "path execution-geth", "path consensus-lighthouse", "path validator-lighthouse")
			}
			for _, w := range want {
				if !strings.Contains(res.Console, w) {
					t.Errorf("guest console lacks %q", w)
				}
			}
			if t.Failed() {
				t.Logf("console:\n%s", res.Console)
			}
		})
	}
}

// TestVMRefusesMountedDisk proves that a disk with a mounted partition is
// refused and not touched.
func TestVMRefusesMountedDisk(t *testing.T) {
	share := vmShare(t, "ext4")
	img := sparseDisk(t, share, 2<<30)
	S := vmtest.GuestShareDir
	res := runVM(t, vmtest.Config{
		Disks:    []vmtest.Disk{{Path: img}},
		ShareDir: share,
		Modules:  []string{"ext4"},
		Script: `set -e
sgdisk -n 1:0:0 -c 1:old-data /dev/vda >/dev/null
mkfs.ext4 -q -L olddata /dev/vda1
mkdir /tmp/m
mount -o noinit_itable /dev/vda1 /tmp/m
echo precious > /tmp/m/file; sync
sums() { dd if=/dev/vda bs=1M count=4 2>/dev/null | sha256sum; dd if=/dev/vda bs=1M skip=2047 2>/dev/null | sha256sum; }
before=$(sums)
set +e
` + S + `/homestaker disk format --answers ` + S + `/homestaker.json --host-key ` + S + `/ssh_host_ed25519_key --yes --confirm-device /dev/vda
echo "CHECK exit $?"
set -e
[ "$(sums)" = "$before" ] && echo "CHECK untouched"
echo "CHECK file $(cat /tmp/m/file)"
umount /tmp/m
`,
	})
	if res.ExitCode != 0 {
		t.Fatalf("guest script failed (exit %d):\n%s", res.ExitCode, res.Console)
	}
	for _, w := range []string{"refusing to write /dev/vda: vda1 is mounted at /tmp/m", "CHECK exit 4", "CHECK untouched", "CHECK file precious"} {
		if !strings.Contains(res.Console, w) {
			t.Errorf("guest console lacks %q", w)
		}
	}
	if t.Failed() {
		t.Logf("console:\n%s", res.Console)
	}
}
