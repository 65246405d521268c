package nodeeval_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/internal/nodeeval"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/validator"
)

// argv is a command line as the client receives it.
type argv []string

// count is how often flag stands as a word of its own, or as flag=….
func (a argv) count(flag string) int {
	n := 0
	for _, w := range a {
		if w == flag || strings.HasPrefix(w, flag+"=") {
			n++
		}
	}
	return n
}

// value is the value of a flag given exactly once, as `flag value` or
// `flag=value`; ok is false when it is missing, repeated or has no value.
func (a argv) value(flag string) (string, bool) {
	if a.count(flag) != 1 {
		return "", false
	}
	for i, w := range a {
		if v, ok := strings.CutPrefix(w, flag+"="); ok {
			return v, true
		}
		if w == flag && i+1 < len(a) && !strings.HasPrefix(a[i+1], "--") {
			return a[i+1], true
		}
	}
	return "", false
}

// judge checks one host and returns how many assertions it made.
type judgement struct {
	t    *testing.T
	host string
	n    int
}

func (j *judgement) check(ok bool, format string, args ...any) {
	j.t.Helper()
	j.n++
	if !ok {
		j.t.Errorf("%s: %s", j.host, fmt.Sprintf(format, args...))
	}
}

// flag checks that flag has exactly the value want.
func (j *judgement) flag(unit string, a argv, flag, want string) {
	j.t.Helper()
	got, ok := a.value(flag)
	j.check(ok && got == want, "%s: %s is %q (given %d times), want %q once; command line %q", unit, flag, got, a.count(flag), want, []string(a))
}

// present checks that a boolean flag is given exactly once.
func (j *judgement) present(unit string, a argv, flag string) {
	j.t.Helper()
	j.check(a.count(flag) == 1, "%s: %s given %d times, want once; command line %q", unit, flag, a.count(flag), []string(a))
}

// absent checks that flag is not given at all.
func (j *judgement) absent(unit string, a argv, flag string) {
	j.t.Helper()
	j.check(a.count(flag) == 0, "%s: %s is given; command line %q", unit, flag, []string(a))
}

const (
	jwtSecretPath = "/run/secrets/jwt"
	engine        = "http://127.0.0.1:8551"
	beaconREST    = "http://127.0.0.1:5052"
	mevBoost      = "http://127.0.0.1:18550"
	dataMount     = "/var/lib"
	bootMount     = "/boot"
)

var networks = []string{"mainnet", "hoodi", "sepolia", "holesky", "goerli"}

func judge(t *testing.T, p plan.Plan, h nodeeval.Host, cat *plan.Catalogue) int {
	t.Helper()
	j := &judgement{t: t, host: p.Host.Name}
	e := p.Ethereum
	net := string(e.Network)
	el, _ := cat.Client(e.Execution)
	cl, _ := cat.Client(e.Consensus)

	// The data disk holds every client's state: systemd's %S is /var/lib,
	// the data disk's mount, needed for boot (sops-nix reads the host key
	// there during activation).
	fsys, ok := h.FileSystems[dataMount]
	j.check(ok && fsys.Device == "/dev/disk/by-partlabel/disk-data-data" && fsys.FSType == string(p.Disk.Filesystem) && fsys.NeededForBoot,
		"the data disk is not mounted at %s from its partition label and needed for boot: %+v", dataMount, fsys)
	// The boot partition (the node's kernel, initrd and boot loader
	// configuration) is mounted at /boot, so a rebuild on the node can
	// update the boot entry; it is not needed for boot, and a missing one
	// must not hold the boot up.
	esp, ok := h.FileSystems[bootMount]
	j.check(ok && esp.Device == "/dev/disk/by-partlabel/disk-data-boot" && esp.FSType == "vfat" && !esp.NeededForBoot &&
		slices.Contains(esp.Options, "umask=0077") && slices.Contains(esp.Options, "nofail"),
		"the boot partition is not mounted at %s from its partition label as vfat, root-only and nofail: %+v", bootMount, esp)
	j.check(len(h.FileSystems) == 2, "mounts %v, want only %s and %s", slices.Sorted(maps.Keys(h.FileSystems)), dataMount, bootMount)
	hostKey := dataMount + "/secrets/ssh/ssh_host_ed25519_key"
	j.check(slices.Equal(h.Sops.SSHKeyPaths, []string{hostKey}), "sops-nix reads %v, want the host key on the data disk %s", h.Sops.SSHKeyPaths, hostKey)
	j.check(h.OpenSSH.Enable && len(h.OpenSSH.HostKeys) == 1 && h.OpenSSH.HostKeys[0].Path == hostKey, "openssh host keys %+v, want only %s", h.OpenSSH.HostKeys, hostKey)
	// The leftover store of an install that built on the data disk
	// (--store-on-data-disk) goes at boot.
	leftover := "R " + dataMount + "/" + disk.BuildStoreDir + " - - - - -"
	j.check(slices.Contains(h.TmpfilesRules, leftover), "tmpfiles rules %q, want %q", h.TmpfilesRules, leftover)
	j.check(h.HostName == p.Host.Name, "host name %q", h.HostName)
	j.check(len(h.Warnings) == 0, "evaluation warnings: %q", h.Warnings)
	j.check(h.Sops.Secrets["jwt"].Path == jwtSecretPath, "the JWT secret is at %q, want %s", h.Sops.Secrets["jwt"].Path, jwtSecretPath)
	wantImage := "kexec-tree"
	if p.Host.Format == plan.FormatISO {
		wantImage = "iso/nixos.iso"
	}
	if p.Host.Format == plan.FormatSD {
		wantImage = "sd-parts"
	}
	j.check(h.Image == wantImage, "nix build .#%s builds %q, want %q", p.Host.Name, h.Image, wantImage)
	// A kexec host on x86_64 carries the boot loader of its boot entry
	// (systemd-boot and GRUB from its nixpkgs); other hosts carry none.
	wantLoader := ""
	if p.Host.Format == plan.FormatKexec && p.Host.Arch == plan.ArchX86_64 {
		wantLoader = "homestaker-boot-loader"
	}
	j.check(h.BootLoader == wantLoader, "the system carries the boot loader %q at /etc/homestaker/boot-loader, want %q", h.BootLoader, wantLoader)
	// Such a host marks a boot from its counted entry complete: bless-boot
	// waits for the boot partition (mounted with nofail, so local-fs.target
	// does not), and boot-complete.target needs sshd and the data disk.
	bc := h.BootCounting
	if wantLoader != "" {
		_, mounted := h.FileSystems[disk.BootMountPoint]
		j.check(mounted && slices.Equal(bc.BlessRequiresMountsFor, []string{disk.BootMountPoint}),
			"systemd-bless-boot.service waits for %v (boot partition mounted: %v), want %s", bc.BlessRequiresMountsFor, mounted, disk.BootMountPoint)
		j.check(slices.Equal(bc.CompleteRequires, []string{"sshd.service"}) && slices.Equal(bc.CompleteRequiresMountsFor, []string{disk.DataMountPoint}),
			"boot-complete.target requires %v and the mounts %v, want sshd.service and %s", bc.CompleteRequires, bc.CompleteRequiresMountsFor, disk.DataMountPoint)
	} else {
		j.check(len(bc.BlessRequiresMountsFor)+len(bc.CompleteRequires) == 0, "a host without a boot entry on its data disk sets up boot counting: %+v", bc)
	}
	judgeBoard(j, p, h)

	// Firewall: every peer-to-peer port of both clients, no API port.
	fw := h.Firewall
	j.check(fw.Enable, "the firewall is off")
	for _, c := range []string{e.Execution, e.Consensus} {
		for _, port := range p2pPorts[c].tcp {
			j.check(slices.Contains(fw.AllowedTCPPorts, port), "%s's TCP port %d is not open: %v", c, port, fw.AllowedTCPPorts)
		}
		for _, port := range p2pPorts[c].udp {
			j.check(slices.Contains(fw.AllowedUDPPorts, port), "%s's UDP port %d is not open: %v", c, port, fw.AllowedUDPPorts)
		}
	}
	for _, port := range apiPorts {
		j.check(!slices.Contains(fw.AllowedTCPPorts, port) && !slices.Contains(fw.AllowedUDPPorts, port), "API port %d is open: TCP %v UDP %v", port, fw.AllowedTCPPorts, fw.AllowedUDPPorts)
	}

	// Every Ethereum service: the client from ethereum.nix's package set,
	// a command line systemd reads as intended, state on the data disk.
	want := map[string]bool{el.Module + "-" + net: true, cl.Module + "-" + net: true}
	if e.Validator.Enable {
		want[cl.ValidatorModule+"-"+net] = true
	}
	if e.MevBoost.Enable {
		want["mev-boost-"+net] = true
	}
	for name := range h.Services {
		for _, m := range []string{"geth", "erigon", "reth", "besu", "nethermind", "lighthouse-", "prysm-", "teku-", "nimbus-", "mev-boost"} {
			if strings.HasPrefix(name, m) && !want[name] {
				t.Errorf("%s: unexpected Ethereum service %s", p.Host.Name, name)
			}
		}
	}
	cmd := map[string]argv{}
	for name := range want {
		u, ok := h.Services[name]
		j.check(ok, "service %s is missing", name)
		if !ok {
			continue
		}
		a, err := nodeeval.SplitExec(u.String("ExecStart"))
		j.check(err == nil && len(a) > 0, "%s: ExecStart does not parse: %v", name, err)
		if len(a) == 0 {
			continue
		}
		cmd[name] = a
		j.check(strings.HasPrefix(a[0], "/nix/store/") && strings.Contains(a[0], "-ethereum-nix-"), "%s runs %s, not a package from ethereum.nix's overlay", name, a[0])
		j.check(u.String("DynamicUser") == "true", "%s: DynamicUser is %q", name, u.String("DynamicUser"))
		j.check(u.String("StateDirectory") != "", "%s has no StateDirectory", name)
		j.check(slices.Contains(u.WantedBy, "multi-user.target"), "%s is not started at boot", name)
		for _, pre := range u.Strings("ExecStartPre") {
			_, err := nodeeval.SplitExec(pre)
			j.check(err == nil, "%s: ExecStartPre %q does not parse: %v", name, pre, err)
		}
	}

	// dataDir checks that the client's data folder is its own state
	// directory, on the data disk.
	dataDir := func(unit, flag string) {
		a := cmd[unit]
		if a == nil {
			return
		}
		j.flag(unit, a, flag, "%S/"+h.Services[unit].String("StateDirectory"))
	}
	// credential checks that a secret reaches the client as a systemd
	// credential: the flag names %d/<id>, LoadCredential maps <id> to the
	// sops secret.
	credential := func(unit, flag, secret string) {
		a := cmd[unit]
		if a == nil {
			return
		}
		got, _ := a.value(flag)
		id, ok := strings.CutPrefix(got, "%d/")
		j.check(ok && id != "", "%s: %s is %q, want a systemd credential %%d/…", unit, flag, got)
		creds := h.Services[unit].Strings("LoadCredential")
		j.check(slices.Contains(creds, id+":"+secret), "%s: LoadCredential %v does not hand %s over as %q", unit, creds, secret, id)
	}
	// onlyNetwork checks that no other network is named.
	onlyNetwork := func(unit string, a argv) {
		for _, other := range networks {
			if other == net {
				continue
			}
			for _, w := range a {
				j.check(!strings.Contains(w, other), "%s: names network %s in %q", unit, other, w)
			}
		}
	}

	// Execution client.
	elUnit := el.Module + "-" + net
	if a := cmd[elUnit]; a != nil {
		onlyNetwork(elUnit, a)
		switch el.Name {
		case "geth":
			j.present(elUnit, a, "--"+net)
			j.flag(elUnit, a, "--authrpc.addr", "127.0.0.1")
			j.flag(elUnit, a, "--authrpc.port", "8551")
			credential(elUnit, "--authrpc.jwtsecret", jwtSecretPath)
			dataDir(elUnit, "--datadir")
		case "erigon":
			j.flag(elUnit, a, "--chain", net)
			j.present(elUnit, a, "--externalcl")
			j.flag(elUnit, a, "--authrpc.port", "8551")
			credential(elUnit, "--authrpc.jwtsecret", jwtSecretPath)
			dataDir(elUnit, "--datadir")
		case "reth":
			j.check(len(a) > 1 && a[1] == "node", "%s: not `reth node`: %q", elUnit, []string(a))
			j.flag(elUnit, a, "--chain", net)
			j.flag(elUnit, a, "--authrpc.port", "8551")
			credential(elUnit, "--authrpc.jwtsecret", jwtSecretPath)
			dataDir(elUnit, "--datadir")
		case "besu":
			j.flag(elUnit, a, "--network", net)
			j.flag(elUnit, a, "--engine-rpc-port", "8551")
			credential(elUnit, "--engine-jwt-secret", jwtSecretPath)
			dataDir(elUnit, "--data-path")
		case "nethermind":
			j.flag(elUnit, a, "--config", net)
			j.flag(elUnit, a, "--JsonRpc.EngineHost", "127.0.0.1")
			j.flag(elUnit, a, "--JsonRpc.EnginePort", "8551")
			credential(elUnit, "--JsonRpc.JwtSecretFile", jwtSecretPath)
			dataDir(elUnit, "--datadir")
		default:
			t.Errorf("%s: no judgement for execution client %s", p.Host.Name, el.Name)
		}
	}

	// Consensus client.
	clUnit := cl.Module + "-" + net
	cp := e.CheckpointSyncURL
	if a := cmd[clUnit]; a != nil {
		onlyNetwork(clUnit, a)
		switch cl.Name {
		case "lighthouse":
			j.check(len(a) > 1 && a[1] == "beacon", "%s: not `lighthouse beacon`: %q", clUnit, []string(a))
			j.flag(clUnit, a, "--network", net)
			j.flag(clUnit, a, "--execution-endpoint", engine)
			credential(clUnit, "--execution-jwt", jwtSecretPath)
			dataDir(clUnit, "--datadir")
			if cp != "" {
				j.flag(clUnit, a, "--checkpoint-sync-url", cp)
			} else {
				j.absent(clUnit, a, "--checkpoint-sync-url")
			}
			if e.Validator.Enable {
				j.present(clUnit, a, "--http")
				j.flag(clUnit, a, "--http-address", "127.0.0.1")
			}
			if e.MevBoost.Enable {
				j.flag(clUnit, a, "--builder", mevBoost)
			} else {
				j.absent(clUnit, a, "--builder")
			}
		case "prysm":
			j.present(clUnit, a, "--"+net)
			j.present(clUnit, a, "--accept-terms-of-use")
			j.flag(clUnit, a, "--execution-endpoint", engine)
			credential(clUnit, "--jwt-secret", jwtSecretPath)
			dataDir(clUnit, "--datadir")
			if cp != "" {
				j.flag(clUnit, a, "--checkpoint-sync-url", cp)
				j.flag(clUnit, a, "--genesis-beacon-api-url", cp)
			}
			if e.MevBoost.Enable {
				j.flag(clUnit, a, "--http-mev-relay", mevBoost)
			}
		case "teku":
			j.flag(clUnit, a, "--network", net)
			j.flag(clUnit, a, "--ee-endpoint", engine)
			credential(clUnit, "--ee-jwt-secret-file", jwtSecretPath)
			dataDir(clUnit, "--data-path")
			if cp != "" {
				j.flag(clUnit, a, "--checkpoint-sync-url", cp)
			}
			if e.MevBoost.Enable {
				j.flag(clUnit, a, "--builder-endpoint", mevBoost)
			}
		case "nimbus":
			j.flag(clUnit, a, "--network", net)
			j.flag(clUnit, a, "--el", engine)
			credential(clUnit, "--jwt-secret", jwtSecretPath)
			dataDir(clUnit, "--data-dir")
			// Checkpoint sync: trustedNodeSync before the beacon starts, on
			// the same network and data folder, from the chosen URL.
			var sync argv
			for _, pre := range h.Services[clUnit].Strings("ExecStartPre") {
				if w, _ := nodeeval.SplitExec(pre); len(w) > 1 && w[1] == "trustedNodeSync" {
					sync = w
				}
			}
			if cp != "" {
				j.check(sync != nil, "%s: no trustedNodeSync before the beacon starts", clUnit)
				if sync != nil {
					j.flag(clUnit+" trustedNodeSync", sync, "--trusted-node-url", cp)
					j.flag(clUnit+" trustedNodeSync", sync, "--network", net)
					d, _ := a.value("--data-dir")
					j.flag(clUnit+" trustedNodeSync", sync, "--data-dir", d)
				}
			} else {
				j.check(sync == nil, "%s: trustedNodeSync without a checkpoint URL", clUnit)
			}
			j.absent(clUnit, a, "--external-beacon-api-url")
			if e.Validator.Enable {
				j.present(clUnit, a, "--rest")
			}
			if e.MevBoost.Enable {
				// Nimbus' documented form for its booleans: --flag=true.
				j.flag(clUnit, a, "--payload-builder", "true")
				j.flag(clUnit, a, "--payload-builder-url", mevBoost)
			}
		default:
			t.Errorf("%s: no judgement for consensus client %s", p.Host.Name, cl.Name)
		}
	}

	// Validator client.
	if e.Validator.Enable {
		vcUnit := cl.ValidatorModule + "-" + net
		if a := cmd[vcUnit]; a != nil {
			onlyNetworkExceptGraffiti := a
			if g := e.Validator.Graffiti; g != "" {
				onlyNetworkExceptGraffiti = slices.DeleteFunc(slices.Clone(a), func(w string) bool { return strings.Contains(w, g) })
			}
			onlyNetwork(vcUnit, onlyNetworkExceptGraffiti)
			j.flag(vcUnit, a, "--suggested-fee-recipient", e.Validator.FeeRecipient)
			if g := e.Validator.Graffiti; g != "" {
				// One argument holding exactly the graffiti, whatever it holds.
				j.flag(vcUnit, a, "--graffiti", g)
			} else {
				j.absent(vcUnit, a, "--graffiti")
			}
			switch cl.Name {
			case "lighthouse":
				j.check(len(a) > 1 && a[1] == "validator", "%s: not `lighthouse validator`: %q", vcUnit, []string(a))
				j.flag(vcUnit, a, "--network", net)
				j.flag(vcUnit, a, "--beacon-nodes", beaconREST)
				dataDir(vcUnit, "--datadir")
				if e.MevBoost.Enable {
					j.present(vcUnit, a, "--builder-proposals")
				}
			case "prysm":
				j.present(vcUnit, a, "--"+net)
				j.present(vcUnit, a, "--accept-terms-of-use")
				j.flag(vcUnit, a, "--beacon-rpc-provider", "127.0.0.1:4000")
				dataDir(vcUnit, "--datadir")
				state := "%S/" + h.Services[vcUnit].String("StateDirectory")
				j.flag(vcUnit, a, "--wallet-dir", state+"/wallet")
				credential(vcUnit, "--wallet-password-file", "/run/secrets/prysm-wallet-password")
				j.check(h.Sops.Secrets["prysm-wallet-password"].Path != "", "no sops secret for Prysm's wallet password")
				if e.MevBoost.Enable {
					j.present(vcUnit, a, "--enable-builder")
				}
			case "nimbus":
				j.flag(vcUnit, a, "--beacon-node", beaconREST)
				dataDir(vcUnit, "--data-dir")
				j.absent(vcUnit, a, "--network")
				if e.MevBoost.Enable {
					j.flag(vcUnit, a, "--payload-builder", "true")
				}
			default:
				t.Errorf("%s: no judgement for validator client %s", p.Host.Name, cl.Name)
			}
		}
	}

	// MEV-boost.
	if e.MevBoost.Enable {
		unit := "mev-boost-" + net
		if a := cmd[unit]; a != nil {
			onlyNetwork(unit, a)
			j.present(unit, a, "--"+net)
			j.flag(unit, a, "--addr", "127.0.0.1:18550")
			j.present(unit, a, "--relay-check")
			j.flag(unit, a, "--relays", strings.Join(e.MevBoost.Relays, ","))
			j.check(len(e.MevBoost.Relays) > 0, "no relays")
		}
	}
	return j.n
}

// judgeKeys checks the validator's keys on the node: the import unit runs
// before the validator client as its own user in its own state, reads
// every keystore, the password and the history as systemd credentials from
// sops secrets, and the client's command line carries the doppelganger
// setting.
func judgeKeys(t *testing.T, p plan.Plan, h nodeeval.Host, cat *plan.Catalogue, keys *validator.Keys) int {
	t.Helper()
	j := &judgement{t: t, host: p.Host.Name}
	e := p.Ethereum
	net := string(e.Network)
	importUnit := "homestaker-validator-keys-" + net
	imp, hasImport := h.Services[importUnit]
	if !e.Validator.Enable || keys == nil || len(keys.Keystores) == 0 {
		j.check(!hasImport, "an import unit without keys")
		return j.n
	}
	cl, _ := cat.Client(e.Consensus)
	vcUnit := cl.ValidatorModule + "-" + net
	vc := h.Services[vcUnit]
	vcArgs, _ := nodeeval.SplitExec(vc.String("ExecStart"))

	// Doppelganger protection, on unless the answers turn it off.
	on := e.Validator.DoppelgangerOn()
	switch cl.Name {
	case "lighthouse":
		j.check(argv(vcArgs).count("--enable-doppelganger-protection") == map[bool]int{true: 1, false: 0}[on], "%s: doppelganger %v, command line %q", vcUnit, on, vcArgs)
	case "prysm":
		j.check(argv(vcArgs).count("--enable-doppelganger") == map[bool]int{true: 1, false: 0}[on], "%s: doppelganger %v, command line %q", vcUnit, on, vcArgs)
	case "nimbus":
		off, _ := argv(vcArgs).value("--doppelganger-detection")
		j.check((off == "off") == !on, "%s: doppelganger %v, command line %q", vcUnit, on, vcArgs)
	}

	j.check(slices.Contains(h.SystemPackages, "homestaker-export-slashing-protection"), "no homestaker-export-slashing-protection on the node: %v", h.SystemPackages)
	j.check(hasImport, "no unit imports the validator keys")
	if !hasImport {
		return j.n
	}
	j.check(slices.Contains(imp.WantedBy, vcUnit+".service") && slices.Contains(imp.Before, vcUnit+".service"), "%s does not run before %s: wantedBy %v before %v", importUnit, vcUnit, imp.WantedBy, imp.Before)
	j.check(slices.Contains(vc.Requires, importUnit+".service") && slices.Contains(vc.After, importUnit+".service"), "%s does not require %s: requires %v after %v", vcUnit, importUnit, vc.Requires, vc.After)
	j.check(imp.String("Type") == "oneshot" && imp.String("DynamicUser") == "true", "%s: Type %s DynamicUser %s", importUnit, imp.String("Type"), imp.String("DynamicUser"))
	j.check(imp.String("User") == vc.String("User") && imp.String("StateDirectory") == vc.String("StateDirectory"),
		"%s runs as %s in %s, the validator client as %s in %s", importUnit, imp.String("User"), imp.String("StateDirectory"), vc.String("User"), vc.String("StateDirectory"))

	creds := imp.Strings("LoadCredential")
	want := []string{"password:/run/secrets/validator-password"}
	for _, k := range keys.Keystores {
		want = append(want, "keystore-"+k.Pubkey+":/run/secrets/validator-keystore-"+k.Pubkey)
	}
	if keys.Slashing != nil {
		want = append(want, "slashing-protection:/run/secrets/validator-slashing-protection")
	}
	if cl.Name == "prysm" {
		want = append(want, "wallet-password:/run/secrets/prysm-wallet-password")
	}
	slices.Sort(want)
	got := slices.Clone(creds)
	slices.Sort(got)
	j.check(slices.Equal(got, want), "%s: credentials %v, want %v", importUnit, got, want)
	for _, c := range want {
		name := strings.TrimPrefix(strings.SplitN(c, ":", 2)[1], "/run/secrets/")
		j.check(h.Sops.Secrets[name].Path == "/run/secrets/"+name, "no sops secret %s", name)
	}

	a, err := nodeeval.SplitExec(imp.String("ExecStart"))
	j.check(err == nil && len(a) == 6, "%s: ExecStart %q: %v", importUnit, a, err)
	if len(a) == 6 {
		j.check(strings.HasSuffix(a[1], "-validator-keys.sh"), "%s runs %s", importUnit, a[1])
		j.check(a[2] == cl.Name && a[4] == net, "%s: client %s network %s", importUnit, a[2], a[4])
		j.check(strings.HasSuffix(a[3], "-ethereum-nix-"+cl.Package), "%s: package %s", importUnit, a[3])
		dataFlag := map[string]string{"lighthouse": "--datadir", "prysm": "--datadir", "nimbus": "--data-dir"}[cl.Name]
		d, _ := argv(vcArgs).value(dataFlag)
		j.check(a[5] == d, "%s imports into %s, the validator client reads %s", importUnit, a[5], d)
	}
	return j.n
}
