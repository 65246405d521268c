package flake

import (
	"github.com/homestaker/homestaker/plan"
)

// Local endpoints the clients use to reach each other on the node. Every
// API listens on 127.0.0.1 only; the firewall opens the peer-to-peer ports
// and nothing else.
const (
	engineURL     = "http://127.0.0.1:8551"
	beaconRESTURL = "http://127.0.0.1:5052"
	prysmRPC      = "127.0.0.1:4000"
	mevBoostURL   = "http://127.0.0.1:18550"
	mevBoostAddr  = "127.0.0.1:18550"
	jwtPath       = nixExpr("config.sops.secrets.jwt.path")
)

// Secrets a host's sops file holds besides what every host has.
const (
	// SecretJWT is the engine API secret shared by the execution and
	// consensus clients.
	SecretJWT = "jwt"
	// SecretPrysmWallet is the password of Prysm's validator wallet.
	SecretPrysmWallet = "prysm-wallet-password"
)

// Secrets of the validator's keys (modules/validator-keys.nix declares them).
const (
	SecretValidatorPassword = "validator-password"
	SecretSlashing          = "validator-slashing-protection"
)

// SecretKeystore is the secret holding the keystore of a public key
// (0x-prefixed, lower case).
func SecretKeystore(pubkey string) string { return "validator-keystore-" + pubkey }

// ValidatorKeys is what the flake says of the validator's keys: which
// keystores secrets.yaml holds and whether it has a slashing history. The
// keys themselves are only in secrets.yaml, encrypted.
type ValidatorKeys struct {
	Pubkeys            []string
	SlashingProtection bool
}

// SecretNames lists the secrets hosts/<name>/secrets.yaml holds for p and
// its validator keys: the names default.nix and its modules declare under
// sops.secrets.
func SecretNames(p plan.Plan, keys ValidatorKeys) []string {
	names := []string{SecretJWT}
	if prysmValidator(p) {
		names = append(names, SecretPrysmWallet)
	}
	if p.Ethereum.Validator.Enable && len(keys.Pubkeys) > 0 {
		names = append(names, SecretValidatorPassword)
		for _, pk := range keys.Pubkeys {
			names = append(names, SecretKeystore(pk))
		}
		if keys.SlashingProtection {
			names = append(names, SecretSlashing)
		}
	}
	return names
}

func prysmValidator(p plan.Plan) bool {
	return p.Ethereum.Validator.Enable && p.Ethereum.Consensus == "prysm"
}

// service is one ethereum.nix service instance,
// services.ethereum.<module>.<network>. Its settings are the client's own
// flags: ethereum.nix turns them into the ExecStart line.
type service struct {
	comment   string
	module    string
	pkg       string
	settings  attrs
	extraArgs []string
	// notes are comment lines written above the settings.
	notes []string
}

// arg is a setting's value as it must appear in ExecStart: quoted for
// systemd when it holds anything but plain flag, URL or address characters.
func arg(s string) string { return SystemdExecArg(s) }

func args(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = arg(x)
	}
	return out
}

// networkFlag is the boolean setting that selects the network in the
// modules that take one (geth, prysm, mev-boost): `hoodi = true;` becomes
// `--hoodi`.
func networkFlag(n plan.Network) attr { return attr{string(n), true} }

// executionService returns the execution client's settings: the network,
// and the engine API on 127.0.0.1 secured with the JWT (ethereum.nix hands
// the file to the service as a systemd credential).
func executionService(p plan.Plan, c plan.Client) service {
	n := p.Ethereum.Network
	net := string(n)
	s := service{comment: c.Title + ": the execution client", module: c.Module, pkg: c.Package}
	switch c.Name {
	case "geth":
		s.settings = attrs{networkFlag(n), {"authrpc.addr", "127.0.0.1"}, {"authrpc.port", 8551}, {"authrpc.jwtsecret", jwtPath}}
	case "erigon":
		// Erigon runs its own consensus layer (Caplin) unless told that an
		// external one drives it.
		s.settings = attrs{{"chain", net}, {"externalcl", true}, {"authrpc.addr", "127.0.0.1"}, {"authrpc.port", 8551}, {"authrpc.jwtsecret", jwtPath}}
	case "reth":
		s.settings = attrs{{"chain", net}, {"authrpc.addr", "127.0.0.1"}, {"authrpc.port", 8551}, {"authrpc.jwtsecret", jwtPath}}
	case "besu":
		s.settings = attrs{{"network", net}, {"engine-rpc-port", 8551}, {"engine-host-allowlist", "localhost,127.0.0.1"}, {"engine-jwt-secret", jwtPath}}
	case "nethermind":
		s.settings = attrs{{"config", net}, {"JsonRpc.EngineHost", "127.0.0.1"}, {"JsonRpc.EnginePort", 8551}, {"JsonRpc.JwtSecretFile", jwtPath}}
	}
	return s
}

// beaconService returns the consensus client's settings: the network, the
// execution endpoint with the JWT, checkpoint sync, the REST API for the
// validator client, and the builder (MEV-boost) endpoint when enabled.
func beaconService(p plan.Plan, c plan.Client) service {
	e := p.Ethereum
	n := e.Network
	net := string(n)
	mev := e.MevBoost.Enable
	cp := e.CheckpointSyncURL
	s := service{comment: c.Title + ": the consensus (beacon) client", module: c.Module, pkg: c.Package}
	switch c.Name {
	case "lighthouse":
		// ethereum.nix's lighthouse-beacon passes a `network` setting twice
		// (Lighthouse then refuses to start) and knows no --hoodi flag, so the
		// network goes in extraArgs.
		s.notes = []string{"The network is an extra argument: ethereum.nix would pass a `network` setting twice."}
		s.extraArgs = []string{"--network", net}
		s.settings = attrs{{"execution-endpoint", engineURL}, {"execution-jwt", jwtPath}}
		if cp != "" {
			s.settings = append(s.settings, attr{"checkpoint-sync-url", arg(cp)})
		}
		if e.Validator.Enable {
			s.settings = append(s.settings, attr{"http", true}, attr{"http-address", "127.0.0.1"}, attr{"http-port", 5052})
		}
		if mev {
			s.settings = append(s.settings, attr{"builder", mevBoostURL})
		}
	case "prysm":
		s.settings = attrs{networkFlag(n), {"execution-endpoint", engineURL}, {"jwt-secret", jwtPath}}
		if cp != "" {
			s.settings = append(s.settings, attr{"checkpoint-sync-url", arg(cp)}, attr{"genesis-beacon-api-url", arg(cp)})
		}
		if mev {
			s.settings = append(s.settings, attr{"http-mev-relay", mevBoostURL})
		}
	case "teku":
		s.settings = attrs{{"network", net}, {"ee-endpoint", engineURL}, {"ee-jwt-secret-file", jwtPath}}
		if cp != "" {
			s.settings = append(s.settings, attr{"checkpoint-sync-url", arg(cp)})
		}
		if mev {
			s.settings = append(s.settings, attr{"builder-endpoint", mevBoostURL})
		}
	case "nimbus":
		s.settings = attrs{{"network", net}, {"el", engineURL}, {"jwt-secret", jwtPath}}
		if cp != "" {
			// ethereum.nix runs `nimbus_beacon_node trustedNodeSync` with this
			// URL before the beacon starts on an empty database.
			s.settings = append(s.settings, attr{"trusted-node-url", arg(cp)})
		}
		if e.Validator.Enable {
			s.settings = append(s.settings, attr{"rest", true}, attr{"rest-address", "127.0.0.1"}, attr{"rest-port", 5052})
		}
		if mev {
			s.settings = append(s.settings, attr{"payload-builder", "true"}, attr{"payload-builder-url", mevBoostURL})
		}
	}
	return s
}

// validatorService returns the validator client paired with the consensus
// client: where the beacon node is, the fee recipient, the graffiti, and
// whether to propose builder blocks.
func validatorService(p plan.Plan, c plan.Client) service {
	e := p.Ethereum
	v := e.Validator
	n := e.Network
	net := string(n)
	mev := e.MevBoost.Enable
	s := service{comment: c.Title + ": the validator client (import your keys before it can attest)", module: c.ValidatorModule, pkg: c.Package}
	switch c.Name {
	case "lighthouse":
		s.settings = attrs{{"network", net}, {"beacon-nodes", []string{beaconRESTURL}}, {"suggested-fee-recipient", v.FeeRecipient}}
		if mev {
			s.settings = append(s.settings, attr{"builder-proposals", true})
		}
		if v.DoppelgangerOn() {
			s.settings = append(s.settings, attr{"enable-doppelganger-protection", true})
		}
	case "prysm":
		// The wallet lives in the validator's own state directory on the data
		// disk (ethereum.nix would point --datadir at the beacon's, which the
		// validator cannot write), its password comes from sops.
		state := "%S/prysm-validator-" + net
		s.settings = attrs{networkFlag(n), {"datadir", state}, {"wallet-dir", state + "/wallet"}, {"wallet-password-file", "%d/wallet-password"},
			{"beacon-rpc-provider", prysmRPC}, {"suggested-fee-recipient", v.FeeRecipient}}
		if mev {
			s.settings = append(s.settings, attr{"enable-builder", true})
		}
		if v.DoppelgangerOn() {
			s.settings = append(s.settings, attr{"enable-doppelganger", true})
		}
	case "nimbus":
		s.settings = attrs{{"beacon-node", beaconRESTURL}, {"suggested-fee-recipient", v.FeeRecipient}}
		if mev {
			s.settings = append(s.settings, attr{"payload-builder", "true"})
		}
		// Nimbus checks for doppelgangers unless told not to; ethereum.nix
		// drops false settings, so turning it off is an extra argument.
		if !v.DoppelgangerOn() {
			s.extraArgs = []string{"--doppelganger-detection=off"}
		}
	}
	if v.Graffiti != "" {
		s.settings = append(s.settings, attr{"graffiti", arg(v.Graffiti)})
	}
	return s
}

// mevBoostService returns mev-boost's settings: the network, where it
// listens, and the relays.
func mevBoostService(p plan.Plan, module, pkg string) service {
	return service{
		comment: "MEV-boost: asks the relays below for blocks when this node proposes",
		module:  module,
		pkg:     pkg,
		settings: attrs{
			networkFlag(p.Ethereum.Network),
			{"addr", mevBoostAddr},
			{"relay-check", true},
			{"relays", args(p.Ethereum.MevBoost.Relays)},
		},
	}
}
