package netstate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// machines are the recorded machines under testdata/ (the same machines as
// disk/testdata): a Hetzner-like rescue system, a home server with docker on
// the 2-NVMe machine, and a Raspberry Pi 4.
var machines = []string{"rescue", "server-2nvme", "rpi4"}

func readMachine(t testing.TB, name string) State {
	t.Helper()
	s, err := Read(context.Background(), Dir(filepath.Join("testdata", name)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func findIf(s State, name string) *Interface {
	for i := range s.Interfaces {
		if s.Interfaces[i].Name == name {
			return &s.Interfaces[i]
		}
	}
	return nil
}

func TestReadRescue(t *testing.T) {
	s := readMachine(t, "rescue")
	if len(s.Interfaces) != 3 {
		t.Fatalf("interfaces: %+v", s.Interfaces)
	}
	lo := findIf(s, "lo")
	if lo == nil || lo.MAC != "" || !lo.Up {
		t.Errorf("lo: %+v", lo)
	}
	eth0 := findIf(s, "eth0")
	want := Interface{Name: "eth0", MAC: "90:1b:0e:c4:28:b1", Up: true, Addresses: []Address{
		{Address: "203.0.113.10/32"}, {Address: "2a01:4f8:10a:3c8e::2/64"}, {Address: "fe80::921b:eff:fec4:28b1/64"},
	}}
	if eth0 == nil || !reflect.DeepEqual(*eth0, want) {
		t.Errorf("eth0:\n got %+v\nwant %+v", eth0, want)
	}
	if eth1 := findIf(s, "eth1"); eth1 == nil || eth1.Up || len(eth1.Addresses) != 0 {
		t.Errorf("eth1: %+v", eth1)
	}
	wantRoutes := []Route{
		{Interface: "eth0", Destination: "default", Gateway: "172.31.1.1", OnLink: true, Protocol: "boot", Family: "inet"},
		{Interface: "eth0", Destination: "2a01:4f8:10a:3c8e::/64", Protocol: "kernel", Metric: 256, Family: "inet6"},
		{Interface: "eth0", Destination: "fe80::/64", Protocol: "kernel", Metric: 256, Family: "inet6"},
		{Interface: "eth0", Destination: "default", Gateway: "fe80::1", Protocol: "boot", Metric: 1024, Family: "inet6"},
	}
	if !reflect.DeepEqual(s.Routes, wantRoutes) {
		t.Errorf("routes:\n got %+v\nwant %+v", s.Routes, wantRoutes)
	}
}

func TestReadHomeServer(t *testing.T) {
	s := readMachine(t, "server-2nvme")
	enp := findIf(s, "enp5s0")
	if enp == nil || !enp.DHCP4 || !enp.DHCP6 || enp.LeasedIPv4 != "192.168.1.50" || enp.Kind != "" {
		t.Errorf("enp5s0: %+v", enp)
	}
	for _, a := range enp.Addresses {
		if strings.HasPrefix(a.Address, "fe80:") == a.Dynamic {
			t.Errorf("enp5s0 address %+v: only the link-local one is static here", a)
		}
	}
	if d := findIf(s, "docker0"); d == nil || d.Kind != "bridge" || d.DHCP4 {
		t.Errorf("docker0: %+v", d)
	}
	if v := findIf(s, "veth3f1c2ab"); v == nil || v.Kind != "veth" || v.Master != "docker0" {
		t.Errorf("veth: %+v", v)
	}
	var dhcpDefault bool
	for _, r := range s.Routes {
		if r.Destination == "default" && r.Family == "inet" {
			dhcpDefault = r.Protocol == "dhcp" && r.Gateway == "192.168.1.1" && r.Metric == 100
		}
	}
	if !dhcpDefault {
		t.Errorf("IPv4 default route from DHCP not read: %+v", s.Routes)
	}
}

func TestReadRPi4(t *testing.T) {
	s := readMachine(t, "rpi4")
	eth0 := findIf(s, "eth0")
	if eth0 == nil || eth0.MAC != "dc:a6:32:aa:bb:cc" || !eth0.DHCP4 || !eth0.DHCP6 || eth0.LeasedIPv4 != "192.168.178.40" {
		t.Errorf("eth0: %+v", eth0)
	}
	if w := findIf(s, "wlan0"); w == nil || w.Up || w.MAC != "dc:a6:32:aa:bb:cd" {
		t.Errorf("wlan0: %+v", w)
	}
}

// TestCarriedGolden compares each machine's carry-over file with the
// reviewed copy testdata/<machine>/carry.json (update with -update).
func TestCarriedGolden(t *testing.T) {
	for _, m := range machines {
		t.Run(m, func(t *testing.T) {
			s := readMachine(t, m)
			got, err := s.CarryJSON()
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", m, "carry.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./netstate -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("carry file differs from %s; review and run go test ./netstate -update:\n%s", golden, got)
			}
			back, err := ParseCarry(got)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, s.Carried()) {
				t.Errorf("ParseCarry(CarryJSON()) = %+v, want %+v", back, s.Carried())
			}
			if again := back.Carried(); !reflect.DeepEqual(again, back) {
				t.Errorf("Carried is not idempotent:\n%+v\n%+v", again, back)
			}
		})
	}
}

func TestCarriedRules(t *testing.T) {
	rescue := readMachine(t, "rescue").Carried()
	if len(rescue.Interfaces) != 2 || rescue.Interfaces[0].Name != "eth0" || rescue.Interfaces[1].Name != "eth1" {
		t.Fatalf("rescue interfaces: %+v", rescue.Interfaces)
	}
	wantAddrs := []Address{{Address: "203.0.113.10/32"}, {Address: "2a01:4f8:10a:3c8e::2/64"}}
	if !reflect.DeepEqual(rescue.Interfaces[0].Addresses, wantAddrs) {
		t.Errorf("rescue eth0 addresses: %+v", rescue.Interfaces[0].Addresses)
	}
	wantRoutes := []Route{
		{Interface: "eth0", Destination: "default", Gateway: "172.31.1.1", OnLink: true, Protocol: "boot", Family: "inet"},
		{Interface: "eth0", Destination: "default", Gateway: "fe80::1", Protocol: "boot", Metric: 1024, Family: "inet6"},
	}
	if !reflect.DeepEqual(rescue.Routes, wantRoutes) {
		t.Errorf("rescue routes:\n got %+v\nwant %+v", rescue.Routes, wantRoutes)
	}

	home := readMachine(t, "server-2nvme").Carried()
	if len(home.Interfaces) != 1 || home.Interfaces[0].Name != "enp5s0" {
		t.Fatalf("home: docker0, veth and lo must stay behind: %+v", home.Interfaces)
	}
	if c := home.Interfaces[0]; len(c.Addresses) != 0 || !c.DHCP4 || c.LeasedIPv4 != "192.168.1.50" {
		t.Errorf("home enp5s0: %+v", c)
	}
	// The static route via 192.168.1.2 is reachable only through the DHCP
	// lease: networkd would try it before the lease and fail the link.
	if len(home.Routes) != 0 {
		t.Errorf("home routes: %+v", home.Routes)
	}
}

func TestCarriedFoldsBridgeOntoPort(t *testing.T) {
	s := State{
		Interfaces: []Interface{
			{Name: "eno1", MAC: "aa:bb:cc:00:00:01", Up: true, Master: "br0", Addresses: []Address{}},
			{Name: "eno2", MAC: "aa:bb:cc:00:00:02", Up: true, Master: "br0", Addresses: []Address{}},
			{Name: "br0", MAC: "aa:bb:cc:00:00:02", Up: true, Kind: "bridge", Addresses: []Address{
				{Address: "192.0.2.10/24"}, {Address: "fe80::1/64"},
			}},
		},
		Routes: []Route{
			{Interface: "br0", Destination: "default", Gateway: "192.0.2.1", Protocol: "static", Family: "inet"},
			{Interface: "br0", Destination: "198.51.100.0/24", Gateway: "203.0.113.1", Protocol: "static", Family: "inet"},
		},
	}
	c := s.Carried()
	if len(c.Interfaces) != 2 {
		t.Fatalf("%+v", c.Interfaces)
	}
	if got := c.Interfaces[1]; got.Name != "eno2" || !reflect.DeepEqual(got.Addresses, []Address{{Address: "192.0.2.10/24"}}) || got.Master != "" {
		t.Errorf("br0 must fold onto eno2 (same MAC): %+v", c.Interfaces)
	}
	want := []Route{{Interface: "eno2", Destination: "default", Gateway: "192.0.2.1", Protocol: "static", Family: "inet"}}
	if !reflect.DeepEqual(c.Routes, want) {
		t.Errorf("routes %+v, want %+v (the unreachable gateway 203.0.113.1 left out)", c.Routes, want)
	}
}

func TestCarryJSONRefusesNothingToCarry(t *testing.T) {
	s := State{Interfaces: []Interface{{Name: "lo", Up: true, Addresses: []Address{{Address: "127.0.0.1/8"}}}}}
	if _, err := s.CarryJSON(); err == nil || !strings.Contains(err.Error(), "no physical network interface") {
		t.Errorf("got %v", err)
	}
}

func TestParseCarryErrors(t *testing.T) {
	good := `{"version":1,"interfaces":[{"name":"eth0","mac":"aa:bb:cc:dd:ee:ff","up":true,"dhcp4":false,"dhcp6":false,"addresses":[{"address":"192.0.2.1/24","dynamic":false}]}],"routes":[{"interface":"eth0","destination":"default","gateway":"192.0.2.254","family":"inet"}]}`
	if _, err := ParseCarry([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ from, to, want string }{
		{`"version":1`, `"version":2`, "version 2"},
		{`"aa:bb:cc:dd:ee:ff"`, `"AA:BB:CC:DD:EE:FF"`, "interfaces[0].mac"},
		{`"192.0.2.1/24"`, `"192.0.2.1"`, "interfaces[0].addresses[0].address"},
		{`"name":"eth0"`, `"name":"eth/0"`, "interfaces[0].name"},
		{`"interface":"eth0"`, `"interface":"eth9"`, "routes[0].interface"},
		{`"destination":"default"`, `"destination":"2001:db8::/32"`, "routes[0].destination"},
		{`"gateway":"192.0.2.254"`, `"gateway":"gw"`, "routes[0].gateway"},
		{`"family":"inet"`, `"family":"ipx"`, "routes[0].family"},
		{`"up":true`, `"up":true,"speed":1`, "unknown field"},
	} {
		bad := strings.Replace(good, c.from, c.to, 1)
		if _, err := ParseCarry([]byte(bad)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s -> %s: got %v, want an error naming %q", c.from, c.to, err, c.want)
		}
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	for _, c := range []struct{ data, want string }{
		{`{"ifname":"eth0"}`, "not iproute2 JSON"},
		{`[{"flags":[]}]`, "interface 0: no ifname"},
		{`[{"ifname":"eth0","link_type":"ether","address":"zz"}]`, "interface eth0: address"},
		{`[{"ifname":"eth0","addr_info":[{"family":"inet","local":"10.0.0.300","prefixlen":8}]}]`, "addr_info[0].local"},
		{`[{"ifname":"eth0","addr_info":[{"family":"inet","local":"10.0.0.3"}]}]`, "no prefixlen"},
		{`[{"ifname":"eth0","addr_info":[{"family":"inet","local":"10.0.0.3","prefixlen":33}]}]`, "prefixlen: 33"},
		{`[{"ifname":"eth0","addr_info":[{"family":"inet6","local":"10.0.0.3","prefixlen":8}]}]`, "not an inet6 address"},
	} {
		if _, err := ParseAddr([]byte(c.data)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseAddr(%s): got %v, want %q", c.data, err, c.want)
		}
	}
	for _, c := range []struct{ data, want string }{
		{`[{"dst":"nowhere","dev":"eth0"}]`, "route 0 (dev eth0): dst"},
		{`[{"dst":"2001:db8::/32","dev":"eth0"}]`, "not an inet prefix"},
		{`[{"dst":"default","gateway":"x","dev":"eth0"}]`, "gateway"},
		{`[{"dst":"default","dev":"eth0","metric":-1}]`, "negative"},
	} {
		if _, err := ParseRoutes([]byte(c.data), "inet"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseRoutes(%s): got %v, want %q", c.data, err, c.want)
		}
	}
	rs, err := ParseRoutes([]byte(`[{"type":"unreachable","dst":"10.0.0.0/8"},{"dst":"172.31.1.1","dev":"eth0","scope":"link"}]`), "inet")
	if err != nil || len(rs) != 1 || rs[0].Destination != "172.31.1.1/32" {
		t.Errorf("host route: %+v, %v", rs, err)
	}
	if rs, err := ParseRoutes([]byte("\n"), "inet6"); err != nil || len(rs) != 0 {
		t.Errorf("empty output: %+v, %v", rs, err)
	}
}

type failingSource struct{ failOn Dump }

func (f failingSource) IP(ctx context.Context, d Dump) ([]byte, error) {
	if d == f.failOn {
		return nil, errors.New("boom")
	}
	return Dir("testdata/rescue").IP(ctx, d)
}

func TestReadReportsWhichDumpFailed(t *testing.T) {
	if _, err := Read(context.Background(), failingSource{DumpRoute6}); err == nil || !strings.Contains(err.Error(), "read routes: boom") {
		t.Errorf("got %v", err)
	}
	if _, err := Read(context.Background(), Dir(t.TempDir())); err == nil || !strings.Contains(err.Error(), "ip-addr.json") {
		t.Errorf("missing recording: %v", err)
	}
}

// TestReadLive runs the real ip command on this machine.
func TestReadLive(t *testing.T) {
	ip := testutil.RequireTool(t, "ip")
	s, err := Read(context.Background(), Command{Path: ip})
	if err != nil {
		t.Fatal(err)
	}
	if findIf(s, "lo") == nil {
		t.Errorf("no loopback interface in %+v", s.Interfaces)
	}
	if _, err := json.Marshal(s); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(context.Background(), Command{Path: filepath.Join(t.TempDir(), "no-ip")}); err == nil {
		t.Error("a missing ip binary must be an error")
	}
}
