package validator

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Deposit is one entry of a deposit tool's deposit_data-*.json: what the
// deposit contract receives for a validator. Only the fields homestaker
// checks or shows are kept.
type Deposit struct {
	Pubkey                string `json:"pubkey"`
	WithdrawalCredentials string `json:"withdrawal_credentials"`
	Amount                uint64 `json:"amount"`
	ForkVersion           string `json:"fork_version"`
	NetworkName           string `json:"network_name"`
}

// WithdrawalKind says what the withdrawal credentials are: "BLS (0x00)",
// "execution address 0x… (0x01)" or "compounding, execution address 0x…
// (0x02)".
func (d Deposit) WithdrawalKind() string {
	wc := strings.ToLower(strings.TrimPrefix(d.WithdrawalCredentials, "0x"))
	if len(wc) != 64 {
		return "unknown (" + d.WithdrawalCredentials + ")"
	}
	addr := "0x" + wc[24:]
	switch wc[:2] {
	case "00":
		return "BLS (0x00): no withdrawal address yet"
	case "01":
		return "execution address " + addr + " (0x01)"
	case "02":
		return "compounding, execution address " + addr + " (0x02)"
	}
	return "unknown type 0x" + wc[:2]
}

// ParseDeposits reads a deposit_data-*.json file: a JSON list of deposits.
func ParseDeposits(data []byte) ([]Deposit, error) {
	var ds []Deposit
	if err := json.Unmarshal(data, &ds); err != nil {
		return nil, fmt.Errorf("not a deposit data file (a JSON list of deposits): %v", err)
	}
	for i, d := range ds {
		if b, err := decodeHex(d.Pubkey); err != nil || len(b) != 48 {
			return nil, fmt.Errorf("deposit %d: pubkey is not a 48-byte hex BLS public key", i+1)
		}
		if b, err := decodeHex(d.WithdrawalCredentials); err != nil || len(b) != 32 {
			return nil, fmt.Errorf("deposit %d: withdrawal_credentials are not 32 bytes of hex", i+1)
		}
		if b, err := decodeHex(d.ForkVersion); err != nil || len(b) != 4 {
			return nil, fmt.Errorf("deposit %d: fork_version is not 4 bytes of hex", i+1)
		}
	}
	return ds, nil
}

// Interchange is an EIP-3076 slashing-protection interchange file.
type Interchange struct {
	Metadata struct {
		InterchangeFormatVersion string `json:"interchange_format_version"`
		GenesisValidatorsRoot    string `json:"genesis_validators_root"`
	} `json:"metadata"`
	Data []struct {
		Pubkey             string            `json:"pubkey"`
		SignedBlocks       []json.RawMessage `json:"signed_blocks"`
		SignedAttestations []json.RawMessage `json:"signed_attestations"`
	} `json:"data"`
}

// ParseInterchange reads an EIP-3076 interchange file (format version 5).
func ParseInterchange(data []byte) (Interchange, error) {
	var ic Interchange
	if err := json.Unmarshal(data, &ic); err != nil {
		return ic, fmt.Errorf("not an EIP-3076 slashing-protection file: %v", err)
	}
	if v := ic.Metadata.InterchangeFormatVersion; v != "5" {
		return ic, fmt.Errorf("interchange_format_version is %q; homestaker reads EIP-3076 version \"5\"", v)
	}
	if b, err := decodeHex(ic.Metadata.GenesisValidatorsRoot); err != nil || len(b) != 32 {
		return ic, fmt.Errorf("genesis_validators_root is not 32 bytes of hex")
	}
	for i, d := range ic.Data {
		if b, err := decodeHex(d.Pubkey); err != nil || len(b) != 48 {
			return ic, fmt.Errorf("data[%d]: pubkey is not a 48-byte hex BLS public key", i)
		}
	}
	return ic, nil
}

// hexKey is a public key or root in one spelling: lower case, 0x-prefixed.
func hexKey(s string) string {
	return "0x" + strings.ToLower(strings.TrimPrefix(strings.TrimSpace(s), "0x"))
}
