// Package netstate records a running machine's network (interfaces, their
// addresses and the routes of the main table) the way `homestaker kexec`
// must carry it into the NixOS node it boots: matched by MAC address, static
// addresses and routes kept, leased ones asked for again by DHCP. It reads
// iproute2's JSON output (`ip -json`), which every rescue system has, and
// writes the carry-over file the node's network-carry.nix module reads.
package netstate

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// State is a machine's network as homestaker sees it.
type State struct {
	Interfaces []Interface `json:"interfaces"`
	Routes     []Route     `json:"routes"`
}

// Interface is one network interface.
type Interface struct {
	// Name is the kernel name (eth0, enp5s0). After a kexec the name may
	// differ; the MAC address is what identifies the interface.
	Name string `json:"name"`
	// MAC is the permanent hardware address, lower case aa:bb:cc:dd:ee:ff,
	// "" for interfaces without one (loopback, WireGuard, tun). When the
	// running system changed the address (bonding, MAC randomisation), this
	// is the permanent one, because that is what the next kernel sees.
	MAC string `json:"mac"`
	// Up is true when the interface is administratively up.
	Up bool `json:"up"`
	// DHCP4 is true when an IPv4 address was leased by DHCP (dynamic).
	DHCP4 bool `json:"dhcp4"`
	// DHCP6 is true when a global IPv6 address is dynamic (SLAAC or DHCPv6).
	DHCP6     bool      `json:"dhcp6"`
	Addresses []Address `json:"addresses"`

	// Kind is the kernel's link kind for virtual interfaces (bridge, veth,
	// bond, vlan, wireguard, …); "" for a physical device.
	Kind string `json:"kind,omitempty"`
	// Master is the bridge or bond the interface is a port of, if any.
	Master string `json:"master,omitempty"`
	// LeasedIPv4 is the address of the DHCP lease (no prefix length), which
	// the node asks its DHCP server for again after the kexec.
	LeasedIPv4 string `json:"leasedIPv4,omitempty"`
}

// Address is one address of an interface.
type Address struct {
	// Address is the address with its prefix length: "203.0.113.10/32".
	Address string `json:"address"`
	// Dynamic is true for leased or autoconfigured addresses, which DHCP or
	// router advertisements bring back and homestaker does not carry as static.
	Dynamic bool `json:"dynamic"`
}

// Route is one route of the main routing table that goes out of an interface.
type Route struct {
	Interface string `json:"interface"`
	// Destination is "default" or a prefix ("10.8.0.0/24"; host routes get /32 or /128).
	Destination string `json:"destination"`
	Gateway     string `json:"gateway,omitempty"`
	// OnLink is true when the gateway is reached directly although no address
	// of the interface covers it (Hetzner's /32 with gateway 172.31.1.1).
	OnLink bool `json:"onLink,omitempty"`
	// Protocol says who added the route: kernel (from an address), boot (by
	// hand or a script: iproute2's default), static, dhcp, ra, …
	Protocol string `json:"protocol,omitempty"`
	Metric   int    `json:"metric,omitempty"`
	// Family is "inet" or "inet6".
	Family string `json:"family"`
	// Type is the route type when it is not a plain unicast route
	// (unreachable, blackhole, local, …).
	Type string `json:"type,omitempty"`
}

// Dump names one of the iproute2 outputs Read parses.
type Dump int

const (
	// DumpAddr is `ip -details -json addr show`: links with their addresses.
	// -details adds the link kind (bridge, veth, …) and permanent addresses.
	DumpAddr Dump = iota
	// DumpRoute4 is `ip -json -4 route show table main`.
	DumpRoute4
	// DumpRoute6 is `ip -json -6 route show table main`.
	DumpRoute6
)

// Args are the arguments of the ip command that produces the dump.
func (d Dump) Args() []string {
	switch d {
	case DumpAddr:
		return []string{"-details", "-json", "addr", "show"}
	case DumpRoute4:
		return []string{"-json", "-4", "route", "show", "table", "main"}
	case DumpRoute6:
		return []string{"-json", "-6", "route", "show", "table", "main"}
	}
	return nil
}

// FileName is the name of the dump in a recorded folder (see Dir).
func (d Dump) FileName() string {
	switch d {
	case DumpAddr:
		return "ip-addr.json"
	case DumpRoute4:
		return "ip-route4.json"
	case DumpRoute6:
		return "ip-route6.json"
	}
	return fmt.Sprintf("ip-dump-%d.json", int(d))
}

func (d Dump) String() string { return "ip " + strings.Join(d.Args(), " ") }

// Source produces the iproute2 dumps Read parses.
type Source interface {
	IP(ctx context.Context, d Dump) ([]byte, error)
}

// Command runs iproute2's ip on the running machine.
type Command struct {
	// Path is the ip binary; "" looks up "ip" in PATH.
	Path string
}

// IP runs ip with the dump's arguments and returns its output.
func (c Command) IP(ctx context.Context, d Dump) ([]byte, error) {
	path := c.Path
	if path == "" {
		p, err := exec.LookPath("ip")
		if err != nil {
			return nil, fmt.Errorf("iproute2's ip command is not installed: %w", err)
		}
		path = p
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, d.Args()...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, fmt.Errorf("%s: %w: %s", d, err, msg)
		}
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	return out, nil
}

// Dir is a folder of recorded dumps, one file per Dump named by its
// FileName: how tests and `homestaker detect` replay a recorded machine.
type Dir string

// IP reads the recorded dump.
func (dir Dir) IP(_ context.Context, d Dump) ([]byte, error) {
	path := filepath.Join(string(dir), d.FileName())
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("recorded %s: %w", d, err)
	}
	return b, nil
}

// Read records the network state from src: every interface with its
// addresses, and the routes of the main table for IPv4 and IPv6.
func Read(ctx context.Context, src Source) (State, error) {
	if src == nil {
		// The running machine, through iproute2.
		src = Command{}
	}
	addr, err := src.IP(ctx, DumpAddr)
	if err != nil {
		return State{}, fmt.Errorf("read network interfaces: %w", err)
	}
	ifs, err := ParseAddr(addr)
	if err != nil {
		return State{}, fmt.Errorf("%s: %w", DumpAddr, err)
	}
	s := State{Interfaces: ifs, Routes: []Route{}}
	for _, d := range []struct {
		dump   Dump
		family string
	}{{DumpRoute4, "inet"}, {DumpRoute6, "inet6"}} {
		out, err := src.IP(ctx, d.dump)
		if err != nil {
			return State{}, fmt.Errorf("read routes: %w", err)
		}
		rs, err := ParseRoutes(out, d.family)
		if err != nil {
			return State{}, fmt.Errorf("%s: %w", d.dump, err)
		}
		s.Routes = append(s.Routes, rs...)
	}
	return s, nil
}
