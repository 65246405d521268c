package validator

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/plan"
)

// The keys in testdata/keys were made by make.mjs with @chainsafe/bls-keystore
// and @noble/curves: an implementation independent of this package.

func keysPlan(t *testing.T, dir string) plan.Plan {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return plan.Plan{Ethereum: plan.Ethereum{Network: plan.Hoodi, Validator: plan.Validator{
		Enable:             true,
		KeystoreDir:        filepath.Join(abs, "validator_keys"),
		PasswordFile:       filepath.Join(abs, "password.txt"),
		SlashingProtection: filepath.Join(abs, "slashing-protection.json"),
	}}}
}

// copyKeys copies testdata/keys into a temporary folder the test may change.
func copyKeys(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	src := "testdata/keys"
	filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, _ := os.ReadFile(p)
		return os.WriteFile(filepath.Join(dst, rel), data, 0o600)
	})
	return dst
}

func TestCheckIndependentKeys(t *testing.T) {
	cat := plan.MustCatalogue()
	keys, res := Check(keysPlan(t, "testdata/keys"), cat)
	if !res.OK() {
		t.Fatalf("errors: %v", res.Errors)
	}
	if len(keys.Keystores) != 3 || len(keys.Deposits) != 3 || keys.Slashing == nil {
		t.Fatalf("found %d keystores, %d deposits, slashing %v", len(keys.Keystores), len(keys.Deposits), keys.Slashing != nil)
	}
	// The third key has BLS withdrawal credentials: a warning, shown in the review.
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0].Message, "BLS (0x00)") {
		t.Fatalf("warnings: %v", res.Warnings)
	}
	for _, k := range keys.Keystores {
		d := keys.Deposits[k.Pubkey]
		if d.Pubkey == "" {
			t.Errorf("no deposit for %s", k.Pubkey)
		}
		if strings.Contains(string(k.Data), "correct horse") {
			t.Error("a keystore holds the password")
		}
	}
}

func TestCheckRefusals(t *testing.T) {
	cat := plan.MustCatalogue()
	cases := []struct {
		name  string
		spoil func(t *testing.T, dir string, p *plan.Plan)
		field string
		want  string
	}{
		{"wrong password", func(t *testing.T, dir string, p *plan.Plan) {
			os.WriteFile(p.Ethereum.Validator.PasswordFile, []byte("correct horse battery\n"), 0o600)
		}, FieldPasswordFile, "does not open"},
		{"empty password file", func(t *testing.T, dir string, p *plan.Plan) {
			os.WriteFile(p.Ethereum.Validator.PasswordFile, []byte("\n"), 0o600)
		}, FieldPasswordFile, "is empty"},
		{"missing password file", func(t *testing.T, dir string, p *plan.Plan) {
			p.Ethereum.Validator.PasswordFile = filepath.Join(dir, "nope.txt")
		}, FieldPasswordFile, "cannot read"},
		{"no keystores", func(t *testing.T, dir string, p *plan.Plan) {
			p.Ethereum.Validator.KeystoreDir = dir
		}, FieldKeystoreDir, "holds no keystore"},
		{"another key in the keystore", func(t *testing.T, dir string, p *plan.Plan) {
			path := firstKeystore(t, p)
			data, _ := os.ReadFile(path)
			k, _ := ParseKeystore(data)
			// The deposit data's second key, written as this keystore's pubkey.
			other := secondPubkey(t, p)
			os.WriteFile(path, []byte(strings.Replace(string(data), k.Pubkey, strings.TrimPrefix(other, "0x"), 1)), 0o600)
		}, FieldKeystoreDir, "belongs to public key"},
		{"deposit data of another network", func(t *testing.T, dir string, p *plan.Plan) {
			p.Ethereum.Network = plan.Sepolia
			p.Ethereum.Validator.SlashingProtection = ""
		}, FieldKeystoreDir, "another network (fork version 0x10000910"},
		{"deposit for a key without keystore", func(t *testing.T, dir string, p *plan.Plan) {
			os.Remove(firstKeystore(t, p))
			p.Ethereum.Validator.SlashingProtection = ""
		}, FieldKeystoreDir, "has no keystore"},
		{"slashing history of another network", func(t *testing.T, dir string, p *plan.Plan) {
			path := p.Ethereum.Validator.SlashingProtection
			data, _ := os.ReadFile(path)
			os.WriteFile(path, []byte(strings.Replace(string(data), "0x212f13fc", "0x4b363db9", 1)), 0o600)
		}, FieldSlashingProtection, "another network"},
		{"slashing history without a key", func(t *testing.T, dir string, p *plan.Plan) {
			path := p.Ethereum.Validator.SlashingProtection
			data, _ := os.ReadFile(path)
			ic, _ := ParseInterchange(data)
			os.WriteFile(path, []byte(strings.Replace(string(data), ic.Data[0].Pubkey, "0x"+strings.Repeat("ab", 48), 1)), 0o600)
		}, FieldSlashingProtection, "has no history for validator"},
		{"not an interchange file", func(t *testing.T, dir string, p *plan.Plan) {
			os.WriteFile(p.Ethereum.Validator.SlashingProtection, []byte(`{"metadata":{"interchange_format_version":"4"}}`), 0o600)
		}, FieldSlashingProtection, "version"},
		{"a broken keystore", func(t *testing.T, dir string, p *plan.Plan) {
			os.WriteFile(firstKeystore(t, p), []byte(`{"version": 4`), 0o600)
		}, FieldKeystoreDir, "not an EIP-2335 keystore"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyKeys(t)
			p := keysPlan(t, dir)
			c.spoil(t, dir, &p)
			_, res := Check(p, cat)
			if !res.Errors.Has(c.field) {
				t.Fatalf("no error at %s: %v", c.field, res.Errors)
			}
			if !strings.Contains(res.Errors.Error(), c.want) {
				t.Fatalf("errors do not say %q: %v", c.want, res.Errors)
			}
			if strings.Contains(res.Errors.Error(), "correct horse") {
				t.Fatal("an error shows the password")
			}
		})
	}
}

func TestReadPasswordFile(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{"pw\n": "pw", "pw\r\n": "pw", "pw": "pw", "p w \n\n": "p w \n", " pw": " pw"} {
		path := filepath.Join(dir, "pw")
		os.WriteFile(path, []byte(content), 0o600)
		if got, err := ReadPasswordFile(path); err != nil || got != want {
			t.Errorf("%q: got %q, %v; want %q", content, got, err, want)
		}
	}
}

func firstKeystore(t *testing.T, p *plan.Plan) string {
	m, _ := filepath.Glob(filepath.Join(p.Ethereum.Validator.KeystoreDir, "keystore-*_0_0_0-*.json"))
	if len(m) != 1 {
		t.Fatalf("keystore 0: %v", m)
	}
	return m[0]
}

func secondPubkey(t *testing.T, p *plan.Plan) string {
	m, _ := filepath.Glob(filepath.Join(p.Ethereum.Validator.KeystoreDir, "keystore-*_1_0_0-*.json"))
	data, _ := os.ReadFile(m[0])
	k, err := ParseKeystore(data)
	if err != nil {
		t.Fatal(err)
	}
	return k.Pubkey
}
