// Package netstate records the running machine's network configuration
// (interfaces, addresses, routes) so the node can bring the same network up
// after a kexec.
//
// PLACEHOLDER: this is a minimal stand-in with the agreed API, so the kexec
// half can be built and tested; the detect branch's netstate replaces it.
package netstate

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// CarryPath is where the carried state sits inside the carry-over archive
// (and so in the node's initrd root).
const CarryPath = "homestaker/carry/network.json"

// State is the network configuration of a machine.
type State struct {
	Interfaces []Interface `json:"interfaces"`
	Routes     []Route     `json:"routes"`
}

// Interface is one network interface.
type Interface struct {
	Name      string    `json:"name"`
	MAC       string    `json:"mac"`
	Up        bool      `json:"up"`
	DHCP4     bool      `json:"dhcp4"`
	DHCP6     bool      `json:"dhcp6"`
	Addresses []Address `json:"addresses"`
}

// Address is an address with its prefix ("203.0.113.10/32").
type Address struct {
	Address string `json:"address"`
	Dynamic bool   `json:"dynamic"`
}

// Route is one route.
type Route struct {
	Interface   string `json:"interface"`
	Destination string `json:"destination"`
	Gateway     string `json:"gateway"`
	OnLink      bool   `json:"onLink"`
	Protocol    string `json:"protocol"`
	Metric      int    `json:"metric"`
	Family      string `json:"family"`
}

// Source runs `ip -json` with the given arguments.
type Source interface {
	IPJSON(ctx context.Context, args ...string) ([]byte, error)
}

type liveSource struct{}

func (liveSource) IPJSON(ctx context.Context, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, "ip", append([]string{"-json"}, args...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("ip -json %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// Read records the network state from src (nil: the running machine).
func Read(ctx context.Context, src Source) (State, error) {
	if src == nil {
		src = liveSource{}
	}
	out, err := src.IPJSON(ctx, "addr", "show")
	if err != nil {
		return State{}, err
	}
	var links []struct {
		Name     string   `json:"ifname"`
		Flags    []string `json:"flags"`
		LinkType string   `json:"link_type"`
		MAC      string   `json:"address"`
		Addrs    []struct {
			Family  string `json:"family"`
			Local   string `json:"local"`
			Prefix  int    `json:"prefixlen"`
			Dynamic bool   `json:"dynamic"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return State{}, fmt.Errorf("read ip -json addr: %w", err)
	}
	var s State
	for _, l := range links {
		in := Interface{Name: l.Name, MAC: l.MAC}
		for _, f := range l.Flags {
			if f == "UP" {
				in.Up = true
			}
		}
		if l.LinkType == "loopback" {
			in.MAC = ""
		}
		for _, a := range l.Addrs {
			in.Addresses = append(in.Addresses, Address{Address: fmt.Sprintf("%s/%d", a.Local, a.Prefix), Dynamic: a.Dynamic})
			if a.Dynamic && a.Family == "inet" {
				in.DHCP4 = true
			}
			if a.Dynamic && a.Family == "inet6" {
				in.DHCP6 = true
			}
		}
		s.Interfaces = append(s.Interfaces, in)
	}
	for _, fam := range []string{"4", "6"} {
		out, err := src.IPJSON(ctx, "-"+fam, "route", "show")
		if err != nil {
			return State{}, err
		}
		var routes []struct {
			Dst      string   `json:"dst"`
			Gateway  string   `json:"gateway"`
			Dev      string   `json:"dev"`
			Protocol string   `json:"protocol"`
			Metric   int      `json:"metric"`
			Flags    []string `json:"flags"`
		}
		if err := json.Unmarshal(out, &routes); err != nil {
			return State{}, fmt.Errorf("read ip -json -%s route: %w", fam, err)
		}
		for _, r := range routes {
			rt := Route{Interface: r.Dev, Destination: r.Dst, Gateway: r.Gateway, Protocol: r.Protocol, Metric: r.Metric, Family: "inet"}
			if fam == "6" {
				rt.Family = "inet6"
			}
			for _, f := range r.Flags {
				if f == "onlink" {
					rt.OnLink = true
				}
			}
			s.Routes = append(s.Routes, rt)
		}
	}
	return s, nil
}

// Carried is the part of s worth carrying to the node: interfaces with a
// MAC address, without link-local addresses, and the routes nobody else
// recreates (not the kernel's own, not DHCP's or router advertisements').
func (s State) Carried() State {
	var c State
	kept := map[string]bool{}
	for _, in := range s.Interfaces {
		if in.MAC == "" {
			continue
		}
		out := in
		out.Addresses = nil
		for _, a := range in.Addresses {
			if p, err := netip.ParsePrefix(a.Address); err == nil && p.Addr().IsLinkLocalUnicast() {
				continue
			}
			out.Addresses = append(out.Addresses, a)
		}
		kept[in.Name] = true
		c.Interfaces = append(c.Interfaces, out)
	}
	for _, r := range s.Routes {
		if !kept[r.Interface] {
			continue
		}
		switch r.Protocol {
		case "kernel", "dhcp", "ra":
			continue
		}
		c.Routes = append(c.Routes, r)
	}
	return c
}

// CarryJSON is the carried state as the node reads it.
func (s State) CarryJSON() ([]byte, error) {
	if s.Interfaces == nil {
		s.Interfaces = []Interface{}
	}
	if s.Routes == nil {
		s.Routes = []Route{}
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
