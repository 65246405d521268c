package secrets

import (
	"bytes"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// HostRule says who can open one host's secrets file: the host's own
// recipient and the admins' recipients (age1… keys).
type HostRule struct {
	Host       string
	Recipients []string
}

// SecretsPath is the flake-relative path of a host's secrets file.
func SecretsPath(host string) string {
	return "hosts/" + host + "/secrets.yaml"
}

// RenderSopsConfig renders the flake's .sops.yaml: one creation rule per
// host, matching hosts/<host>/secrets.yaml relative to the flake, with one
// key group of age recipients, so that an admin can run
// `sops edit hosts/<host>/secrets.yaml` (or `sops updatekeys`) from the
// flake. Hosts are sorted; recipients keep their order without duplicates.
// The output is deterministic.
func RenderSopsConfig(rules []HostRule) []byte {
	type keyGroup struct {
		Age []string `yaml:"age"`
	}
	type creationRule struct {
		PathRegex string     `yaml:"path_regex"`
		KeyGroups []keyGroup `yaml:"key_groups"`
	}
	type config struct {
		CreationRules []creationRule `yaml:"creation_rules"`
	}
	sorted := slices.Clone(rules)
	slices.SortStableFunc(sorted, func(a, b HostRule) int { return strings.Compare(a.Host, b.Host) })
	var c config
	for _, r := range sorted {
		var recips []string
		for _, x := range r.Recipients {
			x = strings.TrimSpace(x)
			if x != "" && !slices.Contains(recips, x) {
				recips = append(recips, x)
			}
		}
		c.CreationRules = append(c.CreationRules, creationRule{
			PathRegex: "^" + regexp.QuoteMeta(SecretsPath(r.Host)) + "$",
			KeyGroups: []keyGroup{{Age: recips}},
		})
	}
	var buf bytes.Buffer
	buf.WriteString("# Written by homestaker. Who can open each host's secrets:\n" +
		"# the host itself (its SSH host key, converted to age) and the admins.\n" +
		"# After changing recipients here, run: sops updatekeys hosts/<host>/secrets.yaml\n")
	e := yaml.NewEncoder(&buf)
	e.SetIndent(2)
	// Encoding plain structs of strings cannot fail.
	_ = e.Encode(c)
	_ = e.Close()
	return buf.Bytes()
}
