package plan

import (
	"encoding/hex"
	"errors"
	"strings"

	"golang.org/x/crypto/sha3"
)

// ChecksumAddress returns the EIP-55 mixed-case form of a 20-byte hex
// address given with or without the 0x prefix (any case).
func ChecksumAddress(addr string) (string, error) {
	h := strings.TrimPrefix(strings.TrimPrefix(addr, "0x"), "0X")
	if len(h) != 40 {
		return "", errors.New("an address is 0x followed by 40 hex digits")
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", errors.New("an address is 0x followed by 40 hex digits (0-9, a-f)")
	}
	lower := strings.ToLower(h)
	k := sha3.NewLegacyKeccak256()
	k.Write([]byte(lower))
	sum := k.Sum(nil)
	out := []byte(lower)
	for i, ch := range out {
		if ch >= 'a' && ch <= 'f' {
			nibble := sum[i/2]
			if i%2 == 0 {
				nibble >>= 4
			}
			if nibble&0x0f >= 8 {
				out[i] = ch - 'a' + 'A'
			}
		}
	}
	return "0x" + string(out), nil
}

// ValidateFeeRecipient checks an execution-layer address: 0x and 40 hex
// digits; a mixed-case address must pass the EIP-55 checksum, all-lower or
// all-upper is accepted as unchecksummed.
func ValidateFeeRecipient(addr string) error {
	if addr == "" {
		return errors.New("a fee recipient is required when the validator is enabled: the 0x… address that receives priority fees and MEV")
	}
	if !strings.HasPrefix(addr, "0x") {
		return errors.New("the address must start with 0x, followed by 40 hex digits")
	}
	want, err := ChecksumAddress(addr)
	if err != nil {
		return err
	}
	if want == "0x0000000000000000000000000000000000000000" {
		return errors.New("the zero address would burn your rewards; use an address you control")
	}
	body := addr[2:]
	if body == strings.ToLower(body) || body == strings.ToUpper(body) {
		return nil
	}
	if addr != want {
		return errors.New("the address fails its EIP-55 checksum (a typo?); copy it again from your wallet, or write it all in lower case to skip the check")
	}
	return nil
}
