package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"go.yaml.in/yaml/v3"
)

// fixture is a flake folder with one host's secrets file, encrypted to the
// host's key and a generated admin identity.
type fixture struct {
	flake, private string
	host           HostKey
	hostID         *age.X25519Identity
	hostIDFile     string // keys.txt holding the host's derived identity
	adminRecipient string
	adminFile      string
	secrets        string // absolute path of hosts/node1/secrets.yaml
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{flake: t.TempDir(), private: filepath.Join(t.TempDir(), "private")}
	var err error
	if f.host, _, err = EnsureHostKey(f.private, "node1"); err != nil {
		t.Fatal(err)
	}
	if f.hostID, err = f.host.Identity(); err != nil {
		t.Fatal(err)
	}
	f.hostIDFile = filepath.Join(t.TempDir(), "host-keys.txt")
	writePrivate(t, f.hostIDFile, []byte(f.hostID.String()+"\n"))
	if f.adminRecipient, f.adminFile, _, err = EnsureAdminIdentity(f.private); err != nil {
		t.Fatal(err)
	}
	cfg := RenderSopsConfig([]HostRule{{Host: "node1", Recipients: []string{f.host.Recipient, f.adminRecipient}}})
	if err := os.WriteFile(filepath.Join(f.flake, ".sops.yaml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	f.secrets = filepath.Join(f.flake, filepath.FromSlash(SecretsPath("node1")))
	changed, err := EnsureSecretsFile(f.secrets, f.recipients(), nil, map[string]Generator{"jwt": NewJWTSecret})
	if err != nil || !changed {
		t.Fatalf("create secrets file: changed=%v err=%v", changed, err)
	}
	return f
}

func (f *fixture) recipients() []string { return []string{f.host.Recipient, f.adminRecipient} }

func (f *fixture) ids() []age.Identity { return []age.Identity{f.hostID} }

// sopsDecrypt runs `sops -d` on the secrets file with env and returns the
// decrypted YAML as a map.
func sopsDecrypt(t *testing.T, f *fixture, env ...string) (map[string]any, toolResult) {
	t.Helper()
	r := runTool(t, f.flake, env, nil, sopsBinary(t), "-d", SecretsPath("node1"))
	if r.err != nil {
		return nil, r
	}
	var m map[string]any
	if err := yaml.Unmarshal(r.stdout, &m); err != nil {
		t.Fatalf("sops -d output is not YAML: %v", err)
	}
	return m, r
}

func mustDecrypt(t *testing.T, f *fixture) map[string]string {
	t.Helper()
	v, err := Decrypt(f.secrets, f.ids())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSopsDecryptsWithAdminAndHostIdentity(t *testing.T) {
	f := newFixture(t)
	ours := mustDecrypt(t, f)
	if len(ours["jwt"]) != 64 {
		t.Fatalf("jwt %d characters, want 64", len(ours["jwt"]))
	}
	for name, env := range map[string]string{
		"admin keys.txt":                "SOPS_AGE_KEY_FILE=" + f.adminFile,
		"host identity from SSH key":    "SOPS_AGE_KEY_FILE=" + f.hostIDFile,
		"host identity in SOPS_AGE_KEY": "SOPS_AGE_KEY=" + f.hostID.String(),
	} {
		m, r := sopsDecrypt(t, f, env)
		if r.err != nil {
			t.Fatalf("%s: sops -d: %v\n%s", name, r.err, r.stderr)
		}
		if m["jwt"] != ours["jwt"] || len(m) != 1 {
			t.Errorf("%s: sops -d gives %d keys, jwt equal=%v", name, len(m), m["jwt"] == ours["jwt"])
		}
	}
	// Nothing decrypts without a key.
	if _, r := sopsDecrypt(t, f); r.err == nil {
		t.Fatal("sops -d without any key succeeded")
	}
	assertMode(t, f.secrets, SecretsFileMode)
	leaks, err := ScanDir(f.flake, ours["jwt"])
	if err != nil || len(leaks) > 0 {
		t.Fatalf("flake leaks: %v %v", leaks, err)
	}
}

// replaceValue swaps the ciphertext of key in the secrets file.
func replaceValue(t *testing.T, path, key, newEnc string) {
	t.Helper()
	data, _ := os.ReadFile(path)
	var out []string
	found := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, key+": ") {
			line = key + ": " + newEnc
			found = true
		}
		out = append(out, line)
	}
	if !found {
		t.Fatalf("no %s in %s", key, path)
	}
	os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644)
}

func TestChangedValueFailsMAC(t *testing.T) {
	f := newFixture(t)
	sf := mustParse(t, f.secrets)
	key, err := sf.dataKey(f.ids())
	if err != nil {
		t.Fatal(err)
	}
	// A value properly encrypted with the data key, but not the one the MAC covers.
	forged, err := encryptString(strings.Repeat("0", 64), key, "jwt:")
	if err != nil {
		t.Fatal(err)
	}
	replaceValue(t, f.secrets, "jwt", forged)
	_, r := sopsDecrypt(t, f, "SOPS_AGE_KEY_FILE="+f.adminFile)
	if r.err == nil || !strings.Contains(string(r.stderr), "MAC mismatch") {
		t.Fatalf("sops -d on a changed value: err=%v stderr=%s", r.err, r.stderr)
	}
	if _, err := Decrypt(f.secrets, f.ids()); err == nil || !strings.Contains(err.Error(), "MAC mismatch") {
		t.Fatalf("Decrypt on a changed value: %v", err)
	}
	if _, err := EnsureSecretsFile(f.secrets, f.recipients(), f.ids(), map[string]Generator{"jwt": NewJWTSecret}); err == nil {
		t.Fatal("EnsureSecretsFile accepted a file with a bad MAC")
	}
}

func mustParse(t *testing.T, path string) *sopsFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sf, err := parseSopsFile(data)
	if err != nil {
		t.Fatal(err)
	}
	return sf
}

func TestEnsureSecretsFileIsIdempotent(t *testing.T) {
	f := newFixture(t)
	before, _ := os.ReadFile(f.secrets)
	info0, _ := os.Stat(f.secrets)
	for _, ids := range [][]age.Identity{nil, f.ids()} {
		changed, err := EnsureSecretsFile(f.secrets, f.recipients(), ids, map[string]Generator{"jwt": NewJWTSecret})
		if err != nil || changed {
			t.Fatalf("second render (identities=%d): changed=%v err=%v", len(ids), changed, err)
		}
	}
	// Same recipients in another order, duplicated: still nothing to do.
	rev := []string{f.adminRecipient, f.host.Recipient, f.adminRecipient}
	if changed, err := EnsureSecretsFile(f.secrets, rev, f.ids(), nil); err != nil || changed {
		t.Fatalf("reordered recipients: changed=%v err=%v", changed, err)
	}
	after, _ := os.ReadFile(f.secrets)
	info1, _ := os.Stat(f.secrets)
	if string(before) != string(after) || !info0.ModTime().Equal(info1.ModTime()) {
		t.Fatal("the secrets file was rewritten")
	}
}

func TestAddedSecretKeepsExistingValues(t *testing.T) {
	f := newFixture(t)
	old := mustDecrypt(t, f)
	oldStanzas := mustParse(t, f.secrets).ages
	want := map[string]Generator{
		"jwt":   func() (string, error) { t.Fatal("jwt regenerated"); return "", nil },
		"extra": func() (string, error) { return "new value", nil },
	}
	changed, err := ensureSecretsFile(f.secrets, f.recipients(), f.ids(), want,
		func() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600)) })
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	m, r := sopsDecrypt(t, f, "SOPS_AGE_KEY_FILE="+f.adminFile)
	if r.err != nil {
		t.Fatalf("sops -d: %v %s", r.err, r.stderr)
	}
	if m["jwt"] != old["jwt"] || m["extra"] != "new value" {
		t.Fatalf("after adding a secret: jwt kept=%v extra=%v", m["jwt"] == old["jwt"], m["extra"])
	}
	sf := mustParse(t, f.secrets)
	if sf.lastModified != "2030-01-02T02:04:05Z" {
		t.Errorf("lastmodified %s", sf.lastModified)
	}
	for i := range oldStanzas {
		if sf.ages[i] != oldStanzas[i] {
			t.Error("the data key was re-encrypted although recipients did not change")
		}
	}
}

func TestRecipientChangeKeepsValues(t *testing.T) {
	f := newFixture(t)
	old := mustDecrypt(t, f)
	before := mustParse(t, f.secrets)
	newAdmin, _ := age.GenerateX25519Identity()
	newAdminFile := filepath.Join(t.TempDir(), "new-admin.txt")
	writePrivate(t, newAdminFile, []byte(newAdmin.String()+"\n"))

	// Add an admin, drop the old one (updatekeys semantics).
	recips := []string{f.host.Recipient, newAdmin.Recipient().String()}
	changed, err := EnsureSecretsFile(f.secrets, recips, f.ids(), map[string]Generator{"jwt": NewJWTSecret})
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	after := mustParse(t, f.secrets)
	if got := after.recipients(); strings.Join(got, ",") != strings.Join(recips, ",") {
		t.Fatalf("recipients %v, want %v", got, recips)
	}
	if after.ages[0] != before.ages[0] {
		t.Error("the host's stanza changed although the host stayed")
	}
	if after.mac != before.mac || after.lastModified != before.lastModified {
		t.Error("values' MAC changed on a recipient change")
	}
	m, r := sopsDecrypt(t, f, "SOPS_AGE_KEY_FILE="+newAdminFile)
	if r.err != nil || m["jwt"] != old["jwt"] {
		t.Fatalf("new admin: sops -d: %v %s (jwt kept=%v)", r.err, r.stderr, m["jwt"] == old["jwt"])
	}
	if _, r := sopsDecrypt(t, f, "SOPS_AGE_KEY_FILE="+f.adminFile); r.err == nil {
		t.Fatal("the removed admin can still open the file")
	}
	// Without an identity, a needed change is refused with a reason.
	_, err = EnsureSecretsFile(f.secrets, f.recipients(), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "identity") {
		t.Fatalf("change without identity: %v", err)
	}
}

func TestEnsureSecretsFileRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	id, _ := age.GenerateX25519Identity()
	r := id.Recipient().String()
	p := filepath.Join(dir, "s.yaml")
	gen := func() (string, error) { return "x", nil }
	cases := []struct {
		recips []string
		want   map[string]Generator
		msg    string
	}{
		{nil, map[string]Generator{"a": gen}, "no recipients"},
		{[]string{"age1bad"}, map[string]Generator{"a": gen}, "recipient"},
		{[]string{r}, map[string]Generator{"sops": gen}, "reserved"},
		{[]string{r}, map[string]Generator{"a_unencrypted": gen}, "unencrypted"},
		{[]string{r}, map[string]Generator{"a:b": gen}, "letters"},
		{[]string{r}, map[string]Generator{"a": func() (string, error) { return "", nil }}, "empty"},
	}
	for _, c := range cases {
		_, err := EnsureSecretsFile(p, c.recips, nil, c.want)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%v %v: got %v, want an error containing %q", c.recips, c.want, err, c.msg)
		}
	}
	if _, err := os.Stat(p); err == nil {
		t.Error("a refused call wrote the file")
	}
	os.WriteFile(p, []byte("a: plain\n"), 0o644)
	if _, err := EnsureSecretsFile(p, []string{r}, []age.Identity{id}, nil); err == nil || !strings.Contains(err.Error(), "not encrypted with sops") {
		t.Errorf("plain file: %v", err)
	}
}

// TestSopsSSHKeyFileNeedsConversion pins a fact the rest of homestaker
// relies on: sops' SOPS_AGE_SSH_PRIVATE_KEY_FILE opens only files encrypted
// to "ssh-ed25519" recipients, not to the converted age1… recipient that
// sops-nix needs. To open a host's file by hand, convert its SSH key to an
// age identity (HostKey.Identity, or ssh-to-age) and use SOPS_AGE_KEY_FILE.
func TestSopsSSHKeyFileNeedsConversion(t *testing.T) {
	f := newFixture(t)
	_, r := sopsDecrypt(t, f, "SOPS_AGE_SSH_PRIVATE_KEY_FILE="+f.host.PrivatePath)
	if r.err == nil {
		t.Fatal("sops now opens X25519 stanzas with SOPS_AGE_SSH_PRIVATE_KEY_FILE: the docs of HostKey.Identity can say so")
	}
	if _, r := sopsDecrypt(t, f, "SOPS_AGE_KEY_FILE="+f.hostIDFile); r.err != nil {
		t.Fatalf("the converted identity: %v %s", r.err, r.stderr)
	}
}
