package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/homestaker/homestaker/internal/testutil"
)

func TestParseRecipient(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	good := id.Recipient().String()
	if r, err := ParseRecipient("  " + good + "\n"); err != nil || r.String() != good {
		t.Fatalf("valid recipient: %v %v", r, err)
	}
	pq, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"":                          "required",
		pq.Recipient().String():     "post-quantum",
		id.String():                 "private age key",
		"ssh-ed25519 AAAA":          "SSH key",
		"npub1xyz":                  `starts with "age1"`,
		corrupt(good):               "not a valid age X25519 recipient",
		"age1yubikey1qwertyuiopasd": "plugin",
	}
	for in, want := range cases {
		err := ValidateRecipient(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.30q: got %v, want an error containing %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "AGE-SECRET-KEY") {
			t.Errorf("error repeats the private key: %v", err)
		}
	}
}

func TestValidateSSHPublicKey(t *testing.T) {
	good := []string{
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@laptop",
		"ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=",
	}
	for _, s := range good {
		if err := ValidateSSHPublicKey(s); err != nil {
			t.Errorf("%.30q: %v", s, err)
		}
	}
	bad := []string{"", "hello", "-----BEGIN OPENSSH PRIVATE KEY-----",
		good[0] + "\n" + good[1], `command="x" ` + good[0]}
	for _, s := range bad {
		if err := ValidateSSHPublicKey(s); err == nil {
			t.Errorf("%.30q: no error", s)
		}
	}
	if err := ValidateAdminSSHKey(good[1]); err == nil || !strings.Contains(err.Error(), "ssh-ed25519") {
		t.Errorf("ecdsa admin key: %v", err)
	}
	if r, err := AdminRecipient(good[0]); err != nil || !strings.HasPrefix(r, "age1") {
		t.Errorf("AdminRecipient(ssh-ed25519): %q %v", r, err)
	}
}

func TestEnsureAdminIdentityOpensWithAge(t *testing.T) {
	ageBin := testutil.RequireTool(t, "age")
	private := filepath.Join(t.TempDir(), "private")
	recipient, path, created, err := EnsureAdminIdentity(private)
	if err != nil || !created {
		t.Fatalf("created=%v err=%v", created, err)
	}
	assertMode(t, path, 0o600)
	assertMode(t, filepath.Dir(path), 0o700)
	assertMode(t, private, 0o700)
	content, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(content)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "# created: ") ||
		lines[1] != "# public key: "+recipient || !strings.HasPrefix(lines[2], "AGE-SECRET-KEY-1") {
		t.Fatalf("keys.txt format:\n%s", strings.ReplaceAll(string(content), lines[len(lines)-1], "<secret>"))
	}

	again, path2, created, err := EnsureAdminIdentity(private)
	if err != nil || created || again != recipient || path2 != path {
		t.Fatalf("second call: %s %s %v %v", again, path2, created, err)
	}
	after, _ := os.ReadFile(path)
	if string(after) != string(content) {
		t.Fatal("second call rewrote keys.txt")
	}

	// The real age opens what it encrypted to the recipient with our keys.txt.
	dir := t.TempDir()
	enc := runTool(t, dir, nil, []byte("hello admin"), ageBin, "-r", recipient, "-a")
	if enc.err != nil {
		t.Fatalf("age -r: %v %s", enc.err, enc.stderr)
	}
	dec := runTool(t, dir, nil, enc.stdout, ageBin, "-d", "-i", path)
	if dec.err != nil || string(dec.stdout) != "hello admin" {
		t.Fatalf("age -d -i keys.txt: %v %s", dec.err, dec.stderr)
	}

	// LoadIdentities refuses a keys file others can read.
	os.Chmod(path, 0o644)
	if _, err := LoadIdentities(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("LoadIdentities on 0644: %v", err)
	}
}

func TestNewJWTSecret(t *testing.T) {
	a, err := NewJWTSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewJWTSecret()
	if len(a) != 64 || strings.Trim(a, "0123456789abcdef") != "" || a == b {
		t.Fatalf("JWT secrets %q %q", a, b)
	}
}

// corrupt changes the last character of a Bech32 string to another valid
// Bech32 character, so the checksum fails.
func corrupt(s string) string {
	last := "q"
	if strings.HasSuffix(s, last) {
		last = "p"
	}
	return s[:len(s)-1] + last
}
