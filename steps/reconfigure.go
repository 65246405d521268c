package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"filippo.io/age"

	"github.com/homestaker/homestaker/flake"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/secrets"
	"github.com/homestaker/homestaker/validator"
)

// SlashingStep hands a new validator client the slashing-protection
// history the user exported from the old one: it replaces the history in
// secrets.yaml (every other secret is kept), so the new client imports it
// before any key signs. A flake without a history yet gets it from the
// flake step.
type SlashingStep struct{}

func (SlashingStep) Name() string { return "slashing" }

func (SlashingStep) Title(t *Target) string {
	return "Hand the slashing-protection history to " + t.Plan.Ethereum.Consensus + "'s validator"
}

func (SlashingStep) Describe(t *Target) []string {
	return []string{"replace the EIP-3076 slashing-protection history in hosts/" + t.Plan.Host.Name + "/secrets.yaml with " + t.Plan.Ethereum.Validator.SlashingProtection + " (every other secret is kept)"}
}

func (SlashingStep) Apply(ctx context.Context, t *Target, s *Sink) error {
	if t.Keys.Slashing == nil {
		return &Error{Kind: KindRefused, Err: errors.New("ethereum.validator.slashingProtection: the new validator client needs the history exported from the old one")}
	}
	file := filepath.Join(t.FlakeDir, "hosts", t.Plan.Host.Name, "secrets.yaml")
	names, err := secrets.SecretsFileNames(file)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !slices.Contains(names, flake.SecretSlashing)) {
		s.Notef("no history in secrets.yaml yet: the flake step adds %s", t.Plan.Ethereum.Validator.SlashingProtection)
		return nil
	}
	if err != nil {
		return err
	}
	id, err := hostIdentity(t.Private, t.Plan.Host.Name)
	if err != nil {
		return err
	}
	changed, err := secrets.ReplaceSecret(file, []age.Identity{id}, flake.SecretSlashing, string(t.Keys.Slashing))
	if err != nil {
		return err
	}
	if changed {
		s.Notef("replaced the slashing-protection history in %s with %s", file, t.Plan.Ethereum.Validator.SlashingProtection)
	} else {
		s.Notef("secrets.yaml already holds %s", t.Plan.Ethereum.Validator.SlashingProtection)
	}
	return nil
}

func hostIdentity(private, host string) (age.Identity, error) {
	key, err := secrets.LoadHostKey(private, host)
	if err != nil {
		return nil, &Error{Kind: KindRefused, Err: fmt.Errorf("the SSH host key of %s is not in %s (%v): the secrets are encrypted to it; name the private folder the host was made with", host, private, err)}
	}
	return key.Identity()
}

// SecretsOutlook says, without opening it, what writing the flake of p
// does to an existing hosts/<name>/secrets.yaml: "unchanged", or what makes
// it re-encrypted (secrets added, other recipients, a replaced history).
// Never a value. hostRecipient is the host key's age recipient.
func SecretsOutlook(p plan.Plan, keys validator.Keys, flakeDir, hostRecipient string, replaceSlashing bool) (changed bool, note string, err error) {
	file := filepath.Join(flakeDir, "hosts", p.Host.Name, "secrets.yaml")
	names, err := secrets.SecretsFileNames(file)
	if err != nil {
		return false, "", err
	}
	var why []string
	var added []string
	for _, n := range flake.SecretNames(p, flakeKeys(keys)) {
		if !slices.Contains(names, n) {
			added = append(added, n)
		}
	}
	if len(added) > 0 {
		why = append(why, "adds "+strings.Join(added, ", "))
	}
	have, err := secrets.SecretsFileRecipients(file)
	if err != nil {
		return false, "", err
	}
	want := append([]string{hostRecipient}, p.Secrets.AdminRecipients...)
	if !sameRecipients(have, want) {
		why = append(why, fmt.Sprintf("encrypted to %d recipient(s) instead of %d", len(want), len(have)))
	}
	if replaceSlashing && slices.Contains(names, flake.SecretSlashing) {
		why = append(why, "replaces the slashing-protection history")
	}
	if len(why) == 0 {
		return false, "unchanged: every secret and recipient kept", nil
	}
	return true, "re-encrypted: " + strings.Join(why, "; ") + "; every existing secret kept", nil
}

func sameRecipients(a, b []string) bool {
	set := func(l []string) []string {
		out := []string{}
		for _, s := range l {
			if r, err := secrets.ParseRecipient(s); err == nil {
				s = r.String()
			}
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(set(a), set(b))
}
