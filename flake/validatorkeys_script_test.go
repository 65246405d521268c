package flake

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/assets"
	"github.com/homestaker/homestaker/internal/testutil"
)

// The node's key import (modules/validator-keys.sh), run as systemd would
// run it (credentials in $CREDENTIALS_DIRECTORY), with fake clients that
// record how they were called: each key is imported once, the history once,
// nimbus gets its keystore layout with private modes, prysm's silent
// failures are caught.

const fakeClient = `#!/bin/sh
echo "$(basename "$0") $*" >> "$LOG"
case "$*" in
  *"accounts list"*) cat "$LISTED" 2>/dev/null ;;
esac
exit 0
`

type importRun struct {
	dir, creds, data, log, script string
}

func newImportRun(t *testing.T, keys int, slashing bool) importRun {
	t.Helper()
	testutil.RequireTool(t, "bash")
	dir := t.TempDir()
	r := importRun{dir: dir, creds: filepath.Join(dir, "creds"), data: filepath.Join(dir, "state", "client"), log: filepath.Join(dir, "log"), script: filepath.Join(dir, "validator-keys.sh")}
	script, err := assets.Modules.ReadFile("nix/modules/validator-keys.sh")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(r.script, script, 0o644)
	os.MkdirAll(filepath.Join(dir, "pkg", "bin"), 0o755)
	for _, b := range []string{"lighthouse", "validator", "nimbus_beacon_node"} {
		os.WriteFile(filepath.Join(dir, "pkg", "bin", b), []byte(fakeClient), 0o755)
	}
	os.MkdirAll(r.creds, 0o700)
	os.WriteFile(filepath.Join(r.creds, "password"), []byte("pw"), 0o600)
	os.WriteFile(filepath.Join(r.creds, "wallet-password"), []byte("wallet-pw"), 0o600)
	for i := 0; i < keys; i++ {
		r.addKey(t, i)
	}
	if slashing {
		os.WriteFile(filepath.Join(r.creds, "slashing-protection"), []byte(`{"metadata":{}}`), 0o600)
	}
	return r
}

func pubkey(i int) string { return "0x" + strings.Repeat(string(rune('a'+i)), 96) }

func (r importRun) addKey(t *testing.T, i int) {
	os.WriteFile(filepath.Join(r.creds, "keystore-"+pubkey(i)), []byte(`{"pubkey":"`+pubkey(i)[2:]+`","version":4}`), 0o600)
}

func (r importRun) run(t *testing.T, client string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", r.script, client, filepath.Join(r.dir, "pkg"), "hoodi", r.data)
	cmd.Env = append(os.Environ(), "CREDENTIALS_DIRECTORY="+r.creds, "LOG="+r.log, "LISTED="+filepath.Join(r.dir, "listed"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (r importRun) calls(t *testing.T) []string {
	data, _ := os.ReadFile(r.log)
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

func TestImportScriptLighthouse(t *testing.T) {
	r := newImportRun(t, 2, true)
	if out, err := r.run(t, "lighthouse"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	calls := r.calls(t)
	imports, histories := 0, 0
	for _, c := range calls {
		if strings.Contains(c, "account validator import") {
			imports++
			for _, want := range []string{"--network hoodi", "--datadir " + r.data, "--reuse-password", "--password-file " + r.creds + "/password", "--keystore "} {
				if !strings.Contains(c, want) {
					t.Errorf("import call lacks %q: %s", want, c)
				}
			}
		}
		if strings.Contains(c, "slashing-protection import") {
			histories++
		}
	}
	if imports != 2 || histories != 1 {
		t.Fatalf("%d imports, %d history imports: %q", imports, histories, calls)
	}
	// A reboot imports nothing again; a key added later is imported alone.
	os.Remove(r.log)
	if out, err := r.run(t, "lighthouse"); err != nil || strings.TrimSpace(readFile(r.log)) != "" {
		t.Fatalf("second run called %q (%v)\n%s", readFile(r.log), err, out)
	}
	r.addKey(t, 2)
	if out, err := r.run(t, "lighthouse"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if c := r.calls(t); len(c) != 1 || !strings.Contains(c[0], pubkey(2)) {
		t.Fatalf("adding a key called %q", c)
	}
}

func TestImportScriptNimbusLayout(t *testing.T) {
	r := newImportRun(t, 2, true)
	if out, err := r.run(t, "nimbus"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for i := 0; i < 2; i++ {
		ks := filepath.Join(r.data, "validators", pubkey(i), "keystore.json")
		pw := filepath.Join(r.data, "secrets", pubkey(i))
		for path, mode := range map[string]os.FileMode{ks: 0o600, pw: 0o600, filepath.Dir(ks): 0o700, filepath.Join(r.data, "secrets"): 0o700} {
			st, err := os.Stat(path)
			if err != nil || st.Mode().Perm() != mode {
				t.Errorf("%s: %v %v, want mode %v", path, st.Mode(), err, mode)
			}
		}
		if readFile(pw) != "pw" {
			t.Errorf("%s holds %q", pw, readFile(pw))
		}
	}
	if c := r.calls(t); len(c) != 1 || !strings.Contains(c[0], "slashingdb import") || !strings.Contains(c[0], "--data-dir="+r.data) {
		t.Fatalf("nimbus calls %q", c)
	}
}

func TestImportScriptPrysmChecksTheWallet(t *testing.T) {
	r := newImportRun(t, 1, false)
	// Prysm exits 0 but the key is not in the wallet: the unit must fail.
	out, err := r.run(t, "prysm")
	if err == nil || !strings.Contains(out, "prysm did not import "+pubkey(0)) {
		t.Fatalf("a silent prysm failure passed: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(r.data, ".homestaker", "key-"+pubkey(0))); err == nil {
		t.Fatal("a failed import was marked as done")
	}
	os.WriteFile(filepath.Join(r.dir, "listed"), []byte("Account 0 | "+pubkey(0)[2:]+"\n"), 0o644)
	if out, err := r.run(t, "prysm"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	c := r.calls(t)
	last := c[len(c)-2]
	for _, want := range []string{"accounts import", "--accept-terms-of-use", "--hoodi", "--wallet-dir=" + r.data + "/wallet", "--wallet-password-file=" + r.creds + "/wallet-password", "--account-password-file=" + r.creds + "/password"} {
		if !strings.Contains(last, want) {
			t.Errorf("prysm import lacks %q: %s", want, last)
		}
	}
}

func readFile(p string) string {
	data, _ := os.ReadFile(p)
	return string(data)
}
