// Package steps runs what a plan asks for, in order: keys → flake → disk →
// build → boot. Each step can describe itself without side effects (dry run)
// and reports its progress through a report.Reporter; the format-specific
// work is delegated to disk, secrets and image.
package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"filippo.io/age"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/flake"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/report"
	"github.com/homestaker/homestaker/secrets"
	"github.com/homestaker/homestaker/validator"
)

// FlakeRequest asks for a host's flake to be written (or described).
type FlakeRequest struct {
	// Plan is validated and has its defaults.
	Plan plan.Plan
	// Out is the flake folder; Private the folder for private keys.
	Out, Private string
	// Keys are the validator's keys, checked (validator.Check); nil: Flake
	// checks them itself when the plan names a keystore folder.
	Keys   *validator.Keys
	DryRun bool
	Report report.Reporter
	// Write says how the flake files are written: Force to overwrite files
	// homestaker did not write, Input for the answers file being rendered.
	Write flake.WriteOptions
}

// FlakeResult is what the flake step did.
type FlakeResult struct {
	// Plan is the plan as written to homestaker.json: with the host key and,
	// when the user gave none, the generated admin recipient.
	Plan    plan.Plan
	Changes []flake.Change
	// HostKey is the host's SSH key (public facts only); empty in a dry run
	// before the key exists.
	HostKey secrets.HostKey
	// AdminIdentity is the path of an admin identity generated in this run.
	AdminIdentity string
	// KnownHosts is the known_hosts line for the node.
	KnownHosts string
	// Files are the flake's files as rendered (the review diffs them).
	Files []flake.File
}

// secretGenerators makes the secrets the host's default.nix declares
// (image.SecretNames), each the first time it is needed: generated ones
// (the JWT, Prysm's wallet password) and the validator's keys as the user
// gave them.
func secretGenerators(p plan.Plan, keys validator.Keys) map[string]secrets.Generator {
	gens := map[string]secrets.Generator{}
	byName := map[string][]byte{}
	for _, k := range keys.Keystores {
		byName[flake.SecretKeystore(k.Pubkey)] = k.Data
	}
	for _, name := range flake.SecretNames(p, flakeKeys(keys)) {
		switch {
		case name == flake.SecretJWT:
			gens[name] = secrets.NewJWTSecret
		case name == flake.SecretPrysmWallet:
			gens[name] = secrets.NewPassword
		case name == flake.SecretValidatorPassword:
			path := p.Ethereum.Validator.PasswordFile
			gens[name] = func() (string, error) { return validator.ReadPasswordFile(path) }
		case name == flake.SecretSlashing:
			data := keys.Slashing
			gens[name] = func() (string, error) { return string(data), nil }
		default:
			data, ok := byName[name]
			if !ok {
				panic("steps: no value for secret " + name)
			}
			gens[name] = func() (string, error) { return string(data), nil }
		}
	}
	return gens
}

// flakeKeys is what the flake says of the keys: their public keys and
// whether a slashing history comes with them.
func flakeKeys(k validator.Keys) flake.ValidatorKeys {
	return flake.ValidatorKeys{Pubkeys: k.Pubkeys(), SlashingProtection: k.Slashing != nil}
}

// Flake runs the keys and flake steps: the host key and admin identity in
// the private folder, the encrypted secrets, .sops.yaml, known_hosts, and
// the flake files. Existing keys and secret values are always kept.
//
// The flake folder changes only at the end, in one commit of flake.Write
// (secrets.yaml included): a failure, or ctx ending, leaves it as it was.
// A refusal to overwrite the user's files is a *flake.ForeignError.
func Flake(ctx context.Context, req FlakeRequest) (FlakeResult, error) {
	rep := req.Report
	if rep == nil {
		rep = report.Discard
	}
	p := req.Plan
	res := FlakeResult{}
	name := p.Host.Name

	// The validator's keys are checked before anything is written.
	var keys validator.Keys
	if req.Keys != nil {
		keys = *req.Keys
	} else {
		cat, err := plan.LoadCatalogue()
		if err != nil {
			return res, err
		}
		var r plan.Result
		keys, r = validator.Check(p, cat)
		if !r.OK() {
			return res, r.Errors
		}
	}

	if err := ctx.Err(); err != nil {
		return res, err
	}
	// Keys.
	var key secrets.HostKey
	var err error
	if req.DryRun {
		key, err = secrets.LoadHostKey(req.Private, name)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return res, err
		}
		if err != nil {
			rep.Report(report.Event{Step: "keys", Message: "would generate the SSH host key of " + name + " in " + secrets.HostKeyDir(req.Private, name)})
		}
	} else {
		var created bool
		key, created, err = secrets.EnsureHostKey(req.Private, name)
		if err != nil {
			return res, err
		}
		verb := "using the existing"
		if created {
			verb = "generated the"
		}
		rep.Report(report.Event{Step: "keys", Message: fmt.Sprintf("%s SSH host key of %s (%s), kept in %s", verb, name, key.Fingerprint, key.PrivatePath)})
	}
	if key.PublicKey != "" {
		if p.SSH.HostKey != "" && p.SSH.HostKey != key.PublicKey {
			return res, fmt.Errorf("ssh.hostKey: the answers name host key %q, but %s holds another key; restore the private folder this host was made with, or remove ssh.hostKey from the answers to adopt the key there", p.SSH.HostKey, key.PrivatePath)
		}
		p.SSH.HostKey = key.PublicKey
	}
	if len(p.Secrets.AdminRecipients) == 0 {
		if req.DryRun {
			rep.Report(report.Event{Step: "keys", Message: "would generate an admin age identity (no secrets.adminRecipients given)"})
		} else {
			recipient, path, created, err := secrets.EnsureAdminIdentity(req.Private)
			if err != nil {
				return res, err
			}
			p.Secrets.AdminRecipients = []string{recipient}
			if created {
				res.AdminIdentity = path
			}
			rep.Report(report.Event{Step: "keys", Level: report.Warning, Message: fmt.Sprintf("admin age identity %s is in %s: copy it off this machine (a rescue system forgets it at reboot); with it you can edit the secrets with sops", recipient, path)})
		}
	}

	// Secrets and who can open them: made here, written with the flake.
	hostDir := filepath.Join(req.Out, "hosts", name)
	secretsFile := filepath.Join(hostDir, "secrets.yaml")
	secretsYAML, err := os.ReadFile(secretsFile)
	var secretsMode fs.FileMode
	switch {
	case errors.Is(err, fs.ErrNotExist) && req.DryRun:
		secretsYAML = []byte("# to be generated\n")
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return res, fmt.Errorf("read %s: %w", secretsFile, err)
	}
	if key.PublicKey != "" && !req.DryRun {
		id, err := key.Identity()
		if err != nil {
			return res, err
		}
		recipients := append([]string{key.Recipient}, p.Secrets.AdminRecipients...)
		out, mode, changed, err := secrets.SecretsFileContent(secretsFile, recipients, []age.Identity{id}, secretGenerators(p, keys))
		if err != nil {
			return res, fmt.Errorf("secrets of %s: %w", name, err)
		}
		if changed {
			secretsYAML, secretsMode = out, mode
			rep.Report(report.Event{Step: "keys", Message: "secrets for " + secretsFile + ": " + strings.Join(secretSummary(p, keys), ", ") + ", encrypted to the host and the admins"})
		}
	}

	rules, err := sopsRules(req.Out, p)
	if err != nil {
		return res, err
	}
	in := flake.RenderInput{
		Plan:           p,
		SecretsYAML:    secretsYAML,
		SopsConfig:     secrets.RenderSopsConfig(rules),
		DataMountPoint: disk.DataMountPoint,
		Keys:           flakeKeys(keys),
	}
	if key.PublicKey != "" {
		line, err := secrets.KnownHostsLine(key.PublicKey, name)
		if err != nil {
			return res, err
		}
		res.KnownHosts = line
		in.KnownHosts = []byte(line + "\n")
	}
	layout, err := disk.New(p)
	if err != nil {
		return res, err
	}
	in.DiskoNix = layout.DiskoNix()

	files, err := flake.Files(in)
	if err != nil {
		return res, err
	}
	for i := range files {
		if files[i].Path == "hosts/"+name+"/secrets.yaml" {
			files[i].Merged, files[i].Mode = true, secretsMode
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if req.DryRun {
		res.Changes, err = flake.Diff(req.Out, files, req.Write)
		if err == nil {
			err = flake.ForeignOf(req.Out, res.Changes)
		}
	} else {
		res.Changes, err = flake.Write(ctx, req.Out, files, req.Write)
	}
	res.Plan, res.HostKey, res.Files = p, key, files
	return res, err
}

// secretSummary names what the secrets file holds, for the progress line:
// never a value.
func secretSummary(p plan.Plan, keys validator.Keys) []string {
	out := []string{"the engine-API JWT"}
	if p.Ethereum.Validator.Enable && p.Ethereum.Consensus == "prysm" {
		out = append(out, "Prysm's wallet password")
	}
	if n := len(keys.Keystores); n > 0 && p.Ethereum.Validator.Enable {
		out = append(out, fmt.Sprintf("%d validator keystore(s) and their password", n))
		if keys.Slashing != nil {
			out = append(out, "the slashing-protection history")
		}
	}
	return out
}

// sopsRules collects the creation rule of every host in the flake: the ones
// already there (from their homestaker.json) and the one being written.
func sopsRules(out string, p plan.Plan) ([]secrets.HostRule, error) {
	byHost := map[string]secrets.HostRule{}
	add := func(q plan.Plan) error {
		if q.SSH.HostKey == "" {
			return nil
		}
		r, err := secrets.SSHPublicKeyToRecipient(q.SSH.HostKey)
		if err != nil {
			return fmt.Errorf("hosts/%s: ssh.hostKey: %w", q.Host.Name, err)
		}
		byHost[q.Host.Name] = secrets.HostRule{Host: q.Host.Name, Recipients: append([]string{r}, q.Secrets.AdminRecipients...)}
		return nil
	}
	answers, _ := filepath.Glob(filepath.Join(out, "hosts", "*", "homestaker.json"))
	for _, f := range answers {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		q, err := plan.Decode(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if q.Host.Name != filepath.Base(filepath.Dir(f)) || q.Host.Name == p.Host.Name {
			continue
		}
		if err := add(q); err != nil {
			return nil, err
		}
	}
	if err := add(p); err != nil {
		return nil, err
	}
	rules := make([]secrets.HostRule, 0, len(byHost))
	for _, r := range byHost {
		rules = append(rules, r)
	}
	sort.Slice(rules, func(i, j int) bool { return rules[i].Host < rules[j].Host })
	return rules, nil
}
