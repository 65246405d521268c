package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/internal/vmtest"
	"github.com/homestaker/homestaker/netstate"
)

// arm64Init is /init of the arm64 guest (a Pi already running Linux): it
// brings up a static address with an on-link default route, as the x86_64
// twin does, and runs the real homestaker binary for arm64.
const arm64Init = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /bb
/bin/busybox --install -s /bb
export PATH=/sbin:/bin:/usr/sbin:/usr/bin:/bb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t securityfs securityfs /sys/kernel/security
while read -r m; do insmod "/modules/$m" || echo "insmod $m failed"; done < /modules.list
echo "lockdown: $(cat /sys/kernel/security/lockdown)"
ip link set eth0 up
ip addr add 203.0.113.10/32 dev eth0
ip route add 172.31.1.1 dev eth0
ip route add default via 172.31.1.1 dev eth0 onlink
/homestaker kexec --kernel /second/Image --initrd /second/initrd.zst \
  --cmdline "console=ttyAMA0 panic=-1 rdinit=/init homestaker.test=1" \
  --answers /answers.json --yes --delay 1s
echo "HOMESTAKER-EXITED $?"
sleep 120
`

// TestKexecInArm64VM is the aarch64 twin of TestKexecInVM: the real
// homestaker binary, built for arm64, runs in an arm64 guest (QEMU virt,
// Cortex-A72, TCG) with Debian's arm64 kernel, checks it, loads an arm64
// Image with the carried network, jumps, and the second kernel prints what
// it was handed. Debian's arm64 kernel has no kexec_file_load, so this also
// puts homestaker's kexec_load fallback (kexec-tools) to the test.
// Slow part: the guest's boot and the jump, 15 s under TCG here (about 55 s
// with a cold build cache, building homestaker for arm64 included).
func TestKexecInArm64VM(t *testing.T) {
	kit := vmtest.RequireArm64(t)
	goTool := testutil.RequireTool(t, "go")
	zstdTool := testutil.RequireTool(t, "zstd")
	testutil.RequireRoot(t)
	work := t.TempDir()

	bin := filepath.Join(work, "homestaker")
	build := exec.Command(goTool, "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build for arm64: %v\n%s", err, out)
	}

	// The second initrd: arm64 busybox and the same /init as the x86 twin.
	secondCpio := filepath.Join(work, "second.cpio")
	if err := vmtest.WriteInitrd(secondCpio, []vmtest.InitrdFile{
		{Name: "bin/busybox", Source: kit.Busybox, Mode: 0o755},
		{Name: "init", Data: []byte(secondInit), Mode: 0o755},
	}); err != nil {
		t.Fatal(err)
	}
	second, err := exec.Command(zstdTool, "-q", "-c", secondCpio).Output()
	if err != nil {
		t.Fatal(err)
	}
	if len(second)%4 == 0 {
		second = append(second, 0) // unaligned, so the carry-over's padding is put to the test
	}

	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, _ := ssh.NewPublicKey(pub)
	hostKeyLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostKey)))
	answers := fmt.Sprintf(`{"version":1,
 "host":{"name":"pinode","board":"rpi4","format":"kexec"},
 "ethereum":{"network":"hoodi","execution":"reth","consensus":"nimbus","validator":{"enable":false},"mevBoost":{"enable":false}},
 "disk":{"device":"/dev/vda","filesystem":"ext4"},
 "ssh":{"authorizedKeys":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIrAWAe8Eu8oR0nqj8sN7aHINtNpPHK2dZ4dS1IZqosR staker@laptop"],"hostKey":%q}}`, hostKeyLine)

	mods, err := kit.ModuleFiles("virtio_pci", "virtio_net", "virtio_blk")
	if err != nil {
		t.Fatal(err)
	}
	files := append([]vmtest.InitrdFile{
		{Name: "bin/busybox", Source: kit.Busybox, Mode: 0o755},
		{Name: "bin/sh", Link: "busybox"},
		{Name: "init", Data: []byte(arm64Init), Mode: 0o755},
		{Name: "homestaker", Source: bin, Mode: 0o755},
		{Name: "answers.json", Data: []byte(answers)},
		{Name: "second/Image", Source: kit.Kernel},
		{Name: "second/initrd.zst", Data: second},
		{Name: "bin/ip", Source: filepath.Join(kit.Root, "bin", "ip"), Mode: 0o755},
		{Name: "sbin/kexec", Source: filepath.Join(kit.Root, "sbin", "kexec"), Mode: 0o755},
	}, mods...)
	for _, dir := range []string{"lib", "usr/lib/aarch64-linux-gnu"} {
		libs, err := vmtest.TreeFiles(kit.Root, dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range libs {
			if !strings.HasPrefix(f.Name, "lib/modules/") && !strings.HasPrefix(f.Name, "lib/firmware/") {
				files = append(files, f)
			}
		}
	}
	initrd := filepath.Join(work, "first.cpio")
	if err := vmtest.WriteInitrd(initrd, files); err != nil {
		t.Fatal(err)
	}
	dataDisk := filepath.Join(work, "data.img")
	os.WriteFile(dataDisk, make([]byte, 8<<20), 0o644)

	res, err := vmtest.RunArm64(context.Background(), vmtest.Arm64Config{
		Kernel:    kit.Kernel,
		Initrd:    initrd,
		Append:    "console=ttyAMA0 panic=-1 loglevel=4 rdinit=/init",
		MemoryMiB: 1536,
		NICs:      []vmtest.NIC{{MAC: "52:54:00:12:34:57"}},
		Disks:     []vmtest.Disk{{Path: dataDisk}},
		Expect:    regexp.MustCompile(`SECOND-KERNEL-DONE`),
		Timeout:   2 * time.Minute,
	})
	console := strings.ReplaceAll(res.Console, "\r", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("arm64 guest ran %s", res.Duration.Round(time.Second/10))
	if !res.Matched {
		t.Fatalf("the second kernel never finished; console:\n%s", console)
	}
	for _, want := range []string{
		"[ok] data disk: /dev/vda",
		"[ok] ssh key:",
		"aarch64 kernel (arm64 Image) on this aarch64 machine",
		"Loaded the node's kernel with kexec_load (kexec-tools).",
		"ssh root@203.0.113.10",
		"The node's host key (ssh-ed25519) has the fingerprint\n  " + ssh.FingerprintSHA256(hostKey),
		"HOMESTAKER-EXITED 0",
		"SECOND-KERNEL-UP console=ttyAMA0 panic=-1 rdinit=/init homestaker.test=1",
		"CARRY-KNOWN-HOSTS pinode " + hostKeyLine,
	} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	m := regexp.MustCompile(`(?s)CARRY-NETWORK-BEGIN\n(.*?)CARRY-NETWORK-END`).FindStringSubmatch(console)
	if m == nil {
		t.Fatalf("no carried network on the console:\n%s", console)
	}
	var st netstate.State
	if err := json.Unmarshal([]byte(m[1]), &st); err != nil {
		t.Fatalf("carried network.json: %v\n%s", err, m[1])
	}
	ok := false
	for _, i := range st.Interfaces {
		if i.Name == "eth0" && i.MAC == "52:54:00:12:34:57" && len(i.Addresses) > 0 && i.Addresses[0].Address == "203.0.113.10/32" {
			ok = true
		}
	}
	if !ok {
		t.Errorf("eth0 not carried as set up: %+v", st.Interfaces)
	}
	onlink := false
	for _, r := range st.Routes {
		if r.Interface == "eth0" && r.Destination == "default" && r.Gateway == "172.31.1.1" && r.OnLink {
			onlink = true
		}
	}
	if !onlink {
		t.Errorf("the on-link default route was not carried: %+v", st.Routes)
	}
	if t.Failed() {
		t.Logf("console:\n%s", console)
	} else {
		i := strings.Index(console, "Checks:")
		t.Logf("console from the checks on:\n%s", console[max(i, 0):])
	}
}
