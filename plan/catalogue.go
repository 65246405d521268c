package plan

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/homestaker/homestaker/assets"
)

// Kind tells execution clients from consensus clients.
type Kind string

// Client kinds.
const (
	Execution Kind = "execution"
	Consensus Kind = "consensus"
)

// Client is one entry of the client catalogue (assets/catalogue.json).
type Client struct {
	Name  string `json:"name"`
	Kind  Kind   `json:"kind"`
	Title string `json:"title"`
	// Module is the ethereum.nix module (services.ethereum.<module>).
	Module string `json:"module"`
	// ValidatorModule is the ethereum.nix validator module pairing with a
	// consensus client; empty when ethereum.nix has none (teku).
	ValidatorModule string `json:"validatorModule,omitempty"`
	// Package is the client's attribute in ethereum.nix's package set
	// (pkgs.ethereum-nix.<package> through its overlay).
	Package string `json:"package"`
	// P2P are the client's default peer-to-peer ports: the only ports a
	// node opens in its firewall.
	P2P           Ports  `json:"p2p"`
	Arch          []Arch `json:"arch"`
	Supermajority bool   `json:"supermajority,omitempty"`
	// MinRAMGiB is the RAM below which other tools refuse to run the client.
	MinRAMGiB int `json:"minRamGiB,omitempty"`
	// DiskGiB is the synced database per network (DiskFor); RAMGiB the
	// typical RAM. AsOf and Source date the mainnet figures, the
	// catalogue's TestnetDisk the testnet ones.
	DiskGiB map[Network]int `json:"diskGiB"`
	RAMGiB  int             `json:"ramGiB"`
	AsOf    string          `json:"asOf"`
	Source  string          `json:"source"`
}

// DiskFor is the client's synced database on network n in GiB, 0 when the
// catalogue has no figure for it.
func (c Client) DiskFor(n Network) int { return c.DiskGiB[n] }

// Ports are TCP and UDP port numbers.
type Ports struct {
	TCP []int `json:"tcp"`
	UDP []int `json:"udp"`
}

// RunsOn reports whether ethereum.nix builds the client for arch.
func (c Client) RunsOn(a Arch) bool {
	for _, x := range c.Arch {
		if x == a {
			return true
		}
	}
	return false
}

// NetworkInfo is what homestaker knows about a network.
type NetworkInfo struct {
	Name                   Network  `json:"-"`
	Title                  string   `json:"title"`
	MinRAMGiB              int      `json:"minRamGiB"`
	ValidatorRAMGiB        int      `json:"validatorRamGiB"`
	MinDiskGiB             int      `json:"minDiskGiB"`
	PermissionedValidators bool     `json:"permissionedValidators,omitempty"`
	AsOf                   string   `json:"asOf"`
	Source                 string   `json:"source"`
	CheckpointSyncURLs     []string `json:"-"`
	Relays                 []Relay  `json:"-"`
	// GenesisForkVersion (deposit data) and GenesisValidatorsRoot
	// (slashing-protection files) identify the network, 0x-prefixed hex.
	GenesisForkVersion    string `json:"-"`
	GenesisValidatorsRoot string `json:"-"`
}

// Relay is a MEV-boost relay as its operator publishes it.
type Relay struct {
	Name   string `json:"name"`
	URL    string `json:"url"`
	Source string `json:"source"`
	AsOf   string `json:"asOf"`
}

// Catalogue is the parsed client catalogue and network table.
type Catalogue struct {
	Clients  []Client
	Networks map[Network]NetworkInfo
	// TestnetDisk dates the testnets' disk figures and says where they
	// come from.
	TestnetDisk struct {
		AsOf   string
		Source string
	}
	MevBoost struct {
		Module  string `json:"module"`
		Package string `json:"package"`
		Arch    []Arch `json:"arch"`
		AsOf    string `json:"asOf"`
		Source  string `json:"source"`
	}
}

// LoadCatalogue parses the embedded catalogue. It fails only if the embedded
// data is broken, which the tests rule out.
func LoadCatalogue() (*Catalogue, error) {
	var raw struct {
		TestnetDiskAsOf   string                  `json:"testnetDiskAsOf"`
		TestnetDiskSource string                  `json:"testnetDiskSource"`
		Clients           []Client                `json:"clients"`
		MevBoost          json.RawMessage         `json:"mevBoost"`
		Networks          map[Network]NetworkInfo `json:"networks"`
	}
	if err := json.Unmarshal(assets.Catalogue, &raw); err != nil {
		return nil, fmt.Errorf("embedded catalogue.json: %w", err)
	}
	var nets struct {
		Networks map[Network]struct {
			CheckpointSyncURLs    []string `json:"checkpointSyncUrls"`
			Relays                []Relay  `json:"relays"`
			GenesisForkVersion    string   `json:"genesisForkVersion"`
			GenesisValidatorsRoot string   `json:"genesisValidatorsRoot"`
		} `json:"networks"`
	}
	if err := json.Unmarshal(assets.Networks, &nets); err != nil {
		return nil, fmt.Errorf("embedded networks.json: %w", err)
	}
	c := &Catalogue{Clients: raw.Clients, Networks: map[Network]NetworkInfo{}}
	c.TestnetDisk.AsOf, c.TestnetDisk.Source = raw.TestnetDiskAsOf, raw.TestnetDiskSource
	if err := json.Unmarshal(raw.MevBoost, &c.MevBoost); err != nil {
		return nil, fmt.Errorf("embedded catalogue.json mevBoost: %w", err)
	}
	for name, info := range raw.Networks {
		info.Name = name
		n := nets.Networks[name]
		info.CheckpointSyncURLs = n.CheckpointSyncURLs
		info.Relays = n.Relays
		info.GenesisForkVersion = n.GenesisForkVersion
		info.GenesisValidatorsRoot = n.GenesisValidatorsRoot
		c.Networks[name] = info
	}
	return c, nil
}

// MustCatalogue is LoadCatalogue for callers that cannot recover from broken
// embedded data; the package tests guarantee it parses.
func MustCatalogue() *Catalogue {
	c, err := LoadCatalogue()
	if err != nil {
		panic(err)
	}
	return c
}

// Client returns the named client.
func (c *Catalogue) Client(name string) (Client, bool) {
	for _, cl := range c.Clients {
		if cl.Name == name {
			return cl, true
		}
	}
	return Client{}, false
}

// ClientsFor lists the clients of a kind that run on arch, in catalogue order.
func (c *Catalogue) ClientsFor(kind Kind, arch Arch) []Client {
	var out []Client
	for _, cl := range c.Clients {
		if cl.Kind == kind && cl.RunsOn(arch) {
			out = append(out, cl)
		}
	}
	return out
}

// Names lists the client names of a kind (all architectures).
func (c *Catalogue) Names(kind Kind) []string {
	var out []string
	for _, cl := range c.Clients {
		if cl.Kind == kind {
			out = append(out, cl.Name)
		}
	}
	return out
}

// MevBoostRunsOn reports whether ethereum.nix packages mev-boost for arch.
func (c *Catalogue) MevBoostRunsOn(a Arch) bool {
	for _, x := range c.MevBoost.Arch {
		if x == a {
			return true
		}
	}
	return false
}

// DiskAsOf is the date of the disk figures for network n.
func (c *Catalogue) DiskAsOf(cl Client, n Network) string {
	if n == Mainnet {
		return cl.AsOf
	}
	return c.TestnetDisk.AsOf
}

// NetworkNames lists the offered networks, mainnet first.
func (c *Catalogue) NetworkNames() []Network {
	out := make([]Network, 0, len(c.Networks))
	for n := range c.Networks {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i] == Mainnet || out[j] == Mainnet {
			return out[i] == Mainnet
		}
		return out[i] < out[j]
	})
	return out
}
