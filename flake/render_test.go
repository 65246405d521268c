package flake

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/plan"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const testDisko = "{ disko.devices.disk.data = { type = \"disk\"; device = \"/dev/vdb\"; }; }\n"

func examplePlan(t testing.TB, name string) plan.Plan {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "examples", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	c := plan.MustCatalogue()
	p = p.Defaults(c)
	if res := p.Validate(c); !res.OK() {
		t.Fatalf("%s: %v", name, res.Errors)
	}
	return p
}

func input(p plan.Plan) RenderInput {
	return RenderInput{Plan: p, DiskoNix: []byte(testDisko), DataMountPoint: "/var/lib"}
}

var examples = []string{"mainnet-erigon-lighthouse", "hoodi-nethermind-teku-iso", "rpi4-hoodi-geth-nimbus"}

// TestGoldenHosts compares each example's generated default.nix with the
// reviewed copy under testdata/golden (update with -update).
func TestGoldenHosts(t *testing.T) {
	for _, name := range examples {
		t.Run(name, func(t *testing.T) {
			p := examplePlan(t, name)
			got, err := HostNix(p, "/var/lib", true, ValidatorKeys{})
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", name+".nix")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./image -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s; review the change and run go test ./image -update", name, golden)
			}
		})
	}
	flake := filepath.Join("testdata", "golden", "flake.nix")
	if *update {
		os.WriteFile(flake, flakeNix(), 0o644)
	}
	if want, _ := os.ReadFile(flake); !bytes.Equal(flakeNix(), want) {
		t.Errorf("flake.nix differs from %s", flake)
	}
}

func TestGoldenContents(t *testing.T) {
	p := examplePlan(t, "mainnet-erigon-lighthouse")
	got, _ := HostNix(p, "/var/lib", true, ValidatorKeys{})
	for _, want := range []string{
		`services.ethereum.erigon.mainnet`,
		`"authrpc.jwtsecret" = config.sops.secrets.jwt.path;`,
		`execution-jwt = config.sops.secrets.jwt.path;`,
		`checkpoint-sync-url = "https://beaconstate.info";`,
		`builder = "http://127.0.0.1:18550";`,
		`suggested-fee-recipient = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";`,
		`graffiti = "\"homestaker on NixOS\"";`,
		`package = pkgs.ethereum-nix.erigon;`,
		`networking.firewall.allowedTCPPorts = [ 9000 30303 30304 42069 ];`,
		`services.ethereum.mev-boost.mainnet`,
		`@boost-relay.flashbots.net`,
		`time.timeZone = "Europe/Helsinki";`,
		`ssh-ed25519 AAAA`,
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("default.nix lacks %s", want)
		}
	}
	pi := examplePlan(t, "rpi4-hoodi-geth-nimbus")
	got, _ = HostNix(pi, "/var/lib", true, ValidatorKeys{})
	for _, want := range []string{`nixpkgs.hostPlatform = "aarch64-linux";`, `hoodi = true;`, `services.ethereum.nimbus-validator.hoodi`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("pi default.nix lacks %s", want)
		}
	}
	if strings.Contains(string(got), "mev-boost") {
		t.Error("a Raspberry Pi must not get mev-boost")
	}
	if strings.Contains(string(got), "openFirewall") {
		t.Error("openFirewall opens API ports in ethereum.nix; only the peer-to-peer ports may be opened")
	}
}

// TestRenderedNixParses renders every example into one flake and has
// nix-instantiate parse every .nix file in it.
func TestRenderedNixParses(t *testing.T) {
	nixInst := testutil.RequireTool(t, "nix-instantiate")
	dir := t.TempDir()
	for _, name := range examples {
		files, err := Files(input(examplePlan(t, name)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Write(context.Background(), dir, files, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".nix") {
			return err
		}
		n++
		out, err := exec.Command(nixInst, "--parse", path).CombinedOutput()
		if err != nil {
			t.Errorf("nix-instantiate --parse %s: %v\n%s", path, err, out)
		}
		return nil
	})
	if n < 3*3+7 {
		t.Errorf("parsed only %d .nix files", n)
	}
	// network-carry.nix refers to its helpers by relative path: they must
	// sit next to it in the flake.
	for _, f := range []string{"network-carry.nix", "network-carry.sh", "network-carry.jq"} {
		if _, err := os.Stat(filepath.Join(dir, "modules", f)); err != nil {
			t.Errorf("rendered flake lacks modules/%s: %v", f, err)
		}
	}
}

func TestRenderIsDeterministicAndKeepsOtherHosts(t *testing.T) {
	dir := t.TempDir()
	beta := input(examplePlan(t, "mainnet-erigon-lighthouse"))
	files, err := Files(beta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(context.Background(), dir, files, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The user edits local.nix; a second render must keep it and change nothing else.
	local := filepath.Join(dir, "hosts", "beta", "local.nix")
	os.WriteFile(local, []byte("{ ... }: { services.fail2ban.enable = true; }\n"), 0o644)
	// The first nix build wrote flake.lock: it pins nixpkgs and is kept.
	lock := `{"nodes":{"root":{}},"root":"root","version":7}` + "\n"
	os.WriteFile(filepath.Join(dir, "flake.lock"), []byte(lock), 0o644)
	snap := snapshot(t, dir)
	changes, err := Write(context.Background(), dir, files, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Action == Create || c.Action == Update {
			t.Errorf("second render wrote %s (%s)", c.Path, c.Action)
		}
	}
	if after := snapshot(t, dir); !equalSnap(snap, after) {
		t.Error("second render changed files")
	}
	// A second host joins the flake; beta's files are untouched.
	pi, _ := Files(input(examplePlan(t, "rpi4-hoodi-geth-nimbus")))
	if _, err := Write(context.Background(), dir, pi, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, dir)
	for path, content := range snap {
		if path == ManifestPath {
			continue // it gains pi's files
		}
		if after[path] != content {
			t.Errorf("adding host pi changed %s", path)
		}
	}
	if _, ok := after["hosts/pi/default.nix"]; !ok {
		t.Error("host pi was not added")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "flake.lock")); string(got) != lock {
		t.Errorf("flake.lock was not kept: %q", got)
	}
	ignore, _ := os.ReadFile(filepath.Join(dir, ".gitignore"))
	for _, line := range strings.Split(string(ignore), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			if ok, _ := path.Match(line, "flake.lock"); ok {
				t.Errorf(".gitignore pattern %q would keep flake.lock out of git", line)
			}
		}
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := os.ReadFile(path)
		info, _ := d.Info()
		rel, _ := filepath.Rel(dir, path)
		m[filepath.ToSlash(rel)] = string(data) + "|" + info.ModTime().String()
		return nil
	})
	return m
}

func equalSnap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestDryRunDiffWritesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flake")
	files, _ := Files(input(examplePlan(t, "hoodi-nethermind-teku-iso")))
	changes, err := Diff(dir, files, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != len(files) || changes[0].Action != Create {
		t.Errorf("changes = %v", changes)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Error("Diff created the folder")
	}
}

func TestNixStringKnownCases(t *testing.T) {
	cases := map[string]string{
		`plain`:       `"plain"`,
		`a"b`:         `"a\"b"`,
		`back\slash`:  `"back\\slash"`,
		"${x}":        `"\${x}"`,
		"$x $ {":      `"$x $ {"`,
		"line\nbreak": `"line\nbreak"`,
		"tab\there":   `"tab\there"`,
		"ünïcødé ✓":   `"ünïcødé ✓"`,
		"$${":         `"$\${"`,
	}
	for in, want := range cases {
		if got := NixString(in); got != want {
			t.Errorf("NixString(%q) = %s, want %s", in, got, want)
		}
	}
}

// FuzzNixString checks that any string survives a trip through Nix:
// nix-instantiate --eval of the quoted literal gives the same string back.
func FuzzNixString(f *testing.F) {
	nixInst := testutil.RequireTool(f, "nix-instantiate")
	for _, s := range []string{"", "plain", `a"b`, `\`, "${builtins.currentTime}", "$${x}", "\\${x}", "a\nb\r\tc", "ünïcødé ✓ 🚀", "''${x}", "'' ''", "$", "{", "\x7f", "\\\\\"${\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsRune(s, 0) || !utf8Valid(s) {
			t.Skip("Nix strings hold no NUL bytes; the plan refuses invalid UTF-8")
		}
		// Nix compares the literal with the exact bytes read from a file.
		file := filepath.Join(t.TempDir(), "want")
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		expr := NixString(s) + " == builtins.readFile " + NixString(file)
		// The value is on stdout; stderr may hold warnings (as root
		// without a nixbld group, Nix 2.8 warns on every run).
		var stderr strings.Builder
		cmd := exec.Command(nixInst, "--eval", "--expr", expr)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("nix-instantiate --eval %s: %v\n%s%s", expr, err, out, stderr.String())
		}
		if strings.TrimSpace(string(out)) != "true" {
			t.Fatalf("round trip of %q through %s failed: Nix reads a different string", s, NixString(s))
		}
	})
}

func BenchmarkRenderHost(b *testing.B) {
	in := input(examplePlan(b, "mainnet-erigon-lighthouse"))
	dir := b.TempDir()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		files, err := Files(in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Write(context.Background(), dir, files, WriteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
