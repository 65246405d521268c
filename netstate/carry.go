package netstate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// CarryPath is where the carry-over file sits in the extra initrd archive
// `homestaker kexec` appends (a cpio member name: no leading slash). The
// node's network-carry.nix module copies it to /run/homestaker/carry before
// stage 2 and turns it into systemd-networkd files.
const CarryPath = "homestaker/carry/network.json"

// CarryVersion is the version of the carry-over file format; the node's
// network-carry.jq refuses any other.
const CarryVersion = 1

// carryFile is the carry-over file: a version and the carried State.
type carryFile struct {
	Version int `json:"version"`
	State
}

// Carried is the part of s a kexec keeps:
//   - interfaces with a MAC address and no link kind (physical devices; not
//     lo, veth, docker or other bridges). A bridge or bond that holds the
//     addresses is folded onto its physical port (the one with the bridge's
//     MAC address, else the first), since the node only knows the device;
//   - their static addresses, without link-local ones (fe80::/10,
//     169.254.0.0/16), which the kernel makes again;
//   - routes through those interfaces that neither the kernel (proto kernel)
//     nor DHCP or router advertisements (dhcp, ra) made, and whose gateway
//     the node reaches without waiting for a lease: on-link, IPv6
//     link-local, or inside one of the interface's static addresses.
//     systemd-networkd sets static routes before DHCP answers, and a route
//     it cannot set puts the whole interface in a failed state.
//
// The DHCP flags and the leased IPv4 address stay, so the node asks for
// the same lease again.
func (s State) Carried() State {
	physical := func(it Interface) bool { return it.MAC != "" && it.Kind == "" }
	// target maps a running interface to the carried interface it becomes.
	target := map[string]string{}
	var out State
	out.Interfaces = []Interface{}
	out.Routes = []Route{}
	index := map[string]int{}
	for _, it := range s.Interfaces {
		if !physical(it) {
			continue
		}
		if _, dup := index[it.Name]; dup {
			continue
		}
		target[it.Name] = it.Name
		index[it.Name] = len(out.Interfaces)
		out.Interfaces = append(out.Interfaces, Interface{
			Name:       it.Name,
			MAC:        it.MAC,
			Up:         it.Up,
			DHCP4:      it.DHCP4,
			DHCP6:      it.DHCP6,
			LeasedIPv4: it.LeasedIPv4,
			Addresses:  staticAddresses(it.Addresses),
		})
	}
	for _, m := range s.Interfaces {
		if m.Kind != "bridge" && m.Kind != "bond" {
			continue
		}
		port := ""
		for _, p := range s.Interfaces {
			if p.Master != m.Name || !physical(p) {
				continue
			}
			if port == "" || p.MAC == m.MAC {
				port = p.Name
			}
			if p.MAC == m.MAC {
				break
			}
		}
		if port == "" {
			continue // docker0 and friends: no device behind them
		}
		target[m.Name] = port
		c := &out.Interfaces[index[port]]
		c.Addresses = append(c.Addresses, staticAddresses(m.Addresses)...)
		c.DHCP4 = c.DHCP4 || m.DHCP4
		c.DHCP6 = c.DHCP6 || m.DHCP6
		c.Up = c.Up || m.Up
		if c.LeasedIPv4 == "" {
			c.LeasedIPv4 = m.LeasedIPv4
		}
	}
	for _, r := range s.Routes {
		name, ok := target[r.Interface]
		if !ok || r.Type != "" {
			continue
		}
		switch r.Protocol {
		case "kernel", "dhcp", "ra", "redirect":
			continue
		}
		if linkLocalDestination(r.Destination) {
			continue
		}
		if !gatewayReachable(r, out.Interfaces[index[name]].Addresses) {
			continue
		}
		r.Interface = name
		out.Routes = append(out.Routes, r)
	}
	return out
}

func staticAddresses(as []Address) []Address {
	out := []Address{}
	for _, a := range as {
		p, err := netip.ParsePrefix(a.Address)
		if err != nil || a.Dynamic {
			continue
		}
		ip := p.Addr()
		if ip.IsLinkLocalUnicast() || ip.IsLoopback() || ip.IsMulticast() {
			continue
		}
		out = append(out, Address{Address: p.String()})
	}
	return out
}

func linkLocalDestination(dst string) bool {
	p, err := netip.ParsePrefix(dst)
	if err != nil {
		return false // "default"
	}
	return p.Addr().IsLinkLocalUnicast() || p.Addr().IsMulticast()
}

// gatewayReachable reports whether the node reaches r's gateway from its
// static configuration alone.
func gatewayReachable(r Route, static []Address) bool {
	if r.Gateway == "" || r.OnLink {
		return true
	}
	gw, err := netip.ParseAddr(r.Gateway)
	if err != nil {
		return false
	}
	if gw.Is6() && gw.IsLinkLocalUnicast() {
		return true
	}
	for _, a := range static {
		if p, err := netip.ParsePrefix(a.Address); err == nil && p.Masked().Contains(gw) {
			return true
		}
	}
	return false
}

// CarryJSON is the carry-over file for s: s.Carried() with the format
// version. It fails when nothing would be carried: a node without a network
// interface to configure cannot be reached after the kexec.
func (s State) CarryJSON() ([]byte, error) {
	c := s.Carried()
	if len(c.Interfaces) == 0 {
		return nil, errors.New("carry network: no physical network interface (with a MAC address) to carry over")
	}
	if err := validate(c); err != nil {
		return nil, fmt.Errorf("carry network: %w", err)
	}
	b, err := json.MarshalIndent(carryFile{Version: CarryVersion, State: c}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("carry network: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseCarry reads a carry-over file written by CarryJSON and checks every field.
func ParseCarry(data []byte) (State, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f carryFile
	if err := dec.Decode(&f); err != nil {
		return State{}, fmt.Errorf("network carry file: %w", err)
	}
	if dec.More() {
		return State{}, errors.New("network carry file: data after the JSON object")
	}
	if f.Version != CarryVersion {
		return State{}, fmt.Errorf("network carry file: version %d, want %d", f.Version, CarryVersion)
	}
	if err := validate(f.State); err != nil {
		return State{}, fmt.Errorf("network carry file: %w", err)
	}
	if f.Interfaces == nil {
		f.Interfaces = []Interface{}
	}
	if f.Routes == nil {
		f.Routes = []Route{}
	}
	return f.State, nil
}

// validate checks the fields the node turns into systemd-networkd settings.
func validate(s State) error {
	names := map[string]string{}
	for i, it := range s.Interfaces {
		field := fmt.Sprintf("interfaces[%d]", i)
		if !validIfName(it.Name) {
			return fmt.Errorf("%s.name: %q is not an interface name", field, it.Name)
		}
		if _, dup := names[it.Name]; dup {
			return fmt.Errorf("%s.name: %s appears twice", field, it.Name)
		}
		names[it.Name] = ""
		if m, err := normalMAC(it.MAC); err != nil || m != it.MAC {
			return fmt.Errorf("%s.mac: %q is not a lower-case MAC address aa:bb:cc:dd:ee:ff", field, it.MAC)
		}
		for j, a := range it.Addresses {
			if p, err := netip.ParsePrefix(a.Address); err != nil || p.Addr().Zone() != "" {
				return fmt.Errorf("%s.addresses[%d].address: %q is not an address with a prefix length", field, j, a.Address)
			}
		}
		if it.LeasedIPv4 != "" {
			if ip, err := netip.ParseAddr(it.LeasedIPv4); err != nil || !ip.Is4() {
				return fmt.Errorf("%s.leasedIPv4: %q is not an IPv4 address", field, it.LeasedIPv4)
			}
		}
	}
	for i, r := range s.Routes {
		field := fmt.Sprintf("routes[%d]", i)
		if _, ok := names[r.Interface]; !ok {
			return fmt.Errorf("%s.interface: %q is not one of the interfaces", field, r.Interface)
		}
		if r.Family != "inet" && r.Family != "inet6" {
			return fmt.Errorf("%s.family: %q, want inet or inet6", field, r.Family)
		}
		if r.Destination != "default" {
			p, err := netip.ParsePrefix(r.Destination)
			if err != nil || p.Addr().Zone() != "" || p.Addr().Is4() != (r.Family == "inet") {
				return fmt.Errorf("%s.destination: %q is neither default nor an %s prefix", field, r.Destination, r.Family)
			}
		}
		if r.Gateway != "" {
			if ip, err := netip.ParseAddr(r.Gateway); err != nil || ip.Zone() != "" {
				return fmt.Errorf("%s.gateway: %q is not an IP address", field, r.Gateway)
			}
		}
		if r.Metric < 0 {
			return fmt.Errorf("%s.metric: %d is negative", field, r.Metric)
		}
	}
	return nil
}

// validIfName follows the kernel's dev_valid_name: 1 to 15 bytes, not "."
// or "..", no slash, colon or white space.
func validIfName(n string) bool {
	if n == "" || len(n) > 15 || n == "." || n == ".." {
		return false
	}
	return !strings.ContainsFunc(n, func(r rune) bool {
		return r == '/' || r == ':' || r <= ' ' || r == 0x7f || r > 0x7e
	})
}
