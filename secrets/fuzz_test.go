package secrets

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

// fuzzIdentity is a fixed identity (scalar 0x42…), so seeds and fuzzed
// inputs can be opened.
func fuzzIdentity(f *testing.F) *age.X25519Identity {
	s, err := bech32Encode("age-secret-key-", bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		f.Fatal(err)
	}
	id, err := age.ParseX25519Identity(strings.ToUpper(s))
	if err != nil {
		f.Fatal(err)
	}
	return id
}

func FuzzParseRecipient(f *testing.F) {
	id, _ := age.GenerateX25519Identity()
	for _, s := range []string{id.Recipient().String(), "", "age1", "age1pq1abc", "AGE1QQQ", "age1yubikey1abc",
		"ssh-ed25519 AAAA", strings.ToUpper(id.Recipient().String())} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRecipient(s)
		if err != nil {
			if err.Error() == "" || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one sentence: %q", err)
			}
			return
		}
		again, err := ParseRecipient(r.String())
		if err != nil || again.String() != r.String() {
			t.Fatalf("canonical form %q does not round-trip: %v", r, err)
		}
	})
}

func FuzzValidateSSHPublicKey(f *testing.F) {
	f.Add("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@laptop")
	f.Add("ssh-rsa AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if err := ValidateSSHPublicKey(s); err == nil {
			if _, err := KnownHostsLine(s, "node1"); err != nil {
				t.Fatalf("valid key %q gives no known_hosts line: %v", s, err)
			}
		}
		if r, err := SSHPublicKeyToRecipient(s); err == nil {
			if _, err := ParseRecipient(r); err != nil {
				t.Fatalf("converted %q to an invalid recipient %q", s, r)
			}
		}
	})
}

func FuzzDecryptBytes(f *testing.F) {
	id := fuzzIdentity(f)
	ids := []age.Identity{id}
	dir := f.TempDir()
	p := filepath.Join(dir, "secrets.yaml")
	_, err := ensureSecretsFile(p, []string{id.Recipient().String()}, nil,
		map[string]Generator{"jwt": func() (string, error) { return "00ff", nil }, "b": func() (string, error) { return "x", nil }},
		func() time.Time { return time.Unix(0, 0) })
	if err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(p)
	f.Add(good)
	f.Add([]byte(strings.Replace(string(good), "jwt:", "jwt_unencrypted:", 1)))
	f.Add([]byte(richPlain))
	f.Add([]byte("sops: {}\n"))
	f.Add([]byte("a: &x [*x]\nsops:\n    age: []\n"))
	f.Add([]byte("---\na: 1\n---\nb: 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		vals, err := DecryptBytes(data, ids)
		if err != nil {
			if strings.Contains(err.Error(), "00ff") {
				t.Fatalf("error reveals a secret value: %v", err)
			}
			return
		}
		// Whatever opens must also re-encode to something that opens the same.
		sf, err := parseSopsFile(data)
		if err != nil {
			t.Fatalf("DecryptBytes accepted what parseSopsFile refuses: %v", err)
		}
		out, err := sf.encode()
		if err != nil {
			return
		}
		again, err := DecryptBytes(out, ids)
		if err != nil {
			t.Fatalf("re-encoded file does not open: %v\n%s", err, out)
		}
		for k, v := range vals {
			if again[k] != v {
				t.Fatalf("re-encoding changed %s", k)
			}
		}
	})
}
