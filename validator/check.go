package validator

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/homestaker/homestaker/plan"
)

// Field paths of the answers file this package checks.
const (
	FieldKeystoreDir        = "ethereum.validator.keystoreDir"
	FieldPasswordFile       = "ethereum.validator.passwordFile"
	FieldSlashingProtection = "ethereum.validator.slashingProtection"
)

// maxFileSize bounds what is read from the user's files: keystores,
// deposit data and interchange files are kilobytes; a slashing history of
// many validators is a few megabytes.
const maxFileSize = 64 << 20

// KeystoreFile is a keystore that passed every check.
type KeystoreFile struct {
	Path   string
	Pubkey string // 0x-prefixed, lower case
	Data   []byte // the file as it is (encrypted; no secret in the clear)
}

// Keys is what Check found: the keystores, what the deposit data says of
// them, and the slashing-protection history, ready to be encrypted into the
// node's secrets. The password is not kept.
type Keys struct {
	Keystores []KeystoreFile
	// Deposits by public key, when the folder has deposit data.
	Deposits map[string]Deposit
	// Slashing is the interchange file's content, nil when none was given.
	Slashing []byte
}

// Pubkeys lists the keystores' public keys in order.
func (k Keys) Pubkeys() []string {
	out := make([]string, len(k.Keystores))
	for i, ks := range k.Keystores {
		out[i] = ks.Pubkey
	}
	return out
}

// Check reads the validator's keys named in the plan and checks them
// against each other and the plan's network: every keystore is EIP-2335
// and opens with the password, the key inside is the keystore's public key,
// deposit data names the same keys and the network's fork version, and the
// slashing-protection history is for this network and covers every key.
// Problems come back addressed by their answers-file field; warnings (BLS
// withdrawal credentials) are for the review. A plan without a keystore
// folder has nothing to check.
func Check(p plan.Plan, cat *plan.Catalogue) (Keys, plan.Result) {
	var res plan.Result
	v := p.Ethereum.Validator
	keys := Keys{Deposits: map[string]Deposit{}}
	if !v.Enable || v.KeystoreDir == "" {
		return keys, res
	}
	fail := func(path, format string, args ...any) {
		res.Errors = append(res.Errors, plan.Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	warn := func(path, format string, args ...any) {
		res.Warnings = append(res.Warnings, plan.Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	info := cat.Networks[p.Ethereum.Network]

	entries, err := os.ReadDir(v.KeystoreDir)
	if err != nil {
		fail(FieldKeystoreDir, "cannot read the folder %s: %v", v.KeystoreDir, unwrapPath(err))
		return keys, res
	}
	var keystorePaths, depositPaths []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir() || !strings.HasSuffix(name, ".json"):
		case strings.HasPrefix(name, "keystore"):
			keystorePaths = append(keystorePaths, filepath.Join(v.KeystoreDir, name))
		case strings.HasPrefix(name, "deposit_data"):
			depositPaths = append(depositPaths, filepath.Join(v.KeystoreDir, name))
		}
	}
	sort.Strings(keystorePaths)
	if len(keystorePaths) == 0 {
		fail(FieldKeystoreDir, "%s holds no keystore-*.json: point it at the validator_keys folder the deposit tool wrote", v.KeystoreDir)
		return keys, res
	}
	if len(keystorePaths) > maxKeystores {
		fail(FieldKeystoreDir, "%s holds %d keystores; homestaker imports at most %d", v.KeystoreDir, len(keystorePaths), maxKeystores)
		return keys, res
	}

	password, err := ReadPasswordFile(v.PasswordFile)
	if err != nil {
		fail(FieldPasswordFile, "%v", err)
	}

	seen := map[string]string{}
	for _, path := range keystorePaths {
		data, err := readFile(path)
		if err != nil {
			fail(FieldKeystoreDir, "%v", err)
			continue
		}
		k, err := ParseKeystore(data)
		if err != nil {
			fail(FieldKeystoreDir, "%s: %v", filepath.Base(path), err)
			continue
		}
		pub := hexKey(k.Pubkey)
		if other, dup := seen[pub]; dup {
			fail(FieldKeystoreDir, "%s and %s hold the same key %s: keep one", filepath.Base(other), filepath.Base(path), short(pub))
			continue
		}
		seen[pub] = path
		if password != "" {
			if err := k.Verify(password); errors.Is(err, ErrWrongPassword) {
				fail(FieldPasswordFile, "the password in %s does not open %s: check that it is the password you chose in the deposit tool", v.PasswordFile, filepath.Base(path))
				continue
			} else if err != nil {
				fail(FieldKeystoreDir, "%s: %v", filepath.Base(path), err)
				continue
			}
		}
		keys.Keystores = append(keys.Keystores, KeystoreFile{Path: path, Pubkey: pub, Data: data})
	}

	for _, path := range depositPaths {
		data, err := readFile(path)
		if err != nil {
			fail(FieldKeystoreDir, "%v", err)
			continue
		}
		ds, err := ParseDeposits(data)
		if err != nil {
			fail(FieldKeystoreDir, "%s: %v", filepath.Base(path), err)
			continue
		}
		for _, d := range ds {
			pub := hexKey(d.Pubkey)
			if _, ok := seen[pub]; !ok {
				fail(FieldKeystoreDir, "%s names validator %s, which has no keystore in %s", filepath.Base(path), short(pub), v.KeystoreDir)
				continue
			}
			if fv := hexKey(d.ForkVersion); info.GenesisForkVersion != "" && fv != info.GenesisForkVersion {
				fail(FieldKeystoreDir, "%s is for another network (fork version %s, %s has %s): make the deposit data for %s, or choose the network it was made for",
					filepath.Base(path), fv, p.Ethereum.Network, info.GenesisForkVersion, p.Ethereum.Network)
				break
			}
			keys.Deposits[pub] = d
			if strings.HasPrefix(strings.TrimPrefix(strings.ToLower(d.WithdrawalCredentials), "0x"), "00") {
				warn(FieldKeystoreDir, "validator %s has BLS (0x00) withdrawal credentials: its rewards cannot be withdrawn until you change them to an execution address", short(pub))
			}
		}
	}

	if v.SlashingProtection != "" {
		data, err := readFile(v.SlashingProtection)
		if err != nil {
			fail(FieldSlashingProtection, "%v", err)
			return keys, res
		}
		ic, err := ParseInterchange(data)
		if err != nil {
			fail(FieldSlashingProtection, "%s: %v", v.SlashingProtection, err)
			return keys, res
		}
		if gvr := hexKey(ic.Metadata.GenesisValidatorsRoot); info.GenesisValidatorsRoot != "" && gvr != info.GenesisValidatorsRoot {
			fail(FieldSlashingProtection, "%s is the history of another network (genesis_validators_root %s, %s has %s)", v.SlashingProtection, short(gvr), p.Ethereum.Network, short(info.GenesisValidatorsRoot))
			return keys, res
		}
		covered := map[string]bool{}
		for _, d := range ic.Data {
			covered[hexKey(d.Pubkey)] = true
		}
		for _, k := range keys.Keystores {
			if !covered[k.Pubkey] {
				fail(FieldSlashingProtection, "%s has no history for validator %s (%s): export the history from the client these keys ran on, with this key in it",
					v.SlashingProtection, short(k.Pubkey), filepath.Base(k.Path))
			}
		}
		keys.Slashing = data
	}
	return keys, res
}

// ReadPasswordFile reads a keystore password as the deposit tools' users
// keep it: the whole file, less one trailing newline (LF or CRLF).
func ReadPasswordFile(path string) (string, error) {
	if path == "" {
		return "", errors.New("the keystore password file is missing: name the file that holds the password you chose in the deposit tool")
	}
	data, err := readFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("%s is empty: it must hold the keystores' password", path)
	}
	return s, nil
}

func readFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, unwrapPath(err))
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a file", path)
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("%s is %d bytes, larger than any keystore, deposit data or slashing history", path, st.Size())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, unwrapPath(err))
	}
	return data, nil
}

// unwrapPath drops the path an fs error repeats.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// short abbreviates a public key or root for messages: 0x1234…abcd.
func short(k string) string {
	if len(k) <= 14 {
		return k
	}
	return k[:10] + "…" + k[len(k)-4:]
}

// CountKeystores counts the keystore-*.json files in dir.
func CountKeystores(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() && strings.HasPrefix(e.Name(), "keystore") && strings.HasSuffix(e.Name(), ".json") {
			n++
		}
	}
	return n, nil
}

// CheckKeystoreFolder is the quick check of a typed keystore folder: it can
// be read and holds keystores. Check does the rest.
func CheckKeystoreFolder(dir string) error {
	n, err := CountKeystores(dir)
	if err != nil {
		return fmt.Errorf("cannot read the folder %s: %v", dir, unwrapPath(err))
	}
	if n == 0 {
		return fmt.Errorf("%s holds no keystore-*.json: choose the validator_keys folder the deposit tool wrote", dir)
	}
	return nil
}

// CheckReadable is the quick check of a typed file: it is a file that can
// be read.
func CheckReadable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %v", path, unwrapPath(err))
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a file", path)
	}
	return nil
}
