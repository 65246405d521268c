package secrets

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/internal/testutil"
)

func TestEnsureHostKeyGeneratesOnceAndLoads(t *testing.T) {
	private := filepath.Join(t.TempDir(), "private")
	k, created, err := EnsureHostKey(private, "node1")
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Fatal("first call: created = false")
	}
	if want := filepath.Join(private, "hosts", "node1", "ssh_host_ed25519_key"); k.PrivatePath != want {
		t.Errorf("PrivatePath %s, want %s", k.PrivatePath, want)
	}
	for _, d := range []string{private, filepath.Join(private, "hosts"), filepath.Dir(k.PrivatePath)} {
		assertMode(t, d, 0o700)
	}
	assertMode(t, k.PrivatePath, 0o600)
	if !strings.HasPrefix(k.PublicKey, "ssh-ed25519 AAAA") || strings.Count(k.PublicKey, " ") != 1 {
		t.Errorf("PublicKey %q", k.PublicKey)
	}
	if !strings.HasPrefix(k.Fingerprint, "SHA256:") || !strings.HasPrefix(k.Recipient, "age1") {
		t.Errorf("Fingerprint %q Recipient %q", k.Fingerprint, k.Recipient)
	}
	before, _ := os.ReadFile(k.PrivatePath)

	again, created, err := EnsureHostKey(private, "node1")
	if err != nil {
		t.Fatal(err)
	}
	if created || again != k {
		t.Fatalf("second call: created=%v key=%+v, want the same key %+v", created, again, k)
	}
	after, _ := os.ReadFile(k.PrivatePath)
	if string(before) != string(after) {
		t.Fatal("second call rewrote the private key")
	}

	id, err := k.Identity()
	if err != nil {
		t.Fatal(err)
	}
	if id.Recipient().String() != k.Recipient {
		t.Fatal("identity does not match recipient")
	}
	// The HostKey value holds no private material, even printed.
	if leaks := ScanBytes("HostKey", []byte(fmt.Sprintf("%+v %#v", k, k))); len(leaks) > 0 {
		t.Fatal(leaks)
	}
}

func TestHostKeyJudgedBySSHKeygen(t *testing.T) {
	keygen := testutil.RequireTool(t, "ssh-keygen")
	k, _, err := EnsureHostKey(t.TempDir(), "node1")
	if err != nil {
		t.Fatal(err)
	}
	// ssh-keygen reads our private key and derives the same public key...
	r := runTool(t, "", nil, nil, keygen, "-y", "-f", k.PrivatePath)
	if r.err != nil {
		t.Fatalf("ssh-keygen -y: %v: %s", r.err, r.stderr)
	}
	if got := strings.Join(strings.Fields(string(r.stdout))[:2], " "); got != k.PublicKey {
		t.Fatalf("ssh-keygen -y gives %q, want %q", got, k.PublicKey)
	}
	// ...and the same fingerprint.
	r = runTool(t, "", nil, nil, keygen, "-l", "-E", "sha256", "-f", k.PublicPath)
	if r.err != nil {
		t.Fatalf("ssh-keygen -l: %v: %s", r.err, r.stderr)
	}
	if f := strings.Fields(string(r.stdout)); len(f) < 2 || f[1] != k.Fingerprint {
		t.Fatalf("ssh-keygen -l gives %q, want fingerprint %s", r.stdout, k.Fingerprint)
	}
	// The known_hosts line is accepted by ssh-keygen -F.
	line, err := k.KnownHostsLine("node1", "192.0.2.10")
	if err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, []byte(line+"\n"), 0o644)
	r = runTool(t, "", nil, nil, keygen, "-F", "192.0.2.10", "-f", kh)
	if r.err != nil || !strings.Contains(string(r.stdout), k.PublicKey) {
		t.Fatalf("ssh-keygen -F did not find the host: %v %s %s", r.err, r.stdout, r.stderr)
	}
}

func TestKnownHostsLine(t *testing.T) {
	pub := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl comment"
	got, err := KnownHostsLine(pub, "node1", "192.0.2.10:2222", "[2001:db8::1]:22")
	if err != nil {
		t.Fatal(err)
	}
	want := "node1,[192.0.2.10]:2222,2001:db8::1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	for _, bad := range [][]string{nil, {""}, {"a b"}, {"a,b"}, {"*"}} {
		if _, err := KnownHostsLine(pub, bad...); err == nil {
			t.Errorf("addresses %q: no error", bad)
		}
	}
	if _, err := KnownHostsLine("nonsense", "node1"); err == nil {
		t.Error("bad key: no error")
	}
}

func TestEnsureHostKeyRefusesBadInput(t *testing.T) {
	private := t.TempDir()
	for _, host := range []string{"", "../x", "a/b", "-x", "x-", strings.Repeat("a", 64), "nöde"} {
		if _, _, err := EnsureHostKey(private, host); err == nil {
			t.Errorf("host %q: no error", host)
		}
	}
	k, _, err := EnsureHostKey(private, "node1")
	if err != nil {
		t.Fatal(err)
	}
	// A .pub that does not match is refused, a missing one rewritten.
	other, _, _ := EnsureHostKey(private, "node2")
	os.WriteFile(k.PublicPath, []byte(other.PublicKey+"\n"), 0o644)
	if _, _, err := EnsureHostKey(private, "node1"); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched .pub: %v", err)
	}
	os.Remove(k.PublicPath)
	if _, _, err := EnsureHostKey(private, "node1"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(k.PublicPath); !strings.HasPrefix(string(b), k.PublicKey) {
		t.Fatalf(".pub not rewritten: %q", b)
	}
	// A private key readable by others is tightened; garbage is refused.
	os.Chmod(k.PrivatePath, 0o644)
	if _, err := LoadHostKey(private, "node1"); err != nil {
		t.Fatal(err)
	}
	assertMode(t, k.PrivatePath, 0o600)
	os.WriteFile(other.PrivatePath, []byte("garbage"), 0o600)
	if _, err := LoadHostKey(private, "node2"); err == nil {
		t.Fatal("garbage private key: no error")
	}
}
