package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/homestaker/homestaker/detect"
	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/netstate"
)

// networkDumpsEnv points network detection at a folder of recorded
// iproute2 dumps (ip-addr.json, ip-route4.json, ip-route6.json, see
// netstate.Dir) instead of running ip. Together with HOMESTAKER_SYSTEM_ROOT
// it replays a recorded machine; tests use netstate/testdata/<machine>.
const networkDumpsEnv = "HOMESTAKER_NETWORK_DUMPS"

// outputWidth is the terminal width the human output fits.
const outputWidth = 80

// runDetect is `homestaker detect [--json]`.
func runDetect(ctx context.Context, env *cliEnv, args []string) int {
	fl := flag.NewFlagSet("detect", flag.ContinueOnError)
	fl.SetOutput(env.stderr)
	asJSON := fl.Bool("json", false, "print the machine as JSON")
	if err := fl.Parse(args); err != nil {
		return flagExit(err)
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(env.stderr, "homestaker detect: unexpected argument %q\n", fl.Arg(0))
		return exitUsage
	}
	m, err := detect.Detect(ctx, detectSources(env))
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker detect: %v\n", err)
		return exitFailure
	}
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(m); err != nil {
			fmt.Fprintf(env.stderr, "homestaker detect: %v\n", err)
			return exitFailure
		}
		return exitOK
	}
	printMachine(env.stdout, m)
	for _, w := range m.Warnings {
		fmt.Fprintf(env.stderr, "homestaker detect: warning: %s\n", w)
	}
	return exitOK
}

// printMachine writes the machine for a person, at most outputWidth columns wide.
func printMachine(w io.Writer, m detect.Machine) {
	arch := m.Arch
	if arch == "" {
		arch = "unknown"
	}
	fmt.Fprintln(w, "Machine")
	fmt.Fprintf(w, "  architecture  %s\n", arch)
	board := m.Board
	if m.BoardModel != "" {
		board += " (" + m.BoardModel + ")"
	}
	wrap(w, "  board         ", "                ", board)
	fmt.Fprintf(w, "  memory        %.1f GiB\n", float64(m.MemoryBytes)/(1<<30))
	fmt.Fprintf(w, "  CPUs          %d\n", m.CPUs)

	fmt.Fprintln(w)
	fmt.Fprintln(w, "Disks")
	if len(m.Disks) == 0 {
		fmt.Fprintln(w, "  none found")
	}
	for _, d := range m.Disks {
		kind := "ssd"
		if d.Rotational {
			kind = "hdd"
		}
		if d.Removable {
			kind += ", removable"
		}
		model := d.Model
		if model == "" {
			model = "unknown model"
		}
		head := fmt.Sprintf("  %-13s %10s  ", d.Path, sizeText(d.SizeBytes))
		fmt.Fprintln(w, head+clip(model+" ("+kind+")", outputWidth-len(head)))
		state := "free"
		if d.InUse {
			state = "in use: " + d.InUseReason
		}
		wrap(w, "      ", "        ", state)
		if d.ByID != "" {
			wrap(w, "      ", "        ", d.ByID)
		}
	}

	carried := map[string]bool{}
	for _, i := range (netstate.State{Interfaces: m.Interfaces}).Carried().Interfaces {
		carried[i.Name] = true
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Network")
	if len(m.Interfaces) == 0 {
		fmt.Fprintln(w, "  no interfaces read")
	}
	nameWidth := 0
	for _, i := range m.Interfaces {
		nameWidth = max(nameWidth, len(i.Name))
	}
	for _, i := range m.Interfaces {
		state := "down"
		if i.Up {
			state = "up"
		}
		mac := i.MAC
		if mac == "" {
			mac = "no MAC"
		}
		note := "kept across a kexec"
		switch {
		case carried[i.Name]:
		case i.Kind != "":
			note = i.Kind + ", not carried"
		default:
			note = "not carried"
		}
		wrap(w, "  ", "      ", fmt.Sprintf("%-*s  %-17s  %-4s  %s", nameWidth, i.Name, mac, state, note))
		for _, a := range i.Addresses {
			wrap(w, "      ", "        ", a.Address+" "+addressKind(a))
		}
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "Default routes")
	n := 0
	for _, r := range m.Routes {
		if r.Destination != "default" {
			continue
		}
		n++
		line := ""
		if r.Gateway != "" {
			line = "via " + r.Gateway + " "
		}
		line += "on " + r.Interface
		var extra []string
		if r.OnLink {
			extra = append(extra, "on-link")
		}
		if p := protocolText(r.Protocol); p != "" {
			extra = append(extra, p)
		}
		if r.Metric != 0 {
			extra = append(extra, fmt.Sprintf("metric %d", r.Metric))
		}
		if len(extra) > 0 {
			line += " (" + strings.Join(extra, ", ") + ")"
		}
		wrap(w, fmt.Sprintf("  %-5s  ", r.Family), "         ", line)
	}
	if n == 0 {
		fmt.Fprintln(w, "  none")
	}
}

// protocolText says who made a route, from its iproute2 protocol.
func protocolText(p string) string {
	switch p {
	case "boot":
		return "set by hand or script"
	case "static":
		return "static"
	case "dhcp":
		return "from DHCP"
	case "ra":
		return "from router advertisement"
	case "kernel", "":
		return ""
	}
	return "by " + p
}

func addressKind(a netstate.Address) string {
	p, err := netip.ParsePrefix(a.Address)
	switch {
	case err == nil && p.Addr().IsLinkLocalUnicast():
		return "link-local"
	case a.Dynamic && err == nil && p.Addr().Is4():
		return "dynamic (DHCP)"
	case a.Dynamic:
		return "dynamic (SLAAC or DHCPv6)"
	}
	return "static"
}

// clip shortens s to at most n columns, marking the cut with "…".
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n < 1 {
		return ""
	}
	return string(r[:n-1]) + "…"
}

// wrap writes text in lines of at most outputWidth columns, the first line
// after first, the others after rest. Words longer than a line are cut.
func wrap(w io.Writer, first, rest, text string) {
	if len([]rune(first+text)) <= outputWidth && !strings.Contains(text, "\n") {
		fmt.Fprintln(w, first+text)
		return
	}
	prefix := first
	line := ""
	flush := func() {
		fmt.Fprintln(w, prefix+line)
		prefix, line = rest, ""
	}
	for _, word := range strings.Fields(text) {
		for {
			room := outputWidth - len([]rune(prefix))
			if line == "" {
				if len([]rune(word)) <= room {
					line = word
					break
				}
				r := []rune(word)
				line = string(r[:room])
				word = string(r[room:])
				flush()
				continue
			}
			if len([]rune(line))+1+len([]rune(word)) <= room {
				line += " " + word
				break
			}
			flush()
		}
	}
	if line != "" || prefix == first {
		flush()
	}
}

// detectSources is the machine to look at: the live one, or the recorded
// machine and network of the test hooks.
func detectSources(env *cliEnv) detect.Sources {
	src := detect.Live()
	if root := env.getenv(systemRootEnv); root != "" {
		src.System = disk.System{Root: root}
	}
	if dir := env.getenv(networkDumpsEnv); dir != "" {
		src.Network = netstate.Dir(dir)
	}
	return src
}
