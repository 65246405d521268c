package secrets

import (
	"crypto/ed25519"
	"crypto/sha512"
	"errors"
	"fmt"
	"strings"

	"filippo.io/age"
	"filippo.io/edwards25519"
	"golang.org/x/crypto/ssh"
)

// The conversions below are the ones ssh-to-age and sops-nix perform, so the
// recipient homestaker writes into .sops.yaml is the one the node derives
// from its SSH host key at boot:
//   - public: the Ed25519 (Edwards) point in Montgomery form, Bech32 "age";
//   - private: the first 32 bytes of SHA-512(seed), Bech32 "AGE-SECRET-KEY-".

// SSHPublicKeyToRecipient converts an "ssh-ed25519 AAAA… [comment]" public key
// to the age X25519 recipient ("age1…") that ssh-to-age gives for it.
func SSHPublicKeyToRecipient(authorizedKey string) (string, error) {
	pub, err := parseEd25519PublicKey(authorizedKey)
	if err != nil {
		return "", err
	}
	return ed25519ToRecipient(pub)
}

// SSHPrivateKeyToIdentity converts an unencrypted OpenSSH ed25519 private key
// (the content of a ssh_host_ed25519_key file) to the age X25519 identity
// that ssh-to-age gives for it.
func SSHPrivateKeyToIdentity(pemBytes []byte) (*age.X25519Identity, error) {
	priv, err := parseEd25519PrivateKey(pemBytes)
	if err != nil {
		return nil, err
	}
	return ed25519ToIdentity(priv)
}

func parseEd25519PublicKey(authorizedKey string) (ed25519.PublicKey, error) {
	key, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(authorizedKey)))
	if err != nil {
		return nil, errors.New(`not an SSH public key: expected one line like "ssh-ed25519 AAAA… comment"`)
	}
	if len(options) > 0 || len(strings.TrimSpace(string(rest))) > 0 {
		return nil, errors.New("expected exactly one SSH public key, without authorized_keys options")
	}
	if key.Type() != ssh.KeyAlgoED25519 {
		return nil, fmt.Errorf("only ssh-ed25519 keys convert to age recipients, not %s", key.Type())
	}
	cpk, ok := key.(ssh.CryptoPublicKey)
	if !ok {
		return nil, fmt.Errorf("unexpected %s key representation", key.Type())
	}
	pub, ok := cpk.CryptoPublicKey().(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("unexpected %s key representation", key.Type())
	}
	return pub, nil
}

func parseEd25519PrivateKey(pemBytes []byte) (ed25519.PrivateKey, error) {
	raw, err := ssh.ParseRawPrivateKey(pemBytes)
	if err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, errors.New("the SSH private key has a passphrase; a host key must not have one")
		}
		return nil, fmt.Errorf("not an OpenSSH private key: %w", err)
	}
	switch k := raw.(type) {
	case ed25519.PrivateKey:
		return k, nil
	case *ed25519.PrivateKey:
		return *k, nil
	default:
		return nil, fmt.Errorf("the SSH private key is a %T, not ed25519", raw)
	}
}

func ed25519ToRecipient(pub ed25519.PublicKey) (string, error) {
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return "", errors.New("the ssh-ed25519 key is not a valid curve point")
	}
	s, err := bech32Encode("age", p.BytesMontgomery())
	if err != nil {
		return "", err
	}
	// Round-trip through age so that only a recipient age accepts leaves.
	r, err := age.ParseX25519Recipient(s)
	if err != nil {
		return "", fmt.Errorf("converted ssh-ed25519 key is not a valid age recipient: %w", err)
	}
	return r.String(), nil
}

func ed25519ToIdentity(priv ed25519.PrivateKey) (*age.X25519Identity, error) {
	h := sha512.Sum512(priv.Seed())
	s, err := bech32Encode("age-secret-key-", h[:32])
	if err != nil {
		return nil, err
	}
	id, err := age.ParseX25519Identity(strings.ToUpper(s))
	if err != nil {
		return nil, errors.New("converted ssh-ed25519 key is not a valid age identity")
	}
	return id, nil
}
