package nixbuild

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/homestaker/homestaker/plan"
)

// BuildTarget is one host's image in a homestaker flake.
type BuildTarget struct {
	// FlakeDir is the flake's folder (absolute).
	FlakeDir string
	Host     string
	Format   plan.Format
	Arch     plan.Arch
	// MemoryBytes is the node's RAM as the plan records it (0: unknown).
	MemoryBytes uint64
}

// hostNamePattern is what a host folder may be called: a host name, which
// also needs no quoting in a Nix attribute path.
var hostNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

// hostPlanFile is the part of hosts/<name>/homestaker.json a build needs.
type hostPlanFile struct {
	Host struct {
		Name   string      `json:"name"`
		Arch   plan.Arch   `json:"arch"`
		Format plan.Format `json:"format"`
		// MemoryBytes is the node's RAM, when the wizard detected it.
		MemoryBytes uint64 `json:"memoryBytes"`
	} `json:"host"`
}

// SeveralHostsError is ReadBuildTarget's answer when the flake has several
// hosts and none was named: the command's arguments must choose one.
type SeveralHostsError struct {
	Dir   string
	Hosts []string
}

func (e *SeveralHostsError) Error() string {
	return fmt.Sprintf("%s has several hosts (%s): choose one with --host", e.Dir, strings.Join(e.Hosts, ", "))
}

// ReadBuildTarget finds what to build in the flake at dir: the host named
// host, or the only host when host is "". The format and architecture come
// from hosts/<host>/homestaker.json (a kexec tree when it says nothing).
func ReadBuildTarget(dir, host string) (BuildTarget, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return BuildTarget{}, fmt.Errorf("flake folder %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(abs, "flake.nix")); err != nil {
		return BuildTarget{}, fmt.Errorf("%s is not a homestaker flake (no flake.nix): %w; "+
			"give the folder 'homestaker render' wrote", abs, err)
	}
	if host == "" {
		hosts, err := ListFlakeHosts(abs)
		if err != nil {
			return BuildTarget{}, err
		}
		switch len(hosts) {
		case 0:
			return BuildTarget{}, fmt.Errorf("%s has no hosts/<name>/homestaker.json; render the flake first", abs)
		case 1:
			host = hosts[0]
		default:
			return BuildTarget{}, &SeveralHostsError{Dir: abs, Hosts: hosts}
		}
	}
	if !hostNamePattern.MatchString(host) {
		return BuildTarget{}, fmt.Errorf("host name %q is not a valid host name (letters, digits, '-' and '_', up to 63)", host)
	}
	t := BuildTarget{FlakeDir: abs, Host: host, Format: plan.FormatKexec}
	planPath := filepath.Join(abs, "hosts", host, "homestaker.json")
	data, err := os.ReadFile(planPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return BuildTarget{}, fmt.Errorf("host %q: %s does not exist; hosts here: %s",
				host, planPath, strings.Join(mustListHosts(abs), ", "))
		}
		return BuildTarget{}, fmt.Errorf("read %s: %w", planPath, err)
	}
	var hp hostPlanFile
	if err := json.Unmarshal(data, &hp); err != nil {
		return BuildTarget{}, fmt.Errorf("read %s: %w; fix the file or render the flake again", planPath, err)
	}
	switch hp.Host.Format {
	case "":
	case plan.FormatKexec, plan.FormatISO, plan.FormatSD:
		t.Format = hp.Host.Format
	default:
		return BuildTarget{}, fmt.Errorf("%s: host.format is %q; it must be %q, %q or %q",
			planPath, hp.Host.Format, plan.FormatKexec, plan.FormatISO, plan.FormatSD)
	}
	t.Arch, t.MemoryBytes = hp.Host.Arch, hp.Host.MemoryBytes
	return t, nil
}

// ListFlakeHosts returns the hosts of the flake at dir: the folders under
// hosts/ that hold a homestaker.json, sorted.
func ListFlakeHosts(dir string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(dir, "hosts"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list hosts in %s: %w", dir, err)
	}
	var hosts []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "hosts", e.Name(), "homestaker.json")); err == nil {
			hosts = append(hosts, e.Name())
		}
	}
	slices.Sort(hosts)
	return hosts, nil
}

func mustListHosts(dir string) []string {
	hosts, _ := ListFlakeHosts(dir)
	if len(hosts) == 0 {
		return []string{"none"}
	}
	return hosts
}

// Attribute is the flake output that builds the target's image.
func (t BuildTarget) Attribute() string {
	out := "kexecTree"
	switch t.Format {
	case plan.FormatISO:
		out = "isoImage"
	case plan.FormatSD:
		out = "sdParts" // the card's parts; homestaker assembles the image
	}
	return "nixosConfigurations." + t.Host + ".config.system.build." + out
}

// Installable is the argument nix build takes: "<flake>#<attribute>".
func (t BuildTarget) Installable() string {
	return t.FlakeDir + "#" + t.Attribute()
}

// OutLink is where the build's result link goes: result-<host> in the
// flake folder. The link keeps the image from being garbage-collected
// until the node has booted it.
func (t BuildTarget) OutLink() string {
	return filepath.Join(t.FlakeDir, "result-"+t.Host)
}
