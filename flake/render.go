// Package image turns a plan into what boots: the flake (rendered from the
// plan and the embedded NixOS modules), the `nix build` of its kexec tree or
// ISO, and the artifacts that come out of it.
package flake

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/homestaker/homestaker/assets"
	"github.com/homestaker/homestaker/plan"
)

// File is one file of the flake, with the content it should have.
type File struct {
	// Path is relative to the flake folder, with forward slashes.
	Path    string
	Content []byte
	// Once marks files written only when missing (the user's local.nix).
	Once bool
}

// Action says what writing a file did, or would do.
type Action string

// Actions, as the review screen shows them.
const (
	Create    Action = "create"
	Update    Action = "update"
	Unchanged Action = "unchanged"
	Keep      Action = "keep" // exists and is the user's: left alone
)

// Change is a file and what writing it does.
type Change struct {
	Path   string
	Action Action
}

// RenderInput is what the renderer needs besides the plan. Parts that other
// packages compute (the disk layout, the secrets) come in as content so the
// renderer stays free of their details.
type RenderInput struct {
	// Plan must be validated and have its defaults.
	Plan plan.Plan
	// DiskoNix is hosts/<name>/disko.nix, rendered from the disk layout.
	DiskoNix []byte
	// SecretsYAML is hosts/<name>/secrets.yaml (sops-encrypted), when available.
	SecretsYAML []byte
	// SopsConfig is .sops.yaml for every host of the flake, when available.
	SopsConfig []byte
	// KnownHosts is hosts/<name>/known_hosts, when a host key exists.
	KnownHosts []byte
	// DataMountPoint is where the node mounts the data disk (disk.DataMountPoint).
	DataMountPoint string
	// Keys are the validator's keys in SecretsYAML.
	Keys ValidatorKeys
}

// Files computes every file of the flake for one host, without writing.
func Files(in RenderInput) ([]File, error) {
	p := in.Plan
	if err := plan.ValidateHostname(p.Host.Name); err != nil {
		return nil, fmt.Errorf("host.name: %w", err)
	}
	if len(in.DiskoNix) == 0 {
		return nil, errors.New("render: the disko.nix of the data disk is missing")
	}
	if in.DataMountPoint == "" {
		return nil, errors.New("render: the data disk's mount point is missing")
	}
	host, err := HostNix(p, in.DataMountPoint, in.SecretsYAML != nil, in.Keys)
	if err != nil {
		return nil, err
	}
	dir := "hosts/" + p.Host.Name + "/"
	files := []File{
		{Path: "flake.nix", Content: flakeNix()},
		{Path: ".gitignore", Content: []byte(gitignore)},
		{Path: dir + "homestaker.json", Content: plan.Encode(p)},
		{Path: dir + "default.nix", Content: host},
		{Path: dir + "disko.nix", Content: in.DiskoNix},
		{Path: dir + "local.nix", Content: []byte(localNix), Once: true},
	}
	mods, err := fs.ReadDir(assets.Modules, "nix/modules")
	if err != nil {
		return nil, fmt.Errorf("embedded modules: %w", err)
	}
	for _, m := range mods {
		data, err := fs.ReadFile(assets.Modules, "nix/modules/"+m.Name())
		if err != nil {
			return nil, fmt.Errorf("embedded module %s: %w", m.Name(), err)
		}
		files = append(files, File{Path: "modules/" + m.Name(), Content: data})
	}
	if in.SecretsYAML != nil {
		files = append(files, File{Path: dir + "secrets.yaml", Content: in.SecretsYAML})
	}
	if in.SopsConfig != nil {
		files = append(files, File{Path: ".sops.yaml", Content: in.SopsConfig})
	}
	if in.KnownHosts != nil {
		files = append(files, File{Path: dir + "known_hosts", Content: in.KnownHosts})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// Diff says what writing files into dir would do, without writing.
func Diff(dir string, files []File) ([]Change, error) {
	changes := make([]Change, 0, len(files))
	for _, f := range files {
		a, err := action(dir, f)
		if err != nil {
			return nil, err
		}
		changes = append(changes, Change{Path: f.Path, Action: a})
	}
	return changes, nil
}

func action(dir string, f File) (Action, error) {
	old, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Create, nil
	case err != nil:
		return "", fmt.Errorf("read %s: %w", f.Path, err)
	case f.Once:
		return Keep, nil
	case bytes.Equal(old, f.Content):
		return Unchanged, nil
	}
	return Update, nil
}

// Write puts files into dir (created if missing). A file whose content is
// already right is not touched, so rendering twice changes nothing; every
// write goes to a temporary file first and is renamed into place.
func Write(dir string, files []File) ([]Change, error) {
	changes, err := Diff(dir, files)
	if err != nil {
		return nil, err
	}
	for i, f := range files {
		if a := changes[i].Action; a != Create && a != Update {
			continue
		}
		target := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := WriteFileAtomic(target, f.Content, 0o644); err != nil {
			return changes[:i], err
		}
	}
	return changes, nil
}

// WriteFileAtomic writes data to name through a temporary file in the same
// folder, synced and renamed into place, so a crash leaves either the old
// file or the new one. Missing folders are created (0755).
func WriteFileAtomic(name string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create folder %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

const localNix = `# Your own additions to this node: any NixOS option goes here. homestaker
# created this file once and never overwrites it; default.nix next to it is
# generated and is replaced on every render.
{ config, lib, pkgs, ... }:
{
}
`

// HostNix renders hosts/<name>/default.nix: the host's choices as readable
// NixOS options.
func HostNix(p plan.Plan, dataMountPoint string, withSecrets bool, keys ValidatorKeys) ([]byte, error) {
	cat, err := plan.LoadCatalogue()
	if err != nil {
		return nil, err
	}
	el, ok1 := cat.Client(p.Ethereum.Execution)
	cl, ok2 := cat.Client(p.Ethereum.Consensus)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("render: unknown clients %q/%q (validate the plan first)", p.Ethereum.Execution, p.Ethereum.Consensus)
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	w("# Generated by homestaker from homestaker.json in this folder: do not edit.\n")
	w("# Change the answers (homestaker reconfigure) or add to local.nix instead.\n")
	w("{ config, lib, pkgs, ... }:\n{\n")
	w("  imports = [ ./disko.nix ./local.nix ];\n\n")

	w("  networking.hostName = %s;\n", NixString(p.Host.Name))
	w("  time.timeZone = %s;\n", NixString(p.Host.Timezone))
	w("  nixpkgs.hostPlatform = %s;\n\n", NixString(string(p.Host.Arch)+"-linux"))

	w("  # Who may log in (as root, with these keys only).\n")
	w("  users.users.root.openssh.authorizedKeys.keys = ")
	writeValue(&b, p.SSH.AuthorizedKeys, "  ")
	w(";\n\n")

	w("  # The data disk (disko.nix) holds chain data and the host's SSH key.\n")
	w("  homestaker.dataDisk.mountPoint = %s;\n\n", NixString(dataMountPoint))

	if withSecrets {
		w("  # Secrets, encrypted in secrets.yaml to this host's key (on the data disk)\n")
		w("  # and to the admins in .sops.yaml. Edit with: sops hosts/%s/secrets.yaml\n", p.Host.Name)
		w("  sops.defaultSopsFile = ./secrets.yaml;\n")
		w("  # The engine API secret shared by the execution and consensus clients.\n")
		w("  sops.secrets.%s = { };\n", NixAttrName(SecretJWT))
		if prysmValidator(p) {
			w("  # The password of Prysm's validator wallet (generated by homestaker).\n")
			w("  sops.secrets.%s = { };\n", NixAttrName(SecretPrysmWallet))
		}
		w("\n")
	}

	net := string(p.Ethereum.Network)
	services := []service{executionService(p, el), beaconService(p, cl)}
	validator := p.Ethereum.Validator.Enable && cl.ValidatorModule != ""
	if validator {
		services = append(services, validatorService(p, cl))
	}
	if p.Ethereum.MevBoost.Enable {
		services = append(services, mevBoostService(p, cat.MevBoost.Module, cat.MevBoost.Package))
	}

	w("  # Only the clients' peer-to-peer ports are open. The engine API, the beacon\n")
	w("  # API and MEV-boost listen on 127.0.0.1 and are never reachable from outside.\n")
	w("  networking.firewall.allowedTCPPorts = %s;\n", portList(el.P2P.TCP, cl.P2P.TCP))
	w("  networking.firewall.allowedUDPPorts = %s;\n\n", portList(el.P2P.UDP, cl.P2P.UDP))

	w("  # Ethereum (%s), from ethereum.nix. `settings` are each client's own flags;\n", net)
	w("  # a value holding spaces or quotes is quoted for systemd, which reads the\n")
	w("  # flags from the service's ExecStart line.\n")
	for _, s := range services {
		w("\n  # %s.\n", s.comment)
		for _, n := range s.notes {
			w("  # %s\n", n)
		}
		w("  services.ethereum.%s.%s = ", NixAttrName(s.module), NixAttrName(net))
		body := attrs{{"enable", true}, {"package", nixExpr("pkgs.ethereum-nix." + NixAttrName(s.pkg))}, {"settings", s.settings}}
		if len(s.extraArgs) > 0 {
			body = append(body, attr{"extraArgs", s.extraArgs})
		}
		writeValue(&b, body, "  ")
		w(";\n")
	}
	if validator && prysmValidator(p) && withSecrets {
		w("  # Prysm's validator reads the wallet password as a systemd credential\n")
		w("  # (--wallet-password-file %%d/wallet-password).\n")
		w("  systemd.services.%s.serviceConfig.LoadCredential = [\n", NixAttrName(cl.ValidatorModule+"-"+net))
		w("    \"wallet-password:${config.sops.secrets.%s.path}\"\n", NixAttrName(SecretPrysmWallet))
		w("  ];\n")
	}
	if validator && withSecrets {
		w("\n")
		writeValidatorKeys(&b, p, cl, net, keys)
	}
	w("}\n")
	return []byte(b.String()), nil
}

// writeValidatorKeys writes the settings of modules/validator-keys.nix: the
// keys secrets.yaml holds, imported before the validator client starts.
func writeValidatorKeys(b *strings.Builder, p plan.Plan, cl plan.Client, net string, keys ValidatorKeys) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	if len(keys.Pubkeys) == 0 {
		w("  # No validator keys yet: the validator client starts without keys and\n")
		w("  # attests nothing. Set keystoreDir and passwordFile in homestaker.json\n")
		w("  # (homestaker reconfigure) to import them.\n")
		return
	}
	w("  # The validator's keys: %d keystore(s), their password", len(keys.Pubkeys))
	if keys.SlashingProtection {
		w(" and the slashing-protection\n  # history")
	}
	w(", encrypted in secrets.yaml. A oneshot unit\n")
	w("  # imports each key once into %s's state on the data disk before the\n", cl.Title)
	w("  # validator client starts (modules/validator-keys.nix).\n")
	if p.Ethereum.Validator.DoppelgangerOn() {
		w("  # Doppelganger protection: after each start the validator waits two to three\n")
		w("  # epochs (about 15 minutes) before it signs, to see that no other machine\n")
		w("  # runs these keys.\n")
	}
	body := attrs{
		{"enable", true},
		{"client", cl.Name},
		{"network", net},
		{"package", nixExpr("pkgs.ethereum-nix." + NixAttrName(cl.Package))},
		{"pubkeys", keys.Pubkeys},
	}
	if keys.SlashingProtection {
		body = append(body, attr{"slashingProtection", true})
	}
	w("  homestaker.validatorKeys = ")
	writeValue(b, body, "  ")
	w(";\n")
}

// portList writes the union of port lists as a Nix list, in order.
func portList(lists ...[]int) string {
	seen := map[int]bool{}
	var ports []int
	for _, l := range lists {
		for _, p := range l {
			if !seen[p] {
				seen[p] = true
				ports = append(ports, p)
			}
		}
	}
	sort.Ints(ports)
	out := "["
	for _, p := range ports {
		out += " " + strconv.Itoa(p)
	}
	return out + " ]"
}

// HostDir is the folder of a host inside the flake.
func HostDir(name string) string { return path.Join("hosts", name) }
