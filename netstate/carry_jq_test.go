package netstate

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/internal/testutil"
)

// The node turns the carry-over file into systemd-networkd files with these
// two files of its network-carry.nix module; the tests run them for real.
var (
	carryScript = filepath.Join("..", "assets", "nix", "modules", "network-carry.sh")
	carryFilter = filepath.Join("..", "assets", "nix", "modules", "network-carry.jq")
)

// runCarry runs network-carry.sh as the node's unit does and returns the
// files it wrote, by name.
func runCarry(t *testing.T, carry []byte, out string) (map[string]string, string, error) {
	t.Helper()
	bash := testutil.RequireTool(t, "bash")
	jq := testutil.RequireTool(t, "jq")
	in := filepath.Join(t.TempDir(), "network.json")
	if err := os.WriteFile(in, carry, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bash, carryScript, jq, carryFilter, in, out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	files := map[string]string{}
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		b, rerr := os.ReadFile(filepath.Join(out, e.Name()))
		if rerr != nil {
			t.Fatal(rerr)
		}
		files[e.Name()] = string(b)
	}
	return files, stderr.String(), err
}

// TestNetworkdGolden turns each machine's carry-over file into networkd
// files and compares them with testdata/<machine>/networkd (update with -update).
func TestNetworkdGolden(t *testing.T) {
	for _, m := range machines {
		t.Run(m, func(t *testing.T) {
			carry, err := readMachine(t, m).CarryJSON()
			if err != nil {
				t.Fatal(err)
			}
			files, stderr, err := runCarry(t, carry, t.TempDir())
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			goldenDir := filepath.Join("testdata", m, "networkd")
			if *update {
				os.RemoveAll(goldenDir)
				os.MkdirAll(goldenDir, 0o755)
				for name, text := range files {
					if err := os.WriteFile(filepath.Join(goldenDir, name), []byte(text), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			want, err := filepath.Glob(filepath.Join(goldenDir, "*.network"))
			if err != nil || len(want) == 0 {
				t.Fatalf("no golden files in %s (run go test ./netstate -update)", goldenDir)
			}
			if len(want) != len(files) {
				t.Errorf("wrote %d files, %d golden", len(files), len(want))
			}
			for _, w := range want {
				b, _ := os.ReadFile(w)
				if got := files[filepath.Base(w)]; got != string(b) {
					t.Errorf("%s differs; review and run go test ./netstate -update:\n%s", w, got)
				}
			}
		})
	}
}

// TestNetworkdHetzner checks the settings that keep a Hetzner-style server
// reachable: the /32 address, the on-link IPv4 gateway, static IPv6 with
// fe80::1 as gateway, DHCP still on, matched by MAC only.
func TestNetworkdHetzner(t *testing.T) {
	carry, err := readMachine(t, "rescue").CarryJSON()
	if err != nil {
		t.Fatal(err)
	}
	files, stderr, err := runCarry(t, carry, t.TempDir())
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	eth0 := files["10-homestaker-carry-0.network"]
	for _, want := range []string{
		"[Match]\nMACAddress=90:1b:0e:c4:28:b1\nKind=!*\n",
		"[Network]\nDHCP=yes\nAddress=203.0.113.10/32\nAddress=2a01:4f8:10a:3c8e::2/64\n",
		"[Route]\nDestination=0.0.0.0/0\nGateway=172.31.1.1\nGatewayOnLink=yes\n",
		"[Route]\nDestination=::/0\nGateway=fe80::1\nMetric=1024\n",
	} {
		if !strings.Contains(eth0, want) {
			t.Errorf("eth0 file lacks\n%s\nin\n%s", want, eth0)
		}
	}
	if strings.Contains(eth0, "fe80::921b") || strings.Contains(eth0, "Name=") {
		t.Errorf("link-local address or name match carried:\n%s", eth0)
	}
	eth1 := files["10-homestaker-carry-1.network"]
	if !strings.Contains(eth1, "MACAddress=90:1b:0e:c4:28:b2") || strings.Contains(eth1, "\nAddress=") || strings.Contains(eth1, "[Route]") {
		t.Errorf("eth1 should only get DHCP:\n%s", eth1)
	}

	home, err := readMachine(t, "server-2nvme").CarryJSON()
	if err != nil {
		t.Fatal(err)
	}
	files, _, err = runCarry(t, home, t.TempDir())
	if err != nil || !strings.Contains(files["10-homestaker-carry-0.network"], "[DHCPv4]\nRequestAddress=192.168.1.50") {
		t.Errorf("home server: the lease must be asked for again: %v\n%v", err, files)
	}
}

// TestNetworkCarryRefusesDamage: a damaged file writes nothing (the node
// keeps DHCP everywhere) and keeps the files of an earlier good run, and
// the error names the field.
func TestNetworkCarryRefusesDamage(t *testing.T) {
	good, err := readMachine(t, "rescue").CarryJSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ from, to, want string }{
		{`"version": 1`, `"version": 2`, "version 1"},
		{`"mac": "90:1b:0e:c4:28:b2"`, `"mac": "90:1b:0e:c4:28:b2\n[Network]"`, "interfaces[1].mac"},
		{`"address": "203.0.113.10/32"`, `"address": "203.0.113.10/32\nDNS=1.1.1.1"`, "interfaces[0].addresses"},
		{`"gateway": "fe80::1"`, `"gateway": "fe80::1 Foo"`, "route gateway"},
		{`"metric": 1024`, `"metric": -5`, "route metric"},
		{`"name": "eth1"`, `"name": "eth 1"`, "interfaces[1].name"},
	} {
		bad := strings.Replace(string(good), c.from, c.to, 1)
		if bad == string(good) {
			t.Fatalf("%s not in the carry file", c.from)
		}
		out := t.TempDir()
		before := filepath.Join(out, "10-homestaker-carry-0.network")
		os.WriteFile(before, []byte("earlier run\n"), 0o644)
		files, stderr, err := runCarry(t, []byte(bad), out)
		if err == nil {
			t.Errorf("%s: accepted:\n%v", c.to, files)
			continue
		}
		if !strings.Contains(stderr, c.want) {
			t.Errorf("%s: stderr does not name %q:\n%s", c.to, c.want, stderr)
		}
		if len(files) != 1 || files["10-homestaker-carry-0.network"] != "earlier run\n" {
			t.Errorf("%s: files changed after a refusal: %v", c.to, files)
		}
	}
}

// TestModuleReadsCarryPath: the NixOS module looks for the file where
// `homestaker kexec` puts it (CarryPath, at the root of the initrd) and runs
// the two helpers tested above.
func TestModuleReadsCarryPath(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "assets", "nix", "modules", "network-carry.nix"))
	if err != nil {
		t.Fatal(err)
	}
	mod := string(b)
	dir, file := filepath.Split(CarryPath)
	for _, want := range []string{
		`initrdDir = "/` + strings.TrimSuffix(dir, "/") + `";`,
		`${initrdDir}/` + file,
		`"${./network-carry.sh}"`,
		`"${./network-carry.jq}"`,
		`"${carryDir}/` + file + `"`,
		`"/run/systemd/network"`,
		`before = [ "systemd-networkd.service"`,
		`networking.useNetworkd = true;`,
	} {
		if !strings.Contains(mod, want) {
			t.Errorf("network-carry.nix lacks %s", want)
		}
	}
}
