package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/secrets"
)

// keysAnswers writes an answers file for the rpi4 example with the test
// validator keys (validator/testdata/keys, made by an independent
// implementation) copied into dir.
func keysAnswers(t *testing.T, dir string) (answers, keysDir string) {
	t.Helper()
	keysDir = filepath.Join(dir, "keys")
	src := "validator/testdata/keys"
	filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(keysDir, rel), 0o700)
		}
		data, _ := os.ReadFile(p)
		return os.WriteFile(filepath.Join(keysDir, rel), data, 0o600)
	})
	data, err := os.ReadFile("examples/rpi4-hoodi-geth-nimbus.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(data, &m)
	v := m["ethereum"].(map[string]any)["validator"].(map[string]any)
	v["keystoreDir"] = filepath.Join(keysDir, "validator_keys")
	v["passwordFile"] = filepath.Join(keysDir, "password.txt")
	v["slashingProtection"] = filepath.Join(keysDir, "slashing-protection.json")
	out, _ := json.MarshalIndent(m, "", "  ")
	answers = filepath.Join(dir, "pi.json")
	if err := os.WriteFile(answers, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return answers, keysDir
}

// TestRenderValidatorKeys renders a node with validator keys: the keystores,
// the password and the slashing history end up in secrets.yaml, which the
// real sops decrypts to exactly the user's files, and nowhere else — not in
// the flake, the answers file, stdout or stderr.
func TestRenderValidatorKeys(t *testing.T) {
	sops := testutil.RequireTool(t, "sops")
	dir := t.TempDir()
	answers, keysDir := keysAnswers(t, dir)
	out, priv := filepath.Join(dir, "flake"), filepath.Join(dir, "private")
	code, stdout, stderr := runCLI(t, "render", "--answers", answers, "--out", out, "--private", priv)
	if code != exitOK {
		t.Fatalf("render: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "BLS (0x00) withdrawal credentials") {
		t.Errorf("no warning for the BLS withdrawal credentials:\n%s", stderr)
	}
	key, err := secrets.LoadHostKey(priv, "pi")
	if err != nil {
		t.Fatal(err)
	}
	id, err := key.Identity()
	if err != nil {
		t.Fatal(err)
	}
	secretsFile := filepath.Join(out, "hosts", "pi", "secrets.yaml")
	values, err := secrets.Decrypt(secretsFile, []age.Identity{id})
	if err != nil {
		t.Fatal(err)
	}
	password := "correct horse ⚡ battery"
	if values["validator-password"] != password {
		t.Errorf("validator-password is %d bytes, not the password without its newline", len(values["validator-password"]))
	}

	// The real sops, with the host's identity, as sops-nix on the node.
	cmd := exec.Command(sops, "-d", "--output-type", "json", secretsFile)
	cmd.Env = append(os.Environ(), "SOPS_AGE_KEY="+id.String())
	plain, err := cmd.Output()
	if err != nil {
		t.Fatalf("sops -d: %v", err)
	}
	var decrypted map[string]string
	if err := json.Unmarshal(plain, &decrypted); err != nil {
		t.Fatal(err)
	}
	keystores, _ := filepath.Glob(filepath.Join(keysDir, "validator_keys", "keystore-*.json"))
	if len(keystores) != 3 {
		t.Fatalf("%d test keystores", len(keystores))
	}
	for _, ks := range keystores {
		data, _ := os.ReadFile(ks)
		var k struct{ Pubkey string }
		json.Unmarshal(data, &k)
		if got := decrypted["validator-keystore-0x"+k.Pubkey]; got != string(data) {
			t.Errorf("sops gives %d bytes for %s, the file has %d", len(got), filepath.Base(ks), len(data))
		}
	}
	history, _ := os.ReadFile(filepath.Join(keysDir, "slashing-protection.json"))
	if decrypted["validator-slashing-protection"] != string(history) {
		t.Error("the slashing history does not decrypt to the file")
	}
	if decrypted["validator-password"] != password {
		t.Error("sops does not give the password")
	}

	// Nothing of the password or a keystore's ciphertext outside secrets.yaml.
	var cipherMessages []string
	for _, ks := range keystores {
		data, _ := os.ReadFile(ks)
		var k struct {
			Crypto struct {
				Cipher struct{ Message string }
			}
		}
		json.Unmarshal(data, &k)
		cipherMessages = append(cipherMessages, k.Crypto.Cipher.Message)
	}
	for _, needle := range append(cipherMessages, password, "correct horse") {
		leaks, err := secrets.ScanDir(out, needle)
		if err != nil {
			t.Fatal(err)
		}
		leaks = append(leaks, secrets.ScanBytes("stdout", []byte(stdout), needle)...)
		leaks = append(leaks, secrets.ScanBytes("stderr", []byte(stderr), needle)...)
		for _, l := range leaks {
			t.Errorf("leak: %s", l)
		}
	}
	def, _ := os.ReadFile(filepath.Join(out, "hosts", "pi", "default.nix"))
	for _, want := range []string{"homestaker.validatorKeys", `client = "nimbus";`, "slashingProtection = true;"} {
		if !strings.Contains(string(def), want) {
			t.Errorf("default.nix lacks %s", want)
		}
	}
}

// TestRenderRefusesBadKeys: a wrong password is refused at its field, with
// exit 3, before anything is written.
func TestRenderRefusesBadKeys(t *testing.T) {
	dir := t.TempDir()
	answers, keysDir := keysAnswers(t, dir)
	os.WriteFile(filepath.Join(keysDir, "password.txt"), []byte("not the password\n"), 0o600)
	out, priv := filepath.Join(dir, "flake"), filepath.Join(dir, "private")
	code, stdout, stderr := runCLI(t, "render", "--answers", answers, "--out", out, "--private", priv)
	if code != exitInvalid {
		t.Fatalf("render with a wrong password: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "ethereum.validator.passwordFile: the password in") || strings.Contains(stderr+stdout, "not the password") {
		t.Errorf("stderr:\n%s", stderr)
	}
	for _, p := range []string{out, priv} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s was created", p)
		}
	}
	code, _, stderr = runCLI(t, "validate", "--answers", answers)
	if code != exitInvalid || !strings.Contains(stderr, "ethereum.validator.passwordFile") {
		t.Errorf("validate: exit %d\n%s", code, stderr)
	}
}
