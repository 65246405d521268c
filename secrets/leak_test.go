package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestScanFindsPrivateMaterialWithoutRepeatingIt(t *testing.T) {
	dir := t.TempDir()
	const secret = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00"
	os.MkdirAll(filepath.Join(dir, "hosts", "node1"), 0o755)
	os.WriteFile(filepath.Join(dir, "clean.nix"), []byte("{ }\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "hosts", "node1", "a"), []byte("x -----BEGIN OPENSSH PRIVATE KEY----- y"), 0o644)
	os.WriteFile(filepath.Join(dir, "hosts", "node1", "b"), []byte("age-secret-key-1qqq"), 0o644)
	os.WriteFile(filepath.Join(dir, "c"), []byte("jwt="+secret), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(dir, "link"))

	leaks, err := ScanDir(dir, "", secret)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range leaks {
		got = append(got, l.String())
		if strings.Contains(l.String(), secret) {
			t.Fatalf("the leak report repeats the secret: %s", l)
		}
	}
	want := []string{"c at byte 4: secret value #2", "a at byte 21: a PEM private key", "b at byte 0: an age secret key"}
	if len(got) != len(want) {
		t.Fatalf("leaks %q, want %d", got, len(want))
	}
	for i := range want {
		if !strings.HasSuffix(got[i], want[i]) {
			t.Errorf("leak %d: %q, want suffix %q", i, got[i], want[i])
		}
	}
	if l := ScanBytes("stdout", []byte("all fine")); len(l) != 0 {
		t.Fatalf("clean bytes: %v", l)
	}
}

// TestKeysStayPrivate runs the whole key setup and scans everything that is
// meant to be public: the flake folder and the values homestaker puts in a
// plan (host public key, recipients, known_hosts line).
func TestKeysStayPrivate(t *testing.T) {
	f := newFixture(t)
	jwt := mustDecrypt(t, f)["jwt"]
	line, err := f.host.KnownHostsLine("node1")
	if err != nil {
		t.Fatal(err)
	}
	public := strings.Join([]string{f.host.PublicKey, f.host.Fingerprint, f.host.Recipient, f.adminRecipient, line}, "\n")
	if l := ScanBytes("plan values", []byte(public), jwt); len(l) > 0 {
		t.Fatal(l)
	}
	if l, err := ScanDir(f.flake, jwt); err != nil || len(l) > 0 {
		t.Fatalf("flake: %v %v", l, err)
	}
	// The private folder does hold keys, and the scanner sees them.
	l, err := ScanDir(f.private)
	if err != nil || len(l) != 2 {
		t.Fatalf("private folder: want the host key and the admin key found, got %v %v", l, err)
	}
	for _, p := range []string{f.host.PrivatePath, f.adminFile} {
		assertMode(t, p, 0o600)
	}
	for _, d := range []string{f.private, filepath.Dir(f.host.PrivatePath), filepath.Dir(f.adminFile)} {
		assertMode(t, d, 0o700)
	}
}
