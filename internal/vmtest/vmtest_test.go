package vmtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestModuleOrder(t *testing.T) {
	_, modDir, err := hostKernel()
	if err != nil {
		t.Skip(err)
	}
	order, err := moduleOrder(modDir, baseModules)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, m := range order {
		pos[modName(m)] = i
	}
	for _, pair := range [][2]string{{"virtio_ring", "virtio"}, {"virtio", "virtio_pci"}, {"9pnet", "9pnet_virtio"}, {"netfs", "9p"}} {
		a, aok := pos[pair[0]]
		b, bok := pos[pair[1]]
		if aok && bok && a > b {
			t.Errorf("%s loads after %s: %v", pair[0], pair[1], order)
		}
	}
	if _, err := moduleOrder(modDir, []string{"no_such_module"}); err == nil {
		t.Error("unknown module accepted")
	}
}

// TestRun boots a guest that sees the host root, a disk and the share, and
// reports its exit status.
func TestRun(t *testing.T) {
	Require(t)
	share := t.TempDir()
	img := filepath.Join(share, "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Config{
		Disks:    []Disk{{Path: img, SectorSize: 4096}},
		ShareDir: share,
		Timeout:  2 * time.Minute,
		Script: `cat /sys/block/vda/queue/logical_block_size
test -x /usr/bin/env && echo host-root-ok
echo from-guest > ` + GuestShareDir + `/out.txt
exit 7`,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guest ran in %s", res.Duration)
	if res.ExitCode != 7 || !strings.Contains(res.Console, "4096") || !strings.Contains(res.Console, "host-root-ok") {
		t.Fatalf("exit %d, console:\n%s", res.ExitCode, res.Console)
	}
	if b, err := os.ReadFile(filepath.Join(share, "out.txt")); err != nil || string(b) != "from-guest\n" {
		t.Errorf("share: %q %v", b, err)
	}
}
