package secrets

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
)

// AdminKeyFile is where EnsureAdminIdentity keeps a generated admin identity,
// relative to the private directory.
const AdminKeyFile = "admin/keys.txt"

// ParseRecipient parses an age X25519 recipient ("age1…") and returns it in
// canonical form. Other kinds of age recipients are refused with a sentence
// saying what to use instead.
func ParseRecipient(s string) (*age.X25519Recipient, error) {
	s = strings.TrimSpace(s)
	lower := strings.ToLower(s)
	switch {
	case s == "":
		return nil, errors.New("an age recipient is required")
	case strings.HasPrefix(lower, "age1pq1"):
		return nil, errors.New("post-quantum age keys (age1pq1…) cannot share a secrets file with the host's X25519 key; use an X25519 key (age-keygen without -pq)")
	case strings.HasPrefix(lower, "age-secret-key-"):
		return nil, errors.New("this is a private age key; give its public key (age1…) instead and keep the private key secret")
	case strings.HasPrefix(s, "ssh-"):
		return nil, errors.New("this is an SSH key, not an age recipient; give an age1… key, or add it as an SSH key to convert")
	case !strings.HasPrefix(lower, "age1"):
		return nil, errors.New(`an age recipient starts with "age1"`)
	}
	r, err := age.ParseX25519Recipient(s)
	if err != nil {
		if i := strings.LastIndex(s, "1"); i > 4 && i < 40 {
			// "age1yubikey1…" and the like: a plugin's recipient.
			return nil, fmt.Errorf("age plugin recipients (%q…) are not supported; use an X25519 key (age1…) from age-keygen", s[:i+1])
		}
		return nil, errors.New("not a valid age X25519 recipient (age1… with 58 characters after age1)")
	}
	return r, nil
}

// ValidateRecipient checks an admin's age recipient; the error is one short
// sentence for the user.
func ValidateRecipient(s string) error {
	_, err := ParseRecipient(s)
	return err
}

// ValidateSSHPublicKey checks one OpenSSH public key line for logging in
// ("ssh-ed25519 AAAA… comment"); the error is one short sentence.
func ValidateSSHPublicKey(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		return errors.New("an SSH public key is required")
	}
	if strings.Contains(s, "PRIVATE KEY") {
		return errors.New("this is a private SSH key; give the public key (the .pub file) instead")
	}
	key, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		return errors.New(`not an SSH public key: expected one line like "ssh-ed25519 AAAA… comment"`)
	}
	if len(options) > 0 || len(bytes.TrimSpace(rest)) > 0 {
		return errors.New("expected exactly one SSH public key, without authorized_keys options")
	}
	switch key.Type() {
	case ssh.KeyAlgoDSA:
		return errors.New("DSA keys are refused by current OpenSSH; use an ed25519 key")
	case ssh.KeyAlgoRSA:
		if cpk, ok := key.(ssh.CryptoPublicKey); ok {
			if rk, ok := cpk.CryptoPublicKey().(interface{ Size() int }); ok && rk.Size()*8 < 2048 {
				return errors.New("RSA keys shorter than 2048 bits are too weak; use an ed25519 key")
			}
		}
	}
	return nil
}

// ValidateAdminSSHKey checks an SSH public key that is to become an admin
// recipient: only ssh-ed25519 keys convert to age keys.
func ValidateAdminSSHKey(s string) error {
	_, err := SSHPublicKeyToRecipient(s)
	return err
}

// AdminRecipient accepts what a user gives as an admin key, either an age
// X25519 recipient or an ssh-ed25519 public key, and returns the age1…
// recipient to encrypt to.
func AdminRecipient(s string) (string, error) {
	if strings.HasPrefix(strings.TrimSpace(s), "ssh-") {
		return SSHPublicKeyToRecipient(s)
	}
	r, err := ParseRecipient(s)
	if err != nil {
		return "", err
	}
	return r.String(), nil
}

// EnsureAdminIdentity returns the admin age identity kept in
// <privateDir>/admin/keys.txt, generating it on the first call in the
// keys.txt format of age-keygen (mode 0600, written atomically, never
// replaced). The private key must be copied off the machine: a rescue system
// forgets it at reboot. The identity itself is not returned; open the file
// with LoadIdentities when it is needed.
func EnsureAdminIdentity(privateDir string) (recipient, path string, created bool, err error) {
	path = filepath.Join(privateDir, filepath.FromSlash(AdminKeyFile))
	for _, d := range []string{privateDir, filepath.Dir(path)} {
		if err := EnsurePrivateDir(d); err != nil {
			return "", path, false, err
		}
	}
	if _, err := os.Lstat(path); err == nil {
		ids, err := LoadIdentities(path)
		if err != nil {
			return "", path, false, err
		}
		for _, id := range ids {
			if x, ok := id.(*age.X25519Identity); ok {
				return x.Recipient().String(), path, false, nil
			}
		}
		return "", path, false, fmt.Errorf("admin identity %s holds no X25519 key; move it away to have a new one generated", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", path, false, fmt.Errorf("admin identity %s: %w", path, err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return "", path, false, fmt.Errorf("generate admin identity: %w", err)
	}
	recipient = id.Recipient().String()
	content := fmt.Sprintf("# created: %s\n# public key: %s\n%s\n",
		time.Now().Format(time.RFC3339), recipient, id.String())
	if err := CreateFileAtomic(path, []byte(content), PrivateFileMode); err != nil {
		return "", path, false, fmt.Errorf("save admin identity: %w", err)
	}
	return recipient, path, true, nil
}

// LoadIdentities reads age identities from a keys.txt-format file (such as
// the admin identity). A file readable by others is refused.
func LoadIdentities(path string) ([]age.Identity, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("age identities %s: %w", path, err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("age identities %s are readable by others (mode %04o); run chmod 600 %s", path, info.Mode().Perm(), path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("age identities %s: %w", path, err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		// age's parse errors name the line, never the key.
		return nil, fmt.Errorf("age identities %s: %w", path, err)
	}
	return ids, nil
}

// NewJWTSecret returns a fresh engine-API JWT secret: 32 random bytes as 64
// lower-case hex characters, the format execution and consensus clients read.
func NewJWTSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate JWT secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// NewPassword returns a random password for a secret a program reads from a
// file, such as Prysm's wallet password: 32 characters of URL-safe base64
// (192 random bits), ending in "-1a" so that it also meets password rules
// that ask for a digit, a letter and a symbol.
func NewPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b) + "-1a", nil
}
