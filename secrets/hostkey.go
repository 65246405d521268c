package secrets

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyFile is the file name of a host's SSH private key, the name openssh
// and sops-nix expect; the public key sits next to it with ".pub" added.
const HostKeyFile = "ssh_host_ed25519_key"

// HostKey is a host's SSH ed25519 key as the rest of homestaker sees it:
// public facts and where the private half lives. It holds no private
// material, so it is safe to log or put in a plan.
type HostKey struct {
	// Host is the host name the key belongs to.
	Host string
	// PrivatePath is the OpenSSH private key file (mode 0600).
	PrivatePath string
	// PublicPath is PrivatePath + ".pub".
	PublicPath string
	// PublicKey is the authorized-key line without comment:
	// "ssh-ed25519 AAAA…".
	PublicKey string
	// Fingerprint is the SHA256 fingerprint ssh shows: "SHA256:…".
	Fingerprint string
	// Recipient is the age X25519 recipient ("age1…") derived from the key
	// the way ssh-to-age and sops-nix do.
	Recipient string
}

// HostKeyDir is the folder of host's keys under privateDir.
func HostKeyDir(privateDir, host string) string {
	return filepath.Join(privateDir, "hosts", host)
}

// EnsureHostKey returns the SSH host key of host, generating it under
// <privateDir>/hosts/<host>/ssh_host_ed25519_key on the first call (folders
// 0700, private file 0600, written atomically). An existing key is loaded
// and never replaced; created reports whether it was generated now.
func EnsureHostKey(privateDir, host string) (key HostKey, created bool, err error) {
	if err := ValidateHostName(host); err != nil {
		return HostKey{}, false, fmt.Errorf("host key: host name %q: %w", host, err)
	}
	dir := HostKeyDir(privateDir, host)
	for _, d := range []string{privateDir, filepath.Join(privateDir, "hosts"), dir} {
		if err := EnsurePrivateDir(d); err != nil {
			return HostKey{}, false, err
		}
	}
	privPath := filepath.Join(dir, HostKeyFile)
	if _, err := os.Lstat(privPath); err == nil {
		k, err := LoadHostKey(privateDir, host)
		return k, false, err
	} else if !errors.Is(err, fs.ErrNotExist) {
		return HostKey{}, false, fmt.Errorf("host key %s: %w", privPath, err)
	}

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return HostKey{}, false, fmt.Errorf("generate host key for %s: %w", host, err)
	}
	comment := "root@" + host
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return HostKey{}, false, fmt.Errorf("encode host key for %s: %w", host, err)
	}
	if err := CreateFileAtomic(privPath, pem.EncodeToMemory(block), PrivateFileMode); err != nil {
		return HostKey{}, false, fmt.Errorf("save host key: %w", err)
	}
	k, err := hostKeyFromPublic(host, privPath, pub)
	if err != nil {
		return HostKey{}, false, err
	}
	if err := WriteFileAtomic(k.PublicPath, []byte(k.PublicKey+" "+comment+"\n"), 0o644); err != nil {
		return HostKey{}, false, fmt.Errorf("save host public key: %w", err)
	}
	return k, true, nil
}

// LoadHostKey loads the existing SSH host key of host from privateDir. It
// tightens a private key file readable by others to 0600, rewrites a missing
// .pub file, and refuses a .pub file that does not match the private key.
func LoadHostKey(privateDir, host string) (HostKey, error) {
	if err := ValidateHostName(host); err != nil {
		return HostKey{}, fmt.Errorf("host key: host name %q: %w", host, err)
	}
	privPath := filepath.Join(HostKeyDir(privateDir, host), HostKeyFile)
	info, err := os.Stat(privPath)
	if err != nil {
		return HostKey{}, fmt.Errorf("host key %s: %w", privPath, err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(privPath, PrivateFileMode); err != nil {
			return HostKey{}, fmt.Errorf("restrict host key %s to mode 0600: %w", privPath, err)
		}
	}
	k, err := ReadHostKeyFile(privPath, host)
	if err != nil {
		return HostKey{}, err
	}
	if _, err := os.Stat(k.PublicPath); errors.Is(err, fs.ErrNotExist) {
		if err := WriteFileAtomic(k.PublicPath, []byte(k.PublicKey+" root@"+host+"\n"), 0o644); err != nil {
			return HostKey{}, fmt.Errorf("save host public key: %w", err)
		}
	}
	return k, nil
}

func hostKeyFromPublic(host, privPath string, pub ed25519.PublicKey) (HostKey, error) {
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return HostKey{}, fmt.Errorf("host key %s: %w", privPath, err)
	}
	recipient, err := ed25519ToRecipient(pub)
	if err != nil {
		return HostKey{}, fmt.Errorf("host key %s: %w", privPath, err)
	}
	return HostKey{
		Host:        host,
		PrivatePath: privPath,
		PublicPath:  privPath + ".pub",
		PublicKey:   strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))),
		Fingerprint: ssh.FingerprintSHA256(sshPub),
		Recipient:   recipient,
	}, nil
}

// Identity reads the private key file and returns the age identity derived
// from it (what sops-nix uses on the node). Keep it in memory only.
func (k HostKey) Identity() (*age.X25519Identity, error) {
	data, err := os.ReadFile(k.PrivatePath)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", k.PrivatePath, err)
	}
	id, err := SSHPrivateKeyToIdentity(data)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", k.PrivatePath, err)
	}
	if id.Recipient().String() != k.Recipient {
		return nil, fmt.Errorf("host key %s changed since it was loaded", k.PrivatePath)
	}
	return id, nil
}

// KnownHostsLine is the known_hosts line for this key under the given names
// and addresses; see KnownHostsLine.
func (k HostKey) KnownHostsLine(addresses ...string) (string, error) {
	return KnownHostsLine(k.PublicKey, addresses...)
}

// KnownHostsLine returns the known_hosts line ("name,10.0.0.2 ssh-ed25519
// AAAA…") that lets ssh trust publicKey for the given host names and
// addresses on the first connection. An address with a port other than 22
// is written as "[addr]:port", as ssh expects.
func KnownHostsLine(publicKey string, addresses ...string) (string, error) {
	key, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(publicKey)))
	if err != nil || len(bytes.TrimSpace(rest)) > 0 {
		return "", fmt.Errorf("known_hosts: host key %q is not one SSH public key", publicKey)
	}
	if len(addresses) == 0 {
		return "", errors.New("known_hosts: give at least one host name or address")
	}
	for _, a := range addresses {
		if a == "" || strings.ContainsAny(a, " \t\r\n,#*?!") {
			return "", fmt.Errorf("known_hosts: %q is not a host name or address", a)
		}
	}
	return knownhosts.Line(addresses, key), nil
}

// ValidateHostName checks that name is a single DNS label (what NixOS
// accepts as networking.hostName), which also keeps it safe as a folder name.
func ValidateHostName(name string) error {
	if name == "" {
		return errors.New("a host name is required")
	}
	if len(name) > 63 {
		return errors.New("a host name has at most 63 characters")
	}
	for i, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c == '-' && i > 0 && i < len(name)-1
		if !ok {
			return errors.New("a host name has only letters, digits and inner hyphens")
		}
	}
	return nil
}

// HostKeyPath is where the SSH host private key of host lives under
// privateDir (what EnsureHostKey writes and LoadHostKey reads).
func HostKeyPath(privateDir, host string) string {
	return filepath.Join(HostKeyDir(privateDir, host), HostKeyFile)
}

// ReadHostKeyFile reads the SSH ed25519 host private key at privPath and
// returns its public facts, changing nothing (unlike LoadHostKey it neither
// tightens the file's mode nor writes a missing .pub). A .pub file next to
// it must hold the same key. A missing file gives an error wrapping
// fs.ErrNotExist.
func ReadHostKeyFile(privPath, host string) (HostKey, error) {
	data, err := os.ReadFile(privPath)
	if err != nil {
		return HostKey{}, fmt.Errorf("host key %s: %w", privPath, err)
	}
	priv, err := parseEd25519PrivateKey(data)
	if err != nil {
		return HostKey{}, fmt.Errorf("host key %s: %w", privPath, err)
	}
	k, err := hostKeyFromPublic(host, privPath, priv.Public().(ed25519.PublicKey))
	if err != nil {
		return HostKey{}, err
	}
	pubData, err := os.ReadFile(k.PublicPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return HostKey{}, fmt.Errorf("host public key %s: %w", k.PublicPath, err)
	default:
		onDisk, _, _, _, perr := ssh.ParseAuthorizedKey(pubData)
		if perr != nil || strings.TrimSpace(string(ssh.MarshalAuthorizedKey(onDisk))) != k.PublicKey {
			return HostKey{}, fmt.Errorf("host public key %s does not match private key %s; delete the .pub file to have it rewritten", k.PublicPath, privPath)
		}
	}
	return k, nil
}

// SamePublicKey reports whether two authorized-key lines name the same key
// (comments and spacing aside).
func SamePublicKey(a, b string) bool {
	ka, _, _, _, err1 := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(a)))
	kb, _, _, _, err2 := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(b)))
	if err1 != nil || err2 != nil {
		return strings.TrimSpace(a) == strings.TrimSpace(b)
	}
	return bytes.Equal(ka.Marshal(), kb.Marshal())
}
