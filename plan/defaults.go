package plan

// Defaults returns a copy of p with every omitted optional value filled in:
// version, timezone UTC, architecture from the board, generic board, kexec
// format (sd for a Raspberry Pi 4), mainnet, ext4, the network's first checkpoint sync endpoint and,
// when MEV-boost is enabled with no relays, the network's relays.
// Values that are set, even wrongly, are left for Validate to judge.
func (p Plan) Defaults(c *Catalogue) Plan {
	if p.Version == 0 {
		p.Version = CurrentVersion
	}
	if p.Host.Timezone == "" {
		p.Host.Timezone = "UTC"
	}
	if p.Host.Board == "" {
		p.Host.Board = BoardGeneric
	}
	if p.Host.Arch == "" {
		if p.Host.Board == BoardRPi4 {
			p.Host.Arch = ArchAarch64
		} else {
			p.Host.Arch = ArchX86_64
		}
	}
	if p.Host.Format == "" {
		p.Host.Format = FormatKexec
		if p.Host.Board == BoardRPi4 {
			p.Host.Format = FormatSD
		}
	}
	if p.Ethereum.Network == "" {
		p.Ethereum.Network = Mainnet
	}
	if p.Disk.Filesystem == "" {
		p.Disk.Filesystem = Ext4
	}
	info, known := c.Networks[p.Ethereum.Network]
	if known && p.Ethereum.CheckpointSyncURL == "" && len(info.CheckpointSyncURLs) > 0 {
		p.Ethereum.CheckpointSyncURL = info.CheckpointSyncURLs[0]
	}
	if known && p.Ethereum.MevBoost.Enable && len(p.Ethereum.MevBoost.Relays) == 0 {
		for _, r := range info.Relays {
			p.Ethereum.MevBoost.Relays = append(p.Ethereum.MevBoost.Relays, r.URL)
		}
	}
	// Copy slices so the caller's plan is never aliased.
	p.Ethereum.MevBoost.Relays = append([]string(nil), p.Ethereum.MevBoost.Relays...)
	p.SSH.AuthorizedKeys = append([]string(nil), p.SSH.AuthorizedKeys...)
	p.Secrets.AdminRecipients = append([]string(nil), p.Secrets.AdminRecipients...)
	return p
}
