package secrets

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"filippo.io/age"
	"go.yaml.in/yaml/v3"
)

// SecretsFileNames lists the top-level keys of a sops-format file (the
// names of its secrets, never a value); it needs no key.
func SecretsFileNames(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secrets file %s: %w", path, err)
	}
	f, err := parseSopsFile(data)
	if err != nil {
		return nil, fmt.Errorf("secrets file %s: %w", path, err)
	}
	var names []string
	for i := 0; i+1 < len(f.root.Content); i += 2 {
		if n := f.root.Content[i]; n.Kind == yaml.ScalarNode {
			names = append(names, n.Value)
		}
	}
	return names, nil
}

// ReplaceSecret sets one top-level secret of an existing sops-format file
// to value, keeping every other value, the data key and the recipients. It
// is for a value the user hands over anew (a fresh slashing-protection
// export), never for a generated secret. changed is false when the file
// already holds that value.
func ReplaceSecret(path string, identities []age.Identity, name, value string) (changed bool, err error) {
	if err := validateSecretName(name); err != nil {
		return false, fmt.Errorf("secrets file %s: secret %q: %w", path, name, err)
	}
	if value == "" {
		return false, fmt.Errorf("secrets file %s: secret %q: the value is empty", path, name)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("secrets file %s: %w", path, err)
	}
	f, err := parseSopsFile(data)
	if err != nil {
		return false, fmt.Errorf("secrets file %s: %w", path, err)
	}
	key, err := f.dataKey(identities)
	if err != nil {
		return false, fmt.Errorf("secrets file %s: open: %w", path, err)
	}
	values, err := f.decryptTree(key)
	if err != nil {
		return false, fmt.Errorf("secrets file %s: %w", path, err)
	}
	if old, ok := values[name]; ok && old == value {
		return false, nil
	}
	kept := f.root.Content[:0:0]
	for i := 0; i+1 < len(f.root.Content); i += 2 {
		if n := f.root.Content[i]; n.Kind == yaml.ScalarNode && n.Value == name {
			continue
		}
		kept = append(kept, f.root.Content[i], f.root.Content[i+1])
	}
	f.root.Content = kept
	if err := f.addSecrets(key, []string{name}, map[string]Generator{name: func() (string, error) { return value, nil }}); err != nil {
		return false, fmt.Errorf("secrets file %s: %w", path, err)
	}
	if err := f.reseal(key, time.Now); err != nil {
		return false, fmt.Errorf("secrets file %s: %w", path, err)
	}
	out, err := f.encode()
	if err != nil {
		return false, fmt.Errorf("secrets file %s: %w", path, err)
	}
	if bytes.Equal(out, data) {
		return false, nil
	}
	mode := SecretsFileMode
	if info, err := os.Stat(path); err == nil {
		mode = info.Mode().Perm()
	}
	if err := WriteFileAtomic(path, out, mode); err != nil {
		return false, fmt.Errorf("secrets file: %w", err)
	}
	return true, nil
}
