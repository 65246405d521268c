// Package validator checks what a validator needs before homestaker puts it
// on a node: EIP-2335 keystores and the password that opens them, the
// deposit data made with them, and an EIP-3076 slashing-protection history.
// It decrypts a keystore only to prove that the password opens it and that
// the key inside is the one the keystore names; the secret key is zeroed at
// once and never leaves this package.
package validator

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"unicode/utf8"

	bls12381 "github.com/consensys/gnark-crypto/ecc/bls12-381"
	"github.com/consensys/gnark-crypto/ecc/bls12-381/fr"
	"golang.org/x/crypto/pbkdf2"
	"golang.org/x/crypto/scrypt"
	"golang.org/x/text/unicode/norm"
)

// Keystore is an EIP-2335 keystore (version 4).
type Keystore struct {
	Crypto struct {
		KDF      module `json:"kdf"`
		Checksum module `json:"checksum"`
		Cipher   module `json:"cipher"`
	} `json:"crypto"`
	Description string `json:"description"`
	// Pubkey is the BLS12-381 public key, hex without 0x.
	Pubkey  string `json:"pubkey"`
	Path    string `json:"path"`
	UUID    string `json:"uuid"`
	Version int    `json:"version"`
}

type module struct {
	Function string          `json:"function"`
	Params   json.RawMessage `json:"params"`
	Message  string          `json:"message"`
}

// Limits on the KDF's cost, so that a crafted keystore cannot make the check
// take hours or all the memory: well above what deposit tools write (scrypt
// n=2^18, pbkdf2 c=2^18).
const (
	maxScryptN   = 1 << 20
	maxScryptRP  = 1 << 10
	maxPBKDF2C   = 1 << 24
	maxKeystores = 1 << 14
)

// ParseKeystore reads and checks a keystore's structure: version 4, the
// functions EIP-2335 defines, hex fields of the right lengths.
func ParseKeystore(data []byte) (Keystore, error) {
	var k Keystore
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&k); err != nil {
		return k, fmt.Errorf("not an EIP-2335 keystore (JSON: %v)", err)
	}
	if k.Version != 4 {
		return k, fmt.Errorf("keystore version is %d; EIP-2335 keystores are version 4", k.Version)
	}
	if f := k.Crypto.KDF.Function; f != "scrypt" && f != "pbkdf2" {
		return k, fmt.Errorf("keystore kdf %q is not one EIP-2335 defines (scrypt, pbkdf2)", f)
	}
	if f := k.Crypto.Checksum.Function; f != "sha256" {
		return k, fmt.Errorf("keystore checksum %q is not sha256", f)
	}
	if f := k.Crypto.Cipher.Function; f != "aes-128-ctr" {
		return k, fmt.Errorf("keystore cipher %q is not aes-128-ctr", f)
	}
	pub, err := decodeHex(k.Pubkey)
	if err != nil || len(pub) != bls12381.SizeOfG1AffineCompressed {
		return k, fmt.Errorf("keystore pubkey is not a 48-byte hex BLS public key")
	}
	if b, err := decodeHex(k.Crypto.Checksum.Message); err != nil || len(b) != sha256.Size {
		return k, fmt.Errorf("keystore checksum message is not 32 bytes of hex")
	}
	if b, err := decodeHex(k.Crypto.Cipher.Message); err != nil || len(b) != 32 {
		return k, fmt.Errorf("keystore cipher message is not a 32-byte hex secret key")
	}
	return k, nil
}

// NormalizePassword applies EIP-2335's password rules: NFKD, then C0, C1
// and DEL control characters removed.
func NormalizePassword(password string) []byte {
	n := norm.NFKD.String(password)
	var b strings.Builder
	for _, r := range n {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			continue
		}
		b.WriteRune(r)
	}
	return []byte(b.String())
}

// ErrWrongPassword means the checksum did not match: the password does not
// open the keystore.
var ErrWrongPassword = errors.New("the password does not open this keystore (checksum mismatch)")

// Verify proves that password opens the keystore and that the secret key
// inside belongs to the keystore's public key. It returns nil, or an error
// saying which of these failed. The derived key and the secret key are
// zeroed before it returns.
func (k Keystore) Verify(password string) error {
	dk, err := k.decryptionKey(NormalizePassword(password))
	if err != nil {
		return err
	}
	defer zero(dk)
	cipherMsg, _ := decodeHex(k.Crypto.Cipher.Message)
	want, _ := decodeHex(k.Crypto.Checksum.Message)
	sum := sha256.Sum256(append(append([]byte{}, dk[16:32]...), cipherMsg...))
	if !hmac.Equal(sum[:], want) {
		return ErrWrongPassword
	}
	var params struct {
		IV string `json:"iv"`
	}
	if err := json.Unmarshal(k.Crypto.Cipher.Params, &params); err != nil {
		return fmt.Errorf("keystore cipher params: %v", err)
	}
	iv, err := decodeHex(params.IV)
	if err != nil || len(iv) != aes.BlockSize {
		return fmt.Errorf("keystore cipher iv is not 16 bytes of hex")
	}
	block, err := aes.NewCipher(dk[:16])
	if err != nil {
		return err
	}
	secret := make([]byte, len(cipherMsg))
	defer zero(secret)
	cipher.NewCTR(block, iv).XORKeyStream(secret, cipherMsg)
	pub, err := publicKey(secret)
	if err != nil {
		return err
	}
	want, _ = decodeHex(k.Pubkey)
	if !bytes.Equal(pub, want) {
		return fmt.Errorf("the key inside belongs to public key 0x%x, not to the keystore's pubkey 0x%s", pub, strings.TrimPrefix(k.Pubkey, "0x"))
	}
	return nil
}

// publicKey is the compressed BLS12-381 G1 public key of a 32-byte
// big-endian secret key.
func publicKey(secret []byte) ([]byte, error) {
	s := new(big.Int).SetBytes(secret)
	defer s.SetInt64(0)
	if s.Sign() == 0 || s.Cmp(fr.Modulus()) >= 0 {
		return nil, errors.New("the keystore's secret is not a valid BLS secret key")
	}
	var p bls12381.G1Affine
	p.ScalarMultiplicationBase(s)
	b := p.Bytes()
	return b[:], nil
}

func (k Keystore) decryptionKey(password []byte) ([]byte, error) {
	kdf := k.Crypto.KDF
	switch kdf.Function {
	case "scrypt":
		var p struct {
			DKLen int    `json:"dklen"`
			N     int    `json:"n"`
			R     int    `json:"r"`
			P     int    `json:"p"`
			Salt  string `json:"salt"`
		}
		if err := json.Unmarshal(kdf.Params, &p); err != nil {
			return nil, fmt.Errorf("keystore scrypt params: %v", err)
		}
		salt, err := decodeHex(p.Salt)
		if err != nil {
			return nil, fmt.Errorf("keystore scrypt salt is not hex")
		}
		if p.DKLen != 32 || p.N < 2 || p.N > maxScryptN || p.N&(p.N-1) != 0 || p.R < 1 || p.P < 1 || p.R*p.P > maxScryptRP {
			return nil, fmt.Errorf("keystore scrypt params (dklen %d, n %d, r %d, p %d) are out of range", p.DKLen, p.N, p.R, p.P)
		}
		return scrypt.Key(password, salt, p.N, p.R, p.P, p.DKLen)
	case "pbkdf2":
		var p struct {
			DKLen int    `json:"dklen"`
			C     int    `json:"c"`
			PRF   string `json:"prf"`
			Salt  string `json:"salt"`
		}
		if err := json.Unmarshal(kdf.Params, &p); err != nil {
			return nil, fmt.Errorf("keystore pbkdf2 params: %v", err)
		}
		salt, err := decodeHex(p.Salt)
		if err != nil {
			return nil, fmt.Errorf("keystore pbkdf2 salt is not hex")
		}
		if p.PRF != "hmac-sha256" || p.DKLen != 32 || p.C < 1 || p.C > maxPBKDF2C {
			return nil, fmt.Errorf("keystore pbkdf2 params (prf %q, dklen %d, c %d) are out of range", p.PRF, p.DKLen, p.C)
		}
		return pbkdf2.Key(password, salt, p.C, p.DKLen, sha256.New), nil
	}
	return nil, fmt.Errorf("keystore kdf %q is not supported", kdf.Function)
}

func decodeHex(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "0x")
	if !utf8.ValidString(s) {
		return nil, errors.New("not hex")
	}
	return hex.DecodeString(s)
}

func zero(b []byte) {
	for i := range b {
		b[i] = 0
	}
}
