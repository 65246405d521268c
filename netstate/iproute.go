package netstate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// ipLink is one element of `ip -details -json addr show`.
type ipLink struct {
	IfName   string   `json:"ifname"`
	Flags    []string `json:"flags"`
	LinkType string   `json:"link_type"`
	Address  string   `json:"address"`
	PermAddr string   `json:"permaddr"`
	Master   string   `json:"master"`
	// LinkNetnsID is set on veth pairs whose peer lives in a container.
	LinkNetnsID *int `json:"link_netnsid"`
	LinkInfo    *struct {
		InfoKind string `json:"info_kind"`
	} `json:"linkinfo"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		PrefixLen *int   `json:"prefixlen"`
		Scope     string `json:"scope"`
		Dynamic   bool   `json:"dynamic"`
	} `json:"addr_info"`
}

// ParseAddr reads the output of `ip -details -json addr show`.
func ParseAddr(data []byte) ([]Interface, error) {
	var links []ipLink
	if err := decodeList(data, &links); err != nil {
		return nil, err
	}
	ifs := make([]Interface, 0, len(links))
	for i, l := range links {
		if l.IfName == "" {
			return nil, fmt.Errorf("interface %d: no ifname", i)
		}
		it := Interface{
			Name:      l.IfName,
			Up:        slices.Contains(l.Flags, "UP"),
			Master:    l.Master,
			Addresses: []Address{},
		}
		if l.LinkInfo != nil {
			it.Kind = l.LinkInfo.InfoKind
		}
		if it.Kind == "" && l.LinkNetnsID != nil {
			it.Kind = "veth" // ip without -details: a link into another namespace
		}
		if l.LinkType == "ether" {
			mac := l.Address
			if l.PermAddr != "" {
				mac = l.PermAddr
			}
			norm, err := normalMAC(mac)
			if err != nil {
				return nil, fmt.Errorf("interface %s: address: %w", l.IfName, err)
			}
			it.MAC = norm
		}
		for j, a := range l.AddrInfo {
			if a.Family != "inet" && a.Family != "inet6" {
				continue
			}
			ip, err := netip.ParseAddr(a.Local)
			if err != nil || ip.Zone() != "" {
				return nil, fmt.Errorf("interface %s: addr_info[%d].local: %q is not an IP address", l.IfName, j, a.Local)
			}
			if ip.Is4() != (a.Family == "inet") {
				return nil, fmt.Errorf("interface %s: addr_info[%d]: %s is not an %s address", l.IfName, j, a.Local, a.Family)
			}
			if a.PrefixLen == nil {
				return nil, fmt.Errorf("interface %s: addr_info[%d]: no prefixlen", l.IfName, j)
			}
			p, err := ip.Prefix(*a.PrefixLen)
			if err != nil || *a.PrefixLen < 0 {
				return nil, fmt.Errorf("interface %s: addr_info[%d].prefixlen: %d is out of range for %s", l.IfName, j, *a.PrefixLen, a.Local)
			}
			it.Addresses = append(it.Addresses, Address{
				Address: netip.PrefixFrom(ip, p.Bits()).String(),
				Dynamic: a.Dynamic,
			})
			if a.Dynamic && !ip.IsLinkLocalUnicast() {
				if ip.Is4() {
					it.DHCP4 = true
					if it.LeasedIPv4 == "" {
						it.LeasedIPv4 = ip.String()
					}
				} else {
					it.DHCP6 = true
				}
			}
		}
		ifs = append(ifs, it)
	}
	return ifs, nil
}

// ipRoute is one element of `ip -json route show`.
type ipRoute struct {
	Type     string   `json:"type"`
	Dst      string   `json:"dst"`
	Gateway  string   `json:"gateway"`
	Dev      string   `json:"dev"`
	Protocol string   `json:"protocol"`
	Metric   *int     `json:"metric"`
	Flags    []string `json:"flags"`
	// Via is an IPv4 route's IPv6 gateway.
	Via *struct {
		Family string `json:"family"`
		Host   string `json:"host"`
	} `json:"via"`
}

// ParseRoutes reads the output of `ip -json -4 route show` (family "inet")
// or `ip -json -6 route show` (family "inet6"). Routes that leave through no
// single interface (unreachable, blackhole, multipath) are left out.
func ParseRoutes(data []byte, family string) ([]Route, error) {
	if family != "inet" && family != "inet6" {
		return nil, fmt.Errorf("family %q: want inet or inet6", family)
	}
	var raw []ipRoute
	if err := decodeList(data, &raw); err != nil {
		return nil, err
	}
	routes := make([]Route, 0, len(raw))
	for i, r := range raw {
		if r.Dev == "" {
			continue
		}
		dst, err := normalDestination(r.Dst, family)
		if err != nil {
			return nil, fmt.Errorf("route %d (dev %s): dst: %w", i, r.Dev, err)
		}
		rt := Route{
			Interface:   r.Dev,
			Destination: dst,
			OnLink:      slices.Contains(r.Flags, "onlink"),
			Protocol:    r.Protocol,
			Family:      family,
		}
		if r.Type != "" && r.Type != "unicast" {
			rt.Type = r.Type
		}
		if rt.Protocol == "" {
			// iproute2 leaves out "proto boot", the protocol of routes added by
			// hand or by scripts.
			rt.Protocol = "boot"
		}
		if r.Metric != nil {
			if *r.Metric < 0 {
				return nil, fmt.Errorf("route %d (dev %s): metric %d is negative", i, r.Dev, *r.Metric)
			}
			rt.Metric = *r.Metric
		}
		gw := r.Gateway
		if gw == "" && r.Via != nil {
			gw = r.Via.Host
		}
		if gw != "" {
			ip, err := netip.ParseAddr(gw)
			if err != nil || ip.Zone() != "" {
				return nil, fmt.Errorf("route %d (dev %s): gateway: %q is not an IP address", i, r.Dev, gw)
			}
			rt.Gateway = ip.String()
		}
		routes = append(routes, rt)
	}
	return routes, nil
}

// decodeList decodes a JSON array; empty output (some iproute2 versions
// print nothing when a table is empty) is an empty list.
func decodeList(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("not iproute2 JSON: %w", err)
	}
	return nil
}

func normalDestination(dst, family string) (string, error) {
	if dst == "default" {
		return dst, nil
	}
	if dst == "" {
		return "", fmt.Errorf("missing")
	}
	if !strings.Contains(dst, "/") {
		// iproute2 prints host routes without a prefix length.
		ip, err := netip.ParseAddr(dst)
		if err != nil || ip.Zone() != "" {
			return "", fmt.Errorf("%q is neither default nor a prefix", dst)
		}
		dst = ip.String() + "/" + strconv.Itoa(ip.BitLen())
	}
	p, err := netip.ParsePrefix(dst)
	if err != nil {
		return "", fmt.Errorf("%q is neither default nor a prefix", dst)
	}
	if p.Addr().Is4() != (family == "inet") {
		return "", fmt.Errorf("%s is not an %s prefix", dst, family)
	}
	return p.Masked().String(), nil
}

func normalMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("%q is not a 6-byte MAC address", s)
	}
	return hw.String(), nil
}
