package nodeeval_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homestaker/homestaker/internal/nodeeval"
	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/steps"
	"github.com/homestaker/homestaker/validator"
)

// The evaluation tier: every combination the answers allow, rendered by the
// real renderer and evaluated against the real upstream modules, judged per
// client from the systemd units NixOS would write.

// requireSources returns the sources folder, or skips: CI has no copy of the
// upstream sources and no network, so this is the one prerequisite whose
// absence is a skip there too. A folder that is given but wrong fails.
func requireSources(t *testing.T) (sources, nixInstantiate string) {
	t.Helper()
	dir := os.Getenv(nodeeval.SourcesEnv)
	if dir == "" {
		t.Skipf("skipping the evaluation tier: the upstream NixOS module sources are not here; %s", nodeeval.SourcesHelp())
	}
	if err := nodeeval.CheckSources(dir); err != nil {
		t.Fatalf("%s=%s: %v", nodeeval.SourcesEnv, dir, err)
	}
	return dir, testutil.RequireTool(t, "nix-instantiate")
}

// Graffiti that break a command line that is joined without quoting.
var graffiti = []string{
	"home staked",
	`say "gm" & 'hi'`,
	"$HOME ${USER} 100% \\o/",
	"Grüße aus Köln ⚡",
	"a;b #c",
	"x -- --network sepolia",
	"plain",
}

const feeRecipient = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"

// combination is one set of answers.
type combination struct {
	arch          plan.Arch
	board         plan.Board
	format        plan.Format
	network       plan.Network
	el, cl        string
	validator     bool
	mev           bool
	graffiti      string
	checkpointURL string
	// keys: how many of the test keystores the validator gets; slashing:
	// with a slashing-protection history; noDoppelganger: protection off.
	keys           int
	slashing       bool
	noDoppelganger bool
}

func (c combination) name(i int) string {
	return fmt.Sprintf("h%03d-%s-%s", i, c.el, c.cl)
}

// combinations lists every combination the catalogue allows: each execution
// and consensus client on each architecture it runs on, each network,
// validator on and off (where the consensus client has one), MEV-boost on and
// off (where it runs), with graffiti, boards, formats and checkpoint URLs
// taking turns.
func combinations(t *testing.T, cat *plan.Catalogue) []combination {
	var out []combination
	g := 0
	for _, arch := range []plan.Arch{plan.ArchX86_64, plan.ArchAarch64} {
		for _, el := range cat.Clients {
			if el.Kind != plan.Execution || !el.RunsOn(arch) {
				continue
			}
			for _, cl := range cat.Clients {
				if cl.Kind != plan.Consensus || !cl.RunsOn(arch) {
					continue
				}
				for _, net := range []plan.Network{plan.Mainnet, plan.Hoodi, plan.Sepolia} {
					for _, val := range []bool{false, true} {
						if val && cl.ValidatorModule == "" {
							continue
						}
						for _, mev := range []bool{false, true} {
							if mev && !cat.MevBoostRunsOn(arch) {
								continue
							}
							c := combination{arch: arch, board: plan.BoardGeneric, format: plan.FormatKexec, network: net, el: el.Name, cl: cl.Name, validator: val, mev: mev}
							switch {
							case arch == plan.ArchAarch64 && g%2 == 0:
								// A Pi boots its SD card, or a kexec from
								// a Linux already on it.
								c.board, c.format = plan.BoardRPi4, plan.FormatSD
								if g%4 == 0 {
									c.format = plan.FormatKexec
								}
							case arch == plan.ArchX86_64 && g%3 == 0:
								c.format = plan.FormatISO
							}
							if val {
								c.graffiti = graffiti[g%len(graffiti)]
								c.keys = g % 4 // 0 to 3 keys
								c.slashing = c.keys > 0 && g%2 == 0 && cl.Name != "prysm"
								c.noDoppelganger = g%5 == 0
							}
							if g%4 == 1 {
								c.checkpointURL = "-" // none
							}
							g++
							out = append(out, c)
						}
					}
				}
			}
		}
	}
	return out
}

func (c combination) plan(t *testing.T, name string, cat *plan.Catalogue) plan.Plan {
	t.Helper()
	p := plan.Plan{
		Version: plan.CurrentVersion,
		Host:    plan.Host{Name: name, Timezone: "Europe/Berlin", Arch: c.arch, Board: c.board, Format: c.format},
		Ethereum: plan.Ethereum{
			Network: c.network, Execution: c.el, Consensus: c.cl,
			Validator: plan.Validator{Enable: c.validator},
			MevBoost:  plan.MevBoost{Enable: c.mev},
		},
		Disk: plan.Disk{Device: "/dev/disk/by-id/nvme-TEST_" + name, Filesystem: plan.Ext4},
		SSH: plan.SSH{AuthorizedKeys: []string{
			"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIrAWAe8Eu8oR0nqj8sN7aHINtNpPHK2dZ4dS1IZqosR staker@laptop"}},
		Secrets: plan.Secrets{AdminRecipients: []string{"age1lu297lxnaakau0jqxq6h66eq37vavm5223ug648hh7vzp6kj8ujqh2ycnv"}},
	}
	if c.validator {
		p.Ethereum.Validator.FeeRecipient = feeRecipient
		p.Ethereum.Validator.Graffiti = c.graffiti
		if c.noDoppelganger {
			off := false
			p.Ethereum.Validator.Doppelganger = &off
		}
		if c.keys > 0 {
			dir, _ := filepath.Abs("../../validator/testdata/keys")
			p.Ethereum.Validator.KeystoreDir = filepath.Join(dir, "validator_keys")
			p.Ethereum.Validator.PasswordFile = filepath.Join(dir, "password.txt")
			if c.slashing {
				p.Ethereum.Validator.SlashingProtection = filepath.Join(dir, "slashing-protection.json")
			}
		}
	}
	p = p.Defaults(cat)
	if c.checkpointURL == "-" {
		p.Ethereum.CheckpointSyncURL = ""
	}
	if r := p.Validate(cat); !r.OK() {
		t.Fatalf("%s: the combination is not valid answers: %v", name, r.Errors)
	}
	return p
}

// testKeys are validator keys made from the test keystores in
// validator/testdata/keys (made by an independent implementation): the
// first n, with the slashing history when asked.
func testKeys(t *testing.T, n int, slashing bool) *validator.Keys {
	t.Helper()
	paths, _ := filepath.Glob("../../validator/testdata/keys/validator_keys/keystore-*.json")
	if len(paths) < n {
		t.Fatalf("only %d test keystores", len(paths))
	}
	keys := &validator.Keys{}
	for _, path := range paths[:n] {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		k, err := validator.ParseKeystore(data)
		if err != nil {
			t.Fatal(err)
		}
		keys.Keystores = append(keys.Keystores, validator.KeystoreFile{Path: path, Pubkey: "0x" + k.Pubkey, Data: data})
	}
	if slashing {
		data, err := os.ReadFile("../../validator/testdata/keys/slashing-protection.json")
		if err != nil {
			t.Fatal(err)
		}
		keys.Slashing = data
	}
	return keys
}

// render writes every plan into one flake (one host folder each) and returns
// the plans as written (with their host keys). keys gives a host's
// validator keys, already checked (nil: none).
func render(t *testing.T, out string, plans []plan.Plan, keys map[string]*validator.Keys) map[string]plan.Plan {
	t.Helper()
	private := t.TempDir()
	written := map[string]plan.Plan{}
	for _, p := range plans {
		k := keys[p.Host.Name]
		if k == nil {
			k = &validator.Keys{}
		}
		res, err := steps.Flake(context.Background(), steps.FlakeRequest{Plan: p, Out: out, Private: private, Keys: k})
		if err != nil {
			t.Fatalf("render %s: %v", p.Host.Name, err)
		}
		written[p.Host.Name] = res.Plan
	}
	return written
}

func evaluate(t *testing.T, flake string) map[string]nodeeval.Host {
	t.Helper()
	sources, nix := requireSources(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	hosts, err := nodeeval.Evaluate(ctx, nix, flake, sources)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("evaluated %d hosts in %s", len(hosts), time.Since(start).Round(time.Millisecond))
	return hosts
}

// TestEveryCombinationEvaluates renders every allowed combination and judges
// each host's services, firewall, mounts and secrets.
func TestEveryCombinationEvaluates(t *testing.T) {
	requireSources(t)
	cat := plan.MustCatalogue()
	combos := combinations(t, cat)
	var plans []plan.Plan
	keys := map[string]*validator.Keys{}
	for i, c := range combos {
		p := c.plan(t, c.name(i), cat)
		plans = append(plans, p)
		keys[p.Host.Name] = testKeys(t, c.keys, c.slashing)
	}
	flake := t.TempDir()
	written := render(t, flake, plans, keys)
	hosts := evaluate(t, flake)
	if len(hosts) != len(plans) {
		t.Fatalf("evaluated %d hosts, rendered %d", len(hosts), len(plans))
	}
	checks := 0
	for _, p := range plans {
		h, ok := hosts[p.Host.Name]
		if !ok {
			t.Errorf("%s: not in the flake's nixosConfigurations", p.Host.Name)
			continue
		}
		checks += judge(t, written[p.Host.Name], h, cat)
		checks += judgeKeys(t, written[p.Host.Name], h, cat, keys[p.Host.Name])
		checks += judgeSecretsFile(t, flake, p.Host.Name, h)
	}
	t.Logf("%d combinations, %d assertions", len(plans), checks)
}

// TestExamplesEvaluate renders the answers files in examples/ as a user
// would (homestaker render's own step) and judges them.
func TestExamplesEvaluate(t *testing.T) {
	requireSources(t)
	cat := plan.MustCatalogue()
	paths, err := filepath.Glob("../../examples/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	var plans []plan.Plan
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		p, err := plan.Decode(data)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		p = p.Defaults(cat)
		if r := p.Validate(cat); !r.OK() {
			t.Fatalf("%s: %v", path, r.Errors)
		}
		plans = append(plans, p)
	}
	flake := t.TempDir()
	written := render(t, flake, plans, nil)
	hosts := evaluate(t, flake)
	checks := 0
	for _, p := range plans {
		checks += judge(t, written[p.Host.Name], hosts[p.Host.Name], cat)
	}
	t.Logf("%d examples, %d assertions", len(plans), checks)
}

// TestBrokenHostFailsEvaluation makes sure the tier can fail: a host whose
// local.nix sets an option no module declares must not evaluate.
func TestBrokenHostFailsEvaluation(t *testing.T) {
	requireSources(t)
	cat := plan.MustCatalogue()
	c := combination{arch: plan.ArchX86_64, board: plan.BoardGeneric, format: plan.FormatKexec, network: plan.Hoodi, el: "geth", cl: "lighthouse"}
	p := c.plan(t, "broken", cat)
	flake := t.TempDir()
	render(t, flake, []plan.Plan{p}, nil)
	local := filepath.Join(flake, "hosts", "broken", "local.nix")
	if err := os.WriteFile(local, []byte("{ ... }: { services.ethereum.lighthouse-beacon.hoodi.no-such-option = true; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sources, nix := requireSources(t)
	_, err := nodeeval.Evaluate(context.Background(), nix, flake, sources)
	if err == nil || !strings.Contains(err.Error(), "no-such-option") {
		t.Fatalf("a host with an undeclared option evaluated, or the error does not name it: %v", err)
	}
}

// ports every client needs open, from its own documentation; the
// catalogue's p2p figures must agree.
var p2pPorts = map[string]struct{ tcp, udp []int }{
	"geth":       {[]int{30303}, []int{30303}},
	"nethermind": {[]int{30303}, []int{30303}},
	"besu":       {[]int{30303}, []int{30303}},
	"erigon":     {[]int{30303, 30304, 42069}, []int{30303, 30304, 42069}},
	"reth":       {[]int{30303}, []int{30303, 9200}}, // discv4 and discv5
	"lighthouse": {[]int{9000}, []int{9000, 9001}},
	"prysm":      {[]int{13000}, []int{12000, 13000}},
	"teku":       {[]int{9000}, []int{9000}},
	"nimbus":     {[]int{9000}, []int{9000}},
}

// API ports that must never be open.
var apiPorts = []int{8545, 8546, 8551, 8080, 8081, 3500, 4000, 5051, 5052, 5053, 5054, 5062, 5064, 6060, 7000, 7500, 9090, 18550}

// judgeSecretsFile checks that every secret the host declares is in its
// sops file (sops keeps the keys in the clear), so sops-nix finds it.
func judgeSecretsFile(t *testing.T, flake, name string, h nodeeval.Host) int {
	t.Helper()
	path := filepath.Join(flake, "hosts", name, "secrets.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for secret, s := range h.Sops.Secrets {
		n++
		if !strings.Contains(string(data), "\n"+secret+": ENC[AES256_GCM,") && !strings.HasPrefix(string(data), secret+": ENC[AES256_GCM,") {
			t.Errorf("%s: sops.secrets.%s is declared but %s has no such value", name, secret, path)
		}
		if s.SopsFile != path {
			if real, err := filepath.EvalSymlinks(path); err != nil || real != s.SopsFile {
				t.Errorf("%s: sops.secrets.%s is read from %s, want %s", name, secret, s.SopsFile, path)
			}
		}
	}
	return n
}
