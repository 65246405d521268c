package image

import (
	"github.com/homestaker/homestaker/plan"
)

// Local endpoints the clients use to reach each other on the node.
const (
	engineURL   = "http://127.0.0.1:8551"
	mevBoostURL = "http://127.0.0.1:18550"
	mevBoostArg = "127.0.0.1:18550"
	jwtPath     = nixExpr("config.sops.secrets.jwt.path")
)

// service is one ethereum.nix service instance:
// services.ethereum.<module>.<network>.
type service struct {
	comment  string
	module   string
	firewall bool
	settings attrs
}

// executionService returns the execution client's settings: the network,
// and the engine API secured with the JWT.
func executionService(p plan.Plan, c plan.Client) service {
	net := string(p.Ethereum.Network)
	s := service{comment: c.Title + ": the execution client", module: c.Module, firewall: true}
	switch c.Name {
	case "geth":
		if p.Ethereum.Network != plan.Mainnet {
			s.settings = append(s.settings, attr{net, true})
		}
		s.settings = append(s.settings, attr{"authrpc.jwtsecret", jwtPath})
	case "erigon":
		s.settings = attrs{{"chain", net}, {"externalcl", true}, {"authrpc.jwtsecret", jwtPath}}
	case "reth":
		s.settings = attrs{{"chain", net}, {"authrpc.jwtsecret", jwtPath}}
	case "besu":
		s.settings = attrs{{"network", net}, {"engine-rpc-port", 8551}, {"engine-jwt-secret", jwtPath}}
	case "nethermind":
		s.settings = attrs{{"config", net}, {"JsonRpc.EngineHost", "127.0.0.1"}, {"JsonRpc.EnginePort", 8551}, {"JsonRpc.JwtSecretFile", jwtPath}}
	}
	return s
}

// beaconService returns the consensus client's settings: the network, the
// execution endpoint with the JWT, checkpoint sync, and the builder
// (MEV-boost) endpoint when enabled.
func beaconService(p plan.Plan, c plan.Client) service {
	e := p.Ethereum
	net := string(e.Network)
	mev := e.MevBoost.Enable
	s := service{comment: c.Title + ": the consensus (beacon) client", module: c.Module, firewall: true}
	switch c.Name {
	case "lighthouse":
		s.settings = attrs{{"network", net}, {"execution-endpoint", engineURL}, {"execution-jwt", jwtPath}}
		if e.CheckpointSyncURL != "" {
			s.settings = append(s.settings, attr{"checkpoint-sync-url", e.CheckpointSyncURL})
		}
		if e.Validator.Enable {
			s.settings = append(s.settings, attr{"http", true})
		}
		if mev {
			s.settings = append(s.settings, attr{"builder", mevBoostURL})
		}
	case "prysm":
		s.settings = attrs{{net, true}, {"accept-terms-of-use", true}, {"execution-endpoint", engineURL}, {"jwt-secret", jwtPath}}
		if e.CheckpointSyncURL != "" {
			s.settings = append(s.settings, attr{"checkpoint-sync-url", e.CheckpointSyncURL}, attr{"genesis-beacon-api-url", e.CheckpointSyncURL})
		}
		if mev {
			s.settings = append(s.settings, attr{"http-mev-relay", mevBoostURL})
		}
	case "teku":
		s.settings = attrs{{"network", net}, {"ee-endpoint", engineURL}, {"ee-jwt-secret-file", jwtPath}}
		if e.CheckpointSyncURL != "" {
			s.settings = append(s.settings, attr{"checkpoint-sync-url", e.CheckpointSyncURL})
		}
		if mev {
			s.settings = append(s.settings, attr{"builder-endpoint", mevBoostURL})
		}
	case "nimbus":
		s.settings = attrs{{"network", net}, {"el", engineURL}, {"jwt-secret", jwtPath}}
		if e.CheckpointSyncURL != "" {
			s.settings = append(s.settings, attr{"external-beacon-api-url", e.CheckpointSyncURL})
		}
		if e.Validator.Enable {
			s.settings = append(s.settings, attr{"rest", true})
		}
		if mev {
			s.settings = append(s.settings, attr{"payload-builder", true}, attr{"payload-builder-url", mevBoostURL})
		}
	}
	return s
}

// validatorService returns the validator client paired with the consensus
// client: where the beacon node is, the fee recipient, graffiti, and
// whether to propose builder blocks.
func validatorService(p plan.Plan, c plan.Client) service {
	e := p.Ethereum
	v := e.Validator
	net := string(e.Network)
	mev := e.MevBoost.Enable
	s := service{comment: c.Title + ": the validator client (import your keys before it can attest)", module: c.ValidatorModule}
	switch c.Name {
	case "lighthouse":
		s.settings = attrs{{"network", net}, {"beacon-nodes", []string{"http://127.0.0.1:5052"}}, {"suggested-fee-recipient", v.FeeRecipient}}
		if mev {
			s.settings = append(s.settings, attr{"builder-proposals", true})
		}
	case "prysm":
		s.settings = attrs{{net, true}, {"accept-terms-of-use", true}, {"beacon-rpc-provider", "127.0.0.1:4000"}, {"suggested-fee-recipient", v.FeeRecipient}}
		if mev {
			s.settings = append(s.settings, attr{"enable-builder", true})
		}
	case "nimbus":
		s.settings = attrs{{"beacon-node", "http://127.0.0.1:5052"}, {"suggested-fee-recipient", v.FeeRecipient}}
		if mev {
			s.settings = append(s.settings, attr{"payload-builder", true})
		}
	}
	if v.Graffiti != "" {
		s.settings = append(s.settings, attr{"graffiti", v.Graffiti})
	}
	return s
}

// mevBoostService returns mev-boost's settings: the network and the relays.
func mevBoostService(p plan.Plan, module string) service {
	net := string(p.Ethereum.Network)
	return service{
		comment: "MEV-boost: asks the relays below for blocks when this node proposes",
		module:  module,
		settings: attrs{
			{net, true},
			{"addr", mevBoostArg},
			{"relay-check", true},
			{"relays", p.Ethereum.MevBoost.Relays},
		},
	}
}
