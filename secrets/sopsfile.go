package secrets

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"filippo.io/age"
	"go.yaml.in/yaml/v3"
)

// Generator produces the value of a secret the first time it is needed,
// such as NewJWTSecret.
type Generator = func() (string, error)

// SecretsFileMode is the mode of a sops secrets file: it is encrypted and
// meant to be committed with the flake.
const SecretsFileMode fs.FileMode = 0o644

// EnsureSecretsFile makes the sops-format file at path hold every key of want,
// encrypted to exactly recipients (age1… X25519 keys), and reports whether
// it wrote the file.
//
// A missing file is created with a new data key. An existing file keeps every
// value it holds, byte for byte; only the keys of want that it lacks are
// generated and added. When the recipient set differs, the data key is
// re-encrypted for the new set without touching any value (what sops
// updatekeys does; a removed recipient that saw the data key before can still
// open old copies, so rotate secrets after removing someone). Opening an
// existing file needs one of identities (such as the host key's derived
// identity) only when something must change or to verify the file's MAC.
// When nothing changes the file is not rewritten, so rendering twice changes
// nothing. Writes are atomic.
func EnsureSecretsFile(path string, recipients []string, identities []age.Identity, want map[string]Generator) (changed bool, err error) {
	return ensureSecretsFile(path, recipients, identities, want, time.Now)
}

func ensureSecretsFile(path string, recipients []string, identities []age.Identity, want map[string]Generator, now func() time.Time) (bool, error) {
	out, mode, changed, err := secretsFileContent(path, recipients, identities, want, now)
	if err != nil || !changed {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, fmt.Errorf("secrets file %s: %w", path, err)
	}
	if err := WriteFileAtomic(path, out, mode); err != nil {
		return false, fmt.Errorf("secrets file: %w", err)
	}
	return true, nil
}

// SecretsFileContent is EnsureSecretsFile without the write: the content
// the file at path should have, its mode, and whether that differs from what
// is there. The flake step writes it with the rest of the flake, so a render
// that fails writes no secrets file either.
func SecretsFileContent(path string, recipients []string, identities []age.Identity, want map[string]Generator) (out []byte, mode fs.FileMode, changed bool, err error) {
	return secretsFileContent(path, recipients, identities, want, time.Now)
}

func secretsFileContent(path string, recipients []string, identities []age.Identity, want map[string]Generator, now func() time.Time) ([]byte, fs.FileMode, bool, error) {
	none := func(err error) ([]byte, fs.FileMode, bool, error) { return nil, 0, false, err }
	recips, err := canonicalRecipients(recipients)
	if err != nil {
		return none(fmt.Errorf("secrets file %s: %w", path, err))
	}
	names := make([]string, 0, len(want))
	for k, gen := range want {
		if err := validateSecretName(k); err != nil {
			return none(fmt.Errorf("secrets file %s: secret %q: %w", path, k, err))
		}
		if gen == nil {
			return none(fmt.Errorf("secrets file %s: secret %q has no generator", path, k))
		}
		names = append(names, k)
	}
	sort.Strings(names)

	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		out, err := newSecretsFile(recips, names, want, now)
		if err != nil {
			return none(fmt.Errorf("secrets file %s: %w", path, err))
		}
		return out, SecretsFileMode, true, nil
	case err != nil:
		return none(fmt.Errorf("secrets file %s: %w", path, err))
	}

	f, err := parseSopsFile(data)
	if err != nil {
		return none(fmt.Errorf("secrets file %s: %w", path, err))
	}
	var missing []string
	for _, k := range names {
		if !f.hasTopLevelKey(k) {
			missing = append(missing, k)
		}
	}
	sameRecipients := sameSet(canonicalOrEmpty(f.recipients()), recips)
	if len(missing) == 0 && sameRecipients && len(identities) == 0 {
		return data, 0, false, nil
	}
	key, err := f.dataKey(identities)
	if err != nil {
		return none(fmt.Errorf("secrets file %s: open: %w", path, err))
	}
	if _, err := f.decryptTree(key); err != nil {
		return none(fmt.Errorf("secrets file %s: %w", path, err))
	}
	if len(missing) == 0 && sameRecipients {
		return data, 0, false, nil
	}

	if len(missing) > 0 {
		if err := f.addSecrets(key, missing, want); err != nil {
			return none(fmt.Errorf("secrets file %s: %w", path, err))
		}
		if err := f.reseal(key, now); err != nil {
			return none(fmt.Errorf("secrets file %s: %w", path, err))
		}
	}
	if !sameRecipients {
		if err := f.setRecipients(key, recips); err != nil {
			return none(fmt.Errorf("secrets file %s: %w", path, err))
		}
	}
	out, err := f.encode()
	if err != nil {
		return none(fmt.Errorf("secrets file %s: %w", path, err))
	}
	if bytes.Equal(out, data) {
		return data, 0, false, nil
	}
	mode := SecretsFileMode
	if info, err := os.Stat(path); err == nil {
		mode = info.Mode().Perm()
	}
	return out, mode, true, nil
}

// Decrypt opens the sops-format file at path with one of identities, checks
// its MAC, and returns its top-level values by key (nested mappings and lists
// are checked but not returned). Keep the result in memory only.
func Decrypt(path string, identities []age.Identity) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secrets file %s: %w", path, err)
	}
	values, err := DecryptBytes(data, identities)
	if err != nil {
		return nil, fmt.Errorf("secrets file %s: %w", path, err)
	}
	return values, nil
}

// DecryptBytes is Decrypt for the content of a file.
func DecryptBytes(data []byte, identities []age.Identity) (map[string]string, error) {
	f, err := parseSopsFile(data)
	if err != nil {
		return nil, err
	}
	key, err := f.dataKey(identities)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	return f.decryptTree(key)
}

// SecretsFileRecipients lists the age recipients a sops-format file is
// encrypted to, as written in it; it needs no key.
func SecretsFileRecipients(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secrets file %s: %w", path, err)
	}
	f, err := parseSopsFile(data)
	if err != nil {
		return nil, fmt.Errorf("secrets file %s: %w", path, err)
	}
	return f.recipients(), nil
}

func newSecretsFile(recips, names []string, want map[string]Generator, now func() time.Time) ([]byte, error) {
	key := make([]byte, dataKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate data key: %w", err)
	}
	f := &sopsFile{
		doc:               &yaml.Node{Kind: yaml.DocumentNode},
		root:              &yaml.Node{Kind: yaml.MappingNode},
		version:           sopsVersion,
		unencryptedSuffix: defaultUnencryptedSuffix,
	}
	if err := f.addSecrets(key, names, want); err != nil {
		return nil, err
	}
	if err := f.reseal(key, now); err != nil {
		return nil, err
	}
	if err := f.setRecipients(key, recips); err != nil {
		return nil, err
	}
	return f.encode()
}

func (f *sopsFile) hasTopLevelKey(k string) bool {
	for i := 0; i+1 < len(f.root.Content); i += 2 {
		if n := f.root.Content[i]; n.Kind == yaml.ScalarNode && n.Value == k {
			return true
		}
	}
	return false
}

// addSecrets generates, encrypts and appends the named top-level values.
func (f *sopsFile) addSecrets(key []byte, names []string, want map[string]Generator) error {
	for _, k := range names {
		if !f.shouldEncrypt([]string{k}) {
			return fmt.Errorf("secret %q would be stored unencrypted under the file's sops rules", k)
		}
		v, err := want[k]()
		if err != nil {
			return fmt.Errorf("generate secret %q: %w", k, err)
		}
		if v == "" {
			return fmt.Errorf("generate secret %q: the value is empty", k)
		}
		enc, err := encryptString(v, key, additionalData([]string{k}))
		if err != nil {
			return fmt.Errorf("encrypt secret %q: %w", k, err)
		}
		f.root.Content = append(f.root.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: enc})
	}
	return nil
}

// reseal recomputes the MAC after values changed and stamps the file.
func (f *sopsFile) reseal(key []byte, now func() time.Time) error {
	mac, err := f.computeMAC(key)
	if err != nil {
		return err
	}
	f.lastModified = now().UTC().Truncate(time.Second).Format(time.RFC3339)
	f.mac, err = encryptBytes([]byte(mac), "str", key, f.lastModified)
	if err != nil {
		return fmt.Errorf("encrypt MAC: %w", err)
	}
	return nil
}

// setRecipients makes the file encrypted to exactly recips, keeping the
// existing encrypted data key of every recipient that stays.
func (f *sopsFile) setRecipients(key []byte, recips []string) error {
	old := make(map[string]string, len(f.ages))
	for _, s := range f.ages {
		if c, err := ParseRecipient(s.recipient); err == nil {
			old[c.String()] = s.enc
		}
	}
	ages := make([]ageStanza, 0, len(recips))
	for _, r := range recips {
		enc, ok := old[r]
		if !ok {
			var err error
			if enc, err = encryptDataKey(key, r); err != nil {
				return err
			}
		}
		ages = append(ages, ageStanza{recipient: r, enc: enc})
	}
	f.ages = ages
	return nil
}

// canonicalRecipients validates recipients and returns them in canonical
// form, in the given order, without duplicates.
func canonicalRecipients(recipients []string) ([]string, error) {
	if len(recipients) == 0 {
		return nil, errors.New("no recipients: a secrets file needs at least the host's age recipient")
	}
	out := make([]string, 0, len(recipients))
	for _, r := range recipients {
		p, err := ParseRecipient(r)
		if err != nil {
			return nil, fmt.Errorf("recipient %q: %w", r, err)
		}
		if !slices.Contains(out, p.String()) {
			out = append(out, p.String())
		}
	}
	return out, nil
}

// canonicalOrEmpty canonicalises the recipients written in a file; an
// unparsable one yields an entry that never equals a wanted recipient.
func canonicalOrEmpty(recipients []string) []string {
	out := make([]string, 0, len(recipients))
	for _, r := range recipients {
		if p, err := ParseRecipient(r); err == nil {
			out = append(out, p.String())
		} else {
			out = append(out, "invalid:"+r)
		}
	}
	return out
}

// validateSecretName keeps secret names simple: they become sops keys and
// sops-nix secret names.
func validateSecretName(k string) error {
	if k == "" {
		return errors.New("the name is empty")
	}
	if k == sopsKey {
		return errors.New(`"sops" is reserved for sops' metadata`)
	}
	if strings.HasSuffix(k, defaultUnencryptedSuffix) {
		return fmt.Errorf("a name ending with %s would be stored unencrypted", defaultUnencryptedSuffix)
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return errors.New("use only letters, digits, '_', '-' and '.'")
		}
	}
	return nil
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
