package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/homestaker/homestaker/secrets"
)

// runCLI runs homestaker in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string {
		if k == "XDG_STATE_HOME" {
			return filepath.Join(t.TempDir(), "state")
		}
		return ""
	}}
	code := run(context.Background(), env, args)
	return code, out.String(), errb.String()
}

func TestValidateExamplesAndRefusals(t *testing.T) {
	files, _ := filepath.Glob("examples/*.json")
	for _, f := range files {
		if code, _, stderr := runCLI(t, "validate", "--answers", f); code != exitOK {
			t.Errorf("%s: exit %d: %s", f, code, stderr)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"version":1,"host":{"name":"Bad_Host"},"ethereum":{"execution":"geth","consensus":"teku","validator":{"enable":true}},"disk":{"device":"/dev/sdb"},"ssh":{"authorizedKeys":[]}}`), 0o644)
	code, _, stderr := runCLI(t, "validate", "--answers", bad)
	if code != exitInvalid {
		t.Fatalf("exit %d, want %d", code, exitInvalid)
	}
	for _, want := range []string{"host.name", "ethereum.validator.feeRecipient", "ethereum.validator.enable", "ssh.authorizedKeys", "warning: disk.device"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if code, _, _ := runCLI(t, "validate"); code != exitUsage {
		t.Errorf("validate without --answers: exit %d", code)
	}
	if code, _, _ := runCLI(t, "frobnicate"); code != exitUsage {
		t.Errorf("unknown command: exit %d", code)
	}
	if code, out, _ := runCLI(t, "schema"); code != exitOK || !strings.Contains(out, `"additionalProperties": false`) {
		t.Errorf("schema: exit %d", code)
	}
}

// TestRenderLeaksNothing renders a flake and checks that no private key or
// secret value reaches the flake folder or the output, that file modes are
// right, and that a second render keeps keys and secret values.
func TestRenderLeaksNothing(t *testing.T) {
	dir := t.TempDir()
	out, priv := filepath.Join(dir, "flake"), filepath.Join(dir, "private")
	code, stdout, stderr := runCLI(t, "render", "--answers", "examples/hoodi-nethermind-teku-iso.json", "--out", out, "--private", priv)
	if code != exitOK {
		t.Fatalf("render: exit %d\n%s", code, stderr)
	}
	key, err := secrets.LoadHostKey(priv, "hoodi-box")
	if err != nil {
		t.Fatal(err)
	}
	id, err := key.Identity()
	if err != nil {
		t.Fatal(err)
	}
	values, err := secrets.Decrypt(filepath.Join(out, "hosts", "hoodi-box", "secrets.yaml"), []age.Identity{id})
	if err != nil {
		t.Fatal(err)
	}
	jwt := values["jwt"]
	if len(jwt) != 64 {
		t.Fatalf("jwt secret has %d hex digits, want 64", len(jwt))
	}
	leaks, err := secrets.ScanDir(out, jwt)
	if err != nil {
		t.Fatal(err)
	}
	leaks = append(leaks, secrets.ScanBytes("stdout", []byte(stdout), jwt)...)
	leaks = append(leaks, secrets.ScanBytes("stderr", []byte(stderr), jwt)...)
	for _, l := range leaks {
		t.Errorf("leak: %s", l)
	}
	// No admin recipient was given: one was generated, 0600, outside the flake.
	ids, _ := filepath.Glob(filepath.Join(priv, "*"))
	for _, p := range append(ids, key.PrivatePath) {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if info.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, info.Mode().Perm(), want)
		}
	}
	answers, _ := os.ReadFile(filepath.Join(out, "hosts", "hoodi-box", "homestaker.json"))
	if !strings.Contains(string(answers), key.PublicKey) || !strings.Contains(string(answers), "age1") {
		t.Errorf("homestaker.json lacks the host key or admin recipient:\n%s", answers)
	}

	// Second render: nothing changes, secrets keep their value.
	code, stdout, stderr = runCLI(t, "render", "--answers", "examples/hoodi-nethermind-teku-iso.json", "--out", out, "--private", priv)
	if code != exitOK {
		t.Fatalf("second render: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "0 file(s) written") {
		t.Errorf("second render wrote files:\n%s", stdout)
	}
	again, err := secrets.Decrypt(filepath.Join(out, "hosts", "hoodi-box", "secrets.yaml"), []age.Identity{id})
	if err != nil || again["jwt"] != jwt {
		t.Errorf("the JWT changed on re-render (err=%v)", err)
	}
}

func TestRenderRefusesPrivateInsideFlake(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runCLI(t, "render", "--answers", "examples/hoodi-nethermind-teku-iso.json", "--out", dir, "--private", filepath.Join(dir, "keys"))
	if code != exitUsage || !strings.Contains(stderr, "inside the flake") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

func TestRenderDryRunWritesNothing(t *testing.T) {
	dir := t.TempDir()
	out, priv := filepath.Join(dir, "flake"), filepath.Join(dir, "private")
	code, stdout, stderr := runCLI(t, "render", "--dry-run", "--answers", "examples/rpi4-hoodi-geth-nimbus.json", "--out", out, "--private", priv)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "nothing was changed") {
		t.Errorf("stdout: %s", stdout)
	}
	for _, p := range []string{out, priv} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("dry run created %s", p)
		}
	}
}
