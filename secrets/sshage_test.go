package secrets

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/homestaker/homestaker/internal/testutil"
	"golang.org/x/crypto/ssh"
)

// TestSSHToAgeMatchesLibsodium judges the conversion with an independent
// implementation: libsodium's crypto_sign_ed25519_{pk,sk}_to_curve25519 and
// a Bech32 encoder in Python. Recipients must be equal strings; identities
// are compared by what they decrypt (libsodium clamps the scalar, ssh-to-age
// does not, and X25519 clamps anyway), using the age binary.
func TestSSHToAgeMatchesLibsodium(t *testing.T) {
	py := pythonWithNaCl(t)
	ageBin := testutil.RequireTool(t, "age")
	dir := t.TempDir()

	const n = 4
	var input strings.Builder
	var ours []string
	var ourIDs []*age.X25519Identity
	for i := 0; i < n; i++ {
		pub, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		sshPub, _ := ssh.NewPublicKey(pub)
		r, err := SSHPublicKeyToRecipient(string(ssh.MarshalAuthorizedKey(sshPub)))
		if err != nil {
			t.Fatal(err)
		}
		block, _ := ssh.MarshalPrivateKey(priv, "test")
		id, err := SSHPrivateKeyToIdentity(pem.EncodeToMemory(block))
		if err != nil {
			t.Fatal(err)
		}
		if id.Recipient().String() != r {
			t.Fatalf("key %d: identity's recipient %s != converted public key %s", i, id.Recipient(), r)
		}
		ours = append(ours, r)
		ourIDs = append(ourIDs, id)
		fmt.Fprintf(&input, "%s %s\n", hex.EncodeToString(pub), hex.EncodeToString(priv))
	}
	script, err := filepath.Abs(filepath.Join("testdata", "ssh_to_age_nacl.py"))
	if err != nil {
		t.Fatal(err)
	}
	res := runTool(t, dir, nil, []byte(input.String()), py, script)
	if res.err != nil {
		t.Fatalf("python: %v: %s", res.err, res.stderr)
	}
	lines := strings.Split(strings.TrimSpace(string(res.stdout)), "\n")
	if len(lines) != n {
		t.Fatalf("python printed %d lines, want %d", len(lines), n)
	}
	for i, line := range lines {
		f := strings.Fields(line)
		if f[0] != ours[i] {
			t.Errorf("key %d: recipient %s, libsodium gives %s", i, ours[i], f[0])
		}
		// Encrypted by age to our recipient, opened by age with libsodium's identity...
		theirs := filepath.Join(dir, fmt.Sprintf("nacl%d.txt", i))
		writePrivate(t, theirs, []byte(f[1]+"\n"))
		msg := fmt.Sprintf("message %d", i)
		enc := runTool(t, dir, nil, []byte(msg), ageBin, "-r", ours[i])
		if enc.err != nil {
			t.Fatalf("age -r: %v: %s", enc.err, enc.stderr)
		}
		dec := runTool(t, dir, nil, enc.stdout, ageBin, "-d", "-i", theirs)
		if dec.err != nil || string(dec.stdout) != msg {
			t.Errorf("key %d: libsodium's identity cannot open what age encrypted to our recipient: %v %s", i, dec.err, dec.stderr)
		}
		// ...and encrypted by age to libsodium's recipient, opened with our identity.
		enc = runTool(t, dir, nil, []byte(msg), ageBin, "-r", f[0])
		if enc.err != nil {
			t.Fatalf("age -r: %v: %s", enc.err, enc.stderr)
		}
		r, err := age.Decrypt(bytes.NewReader(enc.stdout), ourIDs[i])
		if err != nil {
			t.Fatalf("key %d: our identity cannot open it: %v", i, err)
		}
		if got, _ := io.ReadAll(r); string(got) != msg {
			t.Errorf("key %d: decrypted %q", i, got)
		}
	}
}

func TestSSHPublicKeyToRecipientRefuses(t *testing.T) {
	for _, in := range []string{
		"",
		"age1xyz",
		"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7",
		"ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=",
		`from="x" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl`,
	} {
		if r, err := SSHPublicKeyToRecipient(in); err == nil {
			t.Errorf("%q: got %s, want an error", in, r)
		}
	}
	if _, err := SSHPrivateKeyToIdentity([]byte("-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n-----END OPENSSH PRIVATE KEY-----\n")); err == nil {
		t.Error("garbage private key: no error")
	}
}

// A key whose conversion is pinned, so a change in the conversion shows.
func TestSSHToAgeKnownVector(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, 32)
	priv := ed25519.NewKeyFromSeed(seed)
	sshPub, _ := ssh.NewPublicKey(priv.Public())
	r, err := SSHPublicKeyToRecipient(string(ssh.MarshalAuthorizedKey(sshPub)))
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "seed07.recipient")
	if *update {
		os.WriteFile(golden, []byte(r+"\n"), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if r != strings.TrimSpace(string(want)) {
		t.Fatalf("recipient %s, golden %s", r, want)
	}
}
