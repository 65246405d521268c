package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
)

// richPlain exercises every value kind sops' YAML store knows, so our MAC
// must match sops' on all of them.
const richPlain = `# a comment sops encrypts
name: node1
port: 8551
ratio: 0.25
big: 1e+21
enabled: true
off: false
empty: ""
nothing: null
note_unencrypted: visible
nested:
    inner: value # inline comment
    deeper:
        n: -3
list:
    - one
    - 2
    - true
    - k: v
multi: |
    line one
    line two
`

func TestSopsCreatedFileRoundTrip(t *testing.T) {
	f := newFixture(t)
	sops := sopsBinary(t)
	rel := SecretsPath("node1")
	os.Remove(f.secrets)
	os.WriteFile(f.secrets, []byte(richPlain), 0o644)

	// sops -e picks the recipients from our .sops.yaml creation rule.
	r := runTool(t, f.flake, nil, nil, sops, "-e", "-i", rel)
	if r.err != nil {
		t.Fatalf("sops -e -i: %v %s", r.err, r.stderr)
	}
	got, err := SecretsFileRecipients(f.secrets)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(f.recipients(), ",") {
		t.Fatalf("sops encrypted to %v, want the creation rule's %v", got, f.recipients())
	}

	// Our reader verifies sops' MAC over every kind of value.
	vals, err := Decrypt(f.secrets, f.ids())
	if err != nil {
		t.Fatalf("Decrypt of a sops-written file: %v", err)
	}
	want := map[string]string{"name": "node1", "port": "8551", "ratio": "0.25", "enabled": "true",
		"off": "false", "empty": "", "note_unencrypted": "visible", "multi": "line one\nline two\n"}
	for k, v := range want {
		if vals[k] != v {
			t.Errorf("%s = %q, want %q", k, vals[k], v)
		}
	}

	// Adding our secret keeps every sops-written value; sops still opens it.
	plainBefore := runTool(t, f.flake, []string{"SOPS_AGE_KEY_FILE=" + f.adminFile}, nil, sops, "-d", rel)
	if plainBefore.err != nil {
		t.Fatalf("sops -d: %v %s", plainBefore.err, plainBefore.stderr)
	}
	changed, err := EnsureSecretsFile(f.secrets, f.recipients(), f.ids(), map[string]Generator{"jwt": NewJWTSecret})
	if err != nil || !changed {
		t.Fatalf("EnsureSecretsFile on a sops-written file: changed=%v err=%v", changed, err)
	}
	plainAfter := runTool(t, f.flake, []string{"SOPS_AGE_KEY_FILE=" + f.adminFile}, nil, sops, "-d", rel)
	if plainAfter.err != nil {
		t.Fatalf("sops -d after adding jwt: %v %s", plainAfter.err, plainAfter.stderr)
	}
	jwt := mustDecrypt(t, f)["jwt"]
	if want := string(plainBefore.stdout) + "jwt: " + jwt + "\n"; string(plainAfter.stdout) != want {
		t.Fatalf("sops -d after adding jwt:\n%s\nwant:\n%s", plainAfter.stdout, want)
	}
}

func TestSopsSetAndUpdatekeysOnOurFile(t *testing.T) {
	f := newFixture(t)
	sops := sopsBinary(t)
	rel := SecretsPath("node1")
	jwt := mustDecrypt(t, f)["jwt"]
	env := []string{"SOPS_AGE_KEY_FILE=" + f.adminFile}

	// An admin edits a value with sops; our reader and render accept the result.
	r := runTool(t, f.flake, env, nil, sops, "--set", `["fee_note"] "hello"`, rel)
	if r.err != nil {
		t.Fatalf("sops --set: %v %s", r.err, r.stderr)
	}
	vals := mustDecrypt(t, f)
	if vals["jwt"] != jwt || vals["fee_note"] != "hello" {
		t.Fatalf("after sops --set: jwt kept=%v fee_note=%q", vals["jwt"] == jwt, vals["fee_note"])
	}
	if changed, err := EnsureSecretsFile(f.secrets, f.recipients(), f.ids(), map[string]Generator{"jwt": NewJWTSecret}); err != nil || changed {
		t.Fatalf("render after sops --set: changed=%v err=%v", changed, err)
	}

	// The admin adds a recipient in .sops.yaml and runs sops updatekeys.
	extra, _ := age.GenerateX25519Identity()
	extraFile := filepath.Join(t.TempDir(), "extra.txt")
	writePrivate(t, extraFile, []byte(extra.String()+"\n"))
	recips := append(f.recipients(), extra.Recipient().String())
	cfg := RenderSopsConfig([]HostRule{{Host: "node1", Recipients: recips}})
	os.WriteFile(filepath.Join(f.flake, ".sops.yaml"), cfg, 0o644)
	r = runTool(t, f.flake, env, nil, sops, "updatekeys", "-y", rel)
	if r.err != nil {
		t.Fatalf("sops updatekeys: %v %s", r.err, r.stderr)
	}
	v, err := Decrypt(f.secrets, []age.Identity{extra})
	if err != nil || v["jwt"] != jwt {
		t.Fatalf("after sops updatekeys, the new recipient: %v (jwt kept=%v)", err, v["jwt"] == jwt)
	}
	// Render with the same recipient set is then a no-op.
	if changed, err := EnsureSecretsFile(f.secrets, recips, f.ids(), nil); err != nil || changed {
		t.Fatalf("render after updatekeys: changed=%v err=%v", changed, err)
	}
}

func TestSopsConfigMatchesOnlyItsHosts(t *testing.T) {
	f := newFixture(t)
	sops := sopsBinary(t)
	other := filepath.Join(f.flake, "hosts", "other")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "secrets.yaml"), []byte("a: b\n"), 0o644)
	r := runTool(t, f.flake, nil, nil, sops, "-e", "hosts/other/secrets.yaml")
	if r.err == nil || !strings.Contains(string(r.stderr), "no matching creation rules") {
		t.Fatalf("sops -e on a host without a rule: err=%v stderr=%s", r.err, r.stderr)
	}
	// From inside the host's folder, the rule still matches (sops compares
	// the path relative to .sops.yaml).
	os.WriteFile(filepath.Join(f.flake, "hosts", "node1", "plain.yaml"), []byte("a: b\n"), 0o644)
	r = runTool(t, filepath.Join(f.flake, "hosts", "node1"), nil, nil, sops,
		"-e", "--filename-override", "secrets.yaml", "plain.yaml")
	if r.err != nil {
		t.Fatalf("sops -e from the host folder: %v %s", r.err, r.stderr)
	}
}
