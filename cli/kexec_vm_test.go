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

// secondInit is /init of the kernel the guest kexecs into: it shows that
// it runs and prints what was carried over.
const secondInit = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc
/bin/busybox mount -t proc proc /proc
echo "SECOND-KERNEL-UP $(/bin/busybox cat /proc/cmdline)"
echo CARRY-NETWORK-BEGIN
/bin/busybox cat /homestaker/carry/network.json
echo CARRY-NETWORK-END
echo "CARRY-KNOWN-HOSTS $(/bin/busybox cat /homestaker/carry/known_hosts)"
/bin/busybox ls -ln /homestaker/carry
echo SECOND-KERNEL-DONE
/bin/busybox poweroff -f
`

// TestKexecInVM runs the real homestaker binary in a QEMU guest with a
// static address and an on-link default route (as on a Hetzner server):
// it checks the guest, loads the host's kernel with a zstd initrd, jumps,
// and the second kernel's /init prints the network it was handed.
func TestKexecInVM(t *testing.T) {
	vmtest.Require(t)
	goTool := testutil.RequireTool(t, "go")
	cpioTool := testutil.RequireTool(t, "cpio")
	zstdTool := testutil.RequireTool(t, "zstd")
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(kernels) == 0 {
		testutil.Missing(t, "no /boot/vmlinuz-* (install linux-image-amd64)")
	}
	kernel := kernels[len(kernels)-1]
	busybox := "/bin/busybox"
	if _, err := os.Stat(busybox); err != nil {
		busybox = "/usr/bin/busybox"
	}
	share := t.TempDir()

	// The real binary, static, as it runs on a rescue system.
	build := exec.Command(goTool, "build", "-o", filepath.Join(share, "homestaker"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// The second initrd: busybox and /init, zstd-compressed like NixOS's.
	stage := filepath.Join(t.TempDir(), "root")
	os.MkdirAll(filepath.Join(stage, "bin"), 0o755)
	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(stage, "bin", "busybox"), bb, 0o755)
	os.WriteFile(filepath.Join(stage, "init"), []byte(secondInit), 0o755)
	// The carry-over archive must start 4-byte aligned after the
	// compressed initrd; make sure this one ends unaligned, so the padding
	// is put to the test (a note file's length changes the packed size).
	second := filepath.Join(share, "second.img")
	for i := 0; ; i++ {
		os.WriteFile(filepath.Join(stage, "note"), []byte(strings.Repeat("x", i)), 0o644)
		pack := exec.Command("sh", "-c", fmt.Sprintf("find . | %s -o -H newc --quiet | %s -q -c > %s",
			cpioTool, zstdTool, second))
		pack.Dir = stage
		if out, err := pack.CombinedOutput(); err != nil {
			t.Fatalf("pack the second initrd: %v\n%s", err, out)
		}
		if st, err := os.Stat(second); err != nil || st.Size()%4 != 0 {
			break
		}
		if i == 64 {
			t.Fatal("cannot make the second initrd end unaligned")
		}
	}

	// The node's answers: an SSH key, the data disk /dev/vda, a host key.
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, _ := ssh.NewPublicKey(pub)
	hostKeyLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostKey)))
	answers := fmt.Sprintf(`{"version":1,
 "host":{"name":"vmnode","arch":"x86_64","format":"kexec"},
 "ethereum":{"network":"hoodi","execution":"geth","consensus":"lighthouse","validator":{"enable":false},"mevBoost":{"enable":false}},
 "disk":{"device":"/dev/vda","filesystem":"ext4"},
 "ssh":{"authorizedKeys":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIrAWAe8Eu8oR0nqj8sN7aHINtNpPHK2dZ4dS1IZqosR staker@laptop"],"hostKey":%q}}`, hostKeyLine)
	os.WriteFile(filepath.Join(share, "answers.json"), []byte(answers), 0o644)
	dataDisk := filepath.Join(t.TempDir(), "data.img")
	os.WriteFile(dataDisk, make([]byte, 8<<20), 0o644)

	s := vmtest.GuestShareDir
	script := `set -e
mount -t securityfs securityfs /sys/kernel/security
echo "lockdown: $(cat /sys/kernel/security/lockdown)"
ip link set eth0 up
ip addr add 203.0.113.10/32 dev eth0
ip route add 172.31.1.1 dev eth0
ip route add default via 172.31.1.1 dev eth0 onlink
` + s + `/homestaker kexec --kernel ` + kernel + ` --initrd ` + s + `/second.img \
  --cmdline "console=ttyS0 panic=-1 rdinit=/init homestaker.test=1" \
  --answers ` + s + `/answers.json --yes --delay 1s
echo "HOMESTAKER-EXITED $?"
sleep 120
`
	res, err := vmtest.Run(context.Background(), vmtest.Config{
		Disks:     []vmtest.Disk{{Path: dataDisk}},
		ShareDir:  share,
		Script:    script,
		MemoryMiB: 1536,
		NICs:      []vmtest.NIC{{MAC: "52:54:00:12:34:56"}},
		Expect:    regexp.MustCompile(`SECOND-KERNEL-DONE`),
		Timeout:   4 * time.Minute,
	})
	console := strings.ReplaceAll(res.Console, "\r", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guest ran in %s", res.Duration)
	if !res.Matched {
		t.Fatalf("the second kernel never finished (script exit %d); console:\n%s", res.ExitCode, console)
	}
	for _, want := range []string{
		"[ok] secure boot: the kernel is not locked down.",
		"[ok] data disk: /dev/vda",
		"[ok] ssh key:",
		"Loaded the node's kernel with kexec_file_load.",
		"ssh root@203.0.113.10",
		"The node's host key (ssh-ed25519) has the fingerprint\n  " + ssh.FingerprintSHA256(hostKey),
		"HOMESTAKER-EXITED 0",
		"SECOND-KERNEL-UP console=ttyS0 panic=-1 rdinit=/init homestaker.test=1",
		"CARRY-KNOWN-HOSTS vmnode " + hostKeyLine,
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
	var eth0 *netstate.Interface
	for i := range st.Interfaces {
		if st.Interfaces[i].Name == "eth0" {
			eth0 = &st.Interfaces[i]
		}
	}
	if eth0 == nil || eth0.MAC != "52:54:00:12:34:56" || len(eth0.Addresses) == 0 || eth0.Addresses[0].Address != "203.0.113.10/32" {
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
