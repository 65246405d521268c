package validator

import (
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
)

const vectorPassword = "𝔱𝔢𝔰𝔱𝔭𝔞𝔰𝔰𝔴𝔬𝔯𝔡🔑"

func TestNormalizePasswordVector(t *testing.T) {
	// EIP-2335: "Encoded Password: 0x7465737470617373776f7264f09f9491".
	got := hex.EncodeToString(NormalizePassword(vectorPassword))
	if got != "7465737470617373776f7264f09f9491" {
		t.Fatalf("normalised password %s", got)
	}
	if got := string(NormalizePassword("a\x00b\x1fc\x7fd\u0085e f")); got != "abcde f" {
		t.Fatalf("control characters kept: %q", got)
	}
}

func TestEIP2335Vectors(t *testing.T) {
	for _, name := range []string{"scrypt", "pbkdf2"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile("testdata/eip2335/" + name + ".json")
			if err != nil {
				t.Fatal(err)
			}
			k, err := ParseKeystore(data)
			if err != nil {
				t.Fatal(err)
			}
			if err := k.Verify(vectorPassword); err != nil {
				t.Fatalf("the spec's password does not open the spec's keystore: %v", err)
			}
			if err := k.Verify("testpassword🔑x"); !errors.Is(err, ErrWrongPassword) {
				t.Fatalf("a wrong password: %v", err)
			}
			// Another public key in the file: the key inside does not match.
			other := strings.Replace(string(data), "9612d7a727c9d0a2", "a612d7a727c9d0a2", 1)
			k2, err := ParseKeystore([]byte(other))
			if err != nil {
				t.Fatal(err)
			}
			if err := k2.Verify(vectorPassword); err == nil || !strings.Contains(err.Error(), "belongs to public key 0x9612d7a7") {
				t.Fatalf("a keystore naming another public key: %v", err)
			}
		})
	}
}

func TestPublicKeyOfVectorSecret(t *testing.T) {
	secret, _ := hex.DecodeString("000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f")
	pub, err := publicKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(pub); got != "9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07" {
		t.Fatalf("public key %s", got)
	}
	if _, err := publicKey(make([]byte, 32)); err == nil {
		t.Fatal("a zero secret key was accepted")
	}
}

func TestParseKeystoreRefusals(t *testing.T) {
	good, _ := os.ReadFile("testdata/eip2335/pbkdf2.json")
	cases := map[string][2]string{
		"version":  {`"version": 4`, `"version": 3`},
		"kdf":      {`"function": "pbkdf2"`, `"function": "argon2"`},
		"cipher":   {`"function": "aes-128-ctr"`, `"function": "aes-256-gcm"`},
		"checksum": {`"function": "sha256"`, `"function": "keccak256"`},
		"pubkey":   {`"pubkey": "9612`, `"pubkey": "zz12`},
	}
	for name, c := range cases {
		bad := strings.Replace(string(good), c[0], c[1], 1)
		if _, err := ParseKeystore([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseKeystore([]byte("{")); err == nil {
		t.Error("broken JSON accepted")
	}
	huge := strings.Replace(string(good), `"c": 262144`, `"c": 1000000000`, 1)
	k, err := ParseKeystore([]byte(huge))
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Verify(vectorPassword); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("a keystore with a huge KDF cost: %v", err)
	}
}

func FuzzParseKeystore(f *testing.F) {
	good, _ := os.ReadFile("testdata/eip2335/pbkdf2.json")
	f.Add(good)
	f.Add([]byte(`{"version":4}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseKeystore(data)
		if err != nil {
			return
		}
		_ = k // a parsed keystore is well-formed; Verify is not fuzzed (KDF cost)
	})
}
