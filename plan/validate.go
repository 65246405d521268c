package plan

import (
	"fmt"
	"strings"
)

const gib = 1 << 30

// Validate checks the plan (after Defaults) against the catalogue and
// returns every error and warning at once, each with its field path.
func (p Plan) Validate(c *Catalogue) Result {
	var errs, warns Problems

	if p.Version != CurrentVersion {
		errs.add("version", "this homestaker reads answers files of version %d, not %d", CurrentVersion, p.Version)
	}

	// host
	errs.check("host.name", ValidateHostname(p.Host.Name))
	errs.check("host.timezone", ValidateTimezone(p.Host.Timezone))
	archOK := oneOf(&errs, "host.arch", string(p.Host.Arch), "x86_64", "aarch64")
	oneOf(&errs, "host.board", string(p.Host.Board), "generic", "rpi4")
	oneOf(&errs, "host.format", string(p.Host.Format), "kexec", "iso", "sd")
	if p.Host.Firmware != "" {
		oneOf(&errs, "host.firmware", string(p.Host.Firmware), "uefi", "bios")
	}
	if p.Host.Board == BoardRPi4 && p.Host.Arch != ArchAarch64 && archOK {
		errs.add("host.arch", "a Raspberry Pi 4 is aarch64; set arch to \"aarch64\" or leave it out")
	}
	p.boardFormat(&errs)

	// ethereum
	e := p.Ethereum
	info, netOK := c.Networks[e.Network]
	if !netOK {
		errs.add("ethereum.network", "unknown network %q; choose %s (Holesky was shut down in 2025)", e.Network, quoteList(networkStrings(c)))
	}
	el := p.client(c, &errs, "ethereum.execution", e.Execution, Execution, archOK)
	cl := p.client(c, &errs, "ethereum.consensus", e.Consensus, Consensus, archOK)

	if e.CheckpointSyncURL != "" {
		errs.check("ethereum.checkpointSyncUrl", ValidateCheckpointURL(e.CheckpointSyncURL))
	}

	v := e.Validator
	if v.Enable {
		errs.check("ethereum.validator.feeRecipient", ValidateFeeRecipient(v.FeeRecipient))
		if cl != nil && cl.ValidatorModule == "" {
			errs.add("ethereum.validator.enable", "ethereum.nix has no validator module for %s; choose lighthouse, prysm or nimbus as consensus client, or disable the validator", cl.Title)
		}
		keyPaths := map[string]string{"ethereum.validator.keystoreDir": v.KeystoreDir, "ethereum.validator.passwordFile": v.PasswordFile, "ethereum.validator.slashingProtection": v.SlashingProtection}
		for _, path := range []string{"ethereum.validator.keystoreDir", "ethereum.validator.passwordFile", "ethereum.validator.slashingProtection"} {
			if f := keyPaths[path]; f != "" && !strings.HasPrefix(f, "/") {
				errs.add(path, "%q is not an absolute path: write it from / (the wizard does this for you)", f)
			}
		}
		switch {
		case v.KeystoreDir != "" && v.PasswordFile == "":
			errs.add("ethereum.validator.passwordFile", "the keystores need their password: name the file that holds it")
		case v.KeystoreDir == "" && (v.PasswordFile != "" || v.SlashingProtection != ""):
			errs.add("ethereum.validator.keystoreDir", "a password or slashing-protection file without keystores: name the validator_keys folder too")
		case v.KeystoreDir == "":
			warns.add("ethereum.validator.keystoreDir", "no validator keys: the validator client starts without keys and attests nothing until you import them (set keystoreDir and passwordFile, then render again)")
		}
		if v.SlashingProtection != "" && e.Consensus == "prysm" {
			errs.add("ethereum.validator.slashingProtection", "Prysm imports a slashing-protection history only into the database its validator client makes on its first start, so homestaker cannot import it before the keys sign: leave this empty, and before the node runs these keys, stop prysm-validator-%s on it and import the history by hand (README: Moving validators), or choose lighthouse or nimbus", e.Network)
		}
		if !v.DoppelgangerOn() {
			warns.add("ethereum.validator.doppelganger", "doppelganger protection is off: if these keys run on another machine too, both will be slashed")
		}
		if netOK && info.PermissionedValidators {
			warns.add("ethereum.validator.enable", "%s has a permissioned validator set: your validator will only attest if its keys were admitted; use hoodi to practise staking", info.Title)
		}
	} else if v.FeeRecipient != "" || v.Graffiti != "" {
		warns.add("ethereum.validator", "fee recipient and graffiti are ignored while the validator is disabled")
	}
	if v.FeeRecipient != "" && !v.Enable {
		errs.check("ethereum.validator.feeRecipient", ValidateFeeRecipient(v.FeeRecipient))
	}
	errs.check("ethereum.validator.graffiti", ValidateGraffiti(v.Graffiti))

	m := e.MevBoost
	if m.Enable {
		if archOK && !c.MevBoostRunsOn(p.Host.Arch) {
			errs.add("ethereum.mevBoost.enable", "ethereum.nix packages mev-boost only for %s (as of %s); disable MEV-boost on %s", joinArch(c.MevBoost.Arch), c.MevBoost.AsOf, p.Host.Arch)
		}
		if len(m.Relays) == 0 {
			errs.add("ethereum.mevBoost.relays", "MEV-boost needs at least one relay; leave the list empty in the answers file to get the network's default relays")
		}
		if !v.Enable {
			warns.add("ethereum.mevBoost.enable", "MEV-boost only matters when this node proposes blocks; it is enabled without a validator")
		}
	}
	seen := map[string]bool{}
	for i, r := range m.Relays {
		path := fmt.Sprintf("ethereum.mevBoost.relays[%d]", i)
		errs.check(path, ValidateRelay(r))
		if seen[r] {
			errs.add(path, "this relay is listed twice")
		}
		seen[r] = true
	}

	// disk
	errs.check("disk.device", ValidateDevice(p.Disk.Device))
	if p.Disk.Device != "" && !strings.HasPrefix(p.Disk.Device, "/dev/disk/by-") {
		warns.add("disk.device", "%s may name another disk after a reboot; prefer its /dev/disk/by-id/… name", p.Disk.Device)
	}
	oneOf(&errs, "disk.filesystem", string(p.Disk.Filesystem), "ext4", "xfs", "btrfs")

	// ssh and secrets
	if len(p.SSH.AuthorizedKeys) == 0 {
		errs.add("ssh.authorizedKeys", "add at least one SSH public key: the node runs from RAM and SSH is the only way in")
	}
	keys := map[string]bool{}
	for i, k := range p.SSH.AuthorizedKeys {
		path := fmt.Sprintf("ssh.authorizedKeys[%d]", i)
		errs.check(path, ValidateSSHKey(k))
		if f := strings.Fields(k); len(f) >= 2 {
			if keys[f[1]] {
				warns.add(path, "this key is listed twice")
			}
			keys[f[1]] = true
		}
	}
	if p.SSH.HostKey != "" {
		errs.check("ssh.hostKey", ValidateHostKey(p.SSH.HostKey))
	}
	for i, r := range p.Secrets.AdminRecipients {
		errs.check(fmt.Sprintf("secrets.adminRecipients[%d]", i), ValidateAgeRecipient(r))
	}

	// resources: warnings only
	if p.Host.Board == BoardRPi4 && e.Network == Mainnet {
		warns.add("host.board", "a Raspberry Pi 4 (at most 8 GB RAM) cannot keep up with mainnet; use it for a testnet or as an experiment")
	}
	if netOK {
		p.resourceWarnings(c, &warns, info, el, cl)
		p.boardRAMWarnings(c, &warns, el, cl)
		if el != nil && el.Supermajority && e.Network == Mainnet {
			warns.add("ethereum.execution", "%s runs on a large share of the network (as of %s); a bug in a supermajority client can cost its stakers dearly: consider a minority client", el.Title, el.AsOf)
		}
		if cl != nil && cl.Supermajority && e.Network == Mainnet {
			warns.add("ethereum.consensus", "%s runs on a large share of the network (as of %s); consider a minority client for client diversity", cl.Title, cl.AsOf)
		}
	}
	return Result{Errors: errs, Warnings: warns}
}

func (p Plan) client(c *Catalogue, errs *Problems, path, name string, kind Kind, archOK bool) *Client {
	cl, ok := c.Client(name)
	if !ok || cl.Kind != kind {
		if name == "" {
			errs.add(path, "choose the %s client: %s", kind, quoteList(c.Names(kind)))
		} else {
			errs.add(path, "unknown %s client %q; choose %s", kind, name, quoteList(c.Names(kind)))
		}
		return nil
	}
	if archOK && !cl.RunsOn(p.Host.Arch) {
		var alts []string
		for _, a := range c.ClientsFor(kind, p.Host.Arch) {
			alts = append(alts, a.Name)
		}
		errs.add(path, "ethereum.nix does not build %s for %s (as of %s); choose %s", cl.Title, p.Host.Arch, cl.AsOf, quoteList(alts))
		return nil
	}
	return &cl
}

func (p Plan) resourceWarnings(c *Catalogue, warns *Problems, info NetworkInfo, el, cl *Client) {
	if ram, _ := p.NodeMemory(); ram > 0 {
		need := info.MinRAMGiB
		if p.Ethereum.Validator.Enable && info.ValidatorRAMGiB > need {
			need = info.ValidatorRAMGiB
		}
		have := float64(ram) / gib
		if have < float64(need) {
			warns.add("host.memoryBytes", "%.0f GiB of RAM is below the %d GiB recommended for %s (%s, as of %s); the OS itself also lives in RAM", have, need, info.Title, info.Source, info.AsOf)
		}
		if el != nil && el.MinRAMGiB > 0 && have < float64(el.MinRAMGiB) {
			warns.add("ethereum.execution", "%s needs at least %d GiB of RAM (as of %s); this machine has %.0f GiB", el.Title, el.MinRAMGiB, el.AsOf, have)
		}
	}
	if size := p.Disk.SizeBytes; size > 0 && el != nil && cl != nil {
		need := info.MinDiskGiB
		have := float64(size) / gib
		if have < float64(need) {
			warns.add("disk.sizeBytes", "the %.0f GiB disk is below the %d GiB recommended for %s with room to grow (%s: ~%d GiB, %s: ~%d GiB on %s, as of %s)", have, need, info.Title, el.Title, el.DiskFor(info.Name), cl.Title, cl.DiskFor(info.Name), info.Name, c.DiskAsOf(*el, info.Name))
		}
	}
}

func oneOf(errs *Problems, path, v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	errs.add(path, "%q is not accepted; choose %s", v, quoteList(allowed))
	return false
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	switch len(q) {
	case 0:
		return "(none available)"
	case 1:
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

func networkStrings(c *Catalogue) []string {
	var out []string
	for _, n := range c.NetworkNames() {
		out = append(out, string(n))
	}
	return out
}

func joinArch(as []Arch) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}
