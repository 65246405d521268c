// Package nodeeval evaluates a flake homestaker wrote, offline, with the real
// NixOS modules of ethereum.nix, sops-nix and disko and nixpkgs' own module
// system, and returns what the node would run: its systemd services, its
// firewall, its mounts and its secrets. Only NixOS' base options and the
// package set are stubs (stub/), because the whole of nixpkgs cannot be had
// offline; everything the flake and the upstream modules do is evaluated for
// real.
//
// The upstream sources are not part of homestaker. The tests find them in
// the folder named by HOMESTAKER_NIX_SOURCES, one git checkout per input at
// the revision the flake pins (see SourcesHelp).
package nodeeval

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/homestaker/homestaker/flake"
)

//go:embed eval.nix stub
var files embed.FS

// SourcesEnv names the folder holding the upstream sources.
const SourcesEnv = "HOMESTAKER_NIX_SOURCES"

// Source is one upstream checkout the evaluation needs.
type Source struct {
	// Dir is the folder under the sources folder; Repo where it comes from.
	Dir, Repo string
	// Rev is the commit the flake pins; empty for nixpkgs.lib, whose
	// revision follows the release branch the flake names.
	Rev string
}

// Sources are the checkouts the evaluation reads.
var Sources = []Source{
	{Dir: "ethereum.nix", Repo: "https://github.com/nix-community/ethereum.nix", Rev: flake.EthereumNixRev},
	{Dir: "sops-nix", Repo: "https://github.com/Mic92/sops-nix", Rev: flake.SopsNixRev},
	{Dir: "disko", Repo: "https://github.com/nix-community/disko", Rev: flake.DiskoRev},
	{Dir: "nixpkgs.lib", Repo: "https://github.com/nix-community/nixpkgs.lib"},
}

// SourcesHelp says how to provide the sources.
func SourcesHelp() string {
	var b strings.Builder
	fmt.Fprintf(&b, "set %s to a folder holding a git checkout of each of:", SourcesEnv)
	for _, s := range Sources {
		rev := "its default branch"
		if s.Rev != "" {
			rev = "commit " + s.Rev
		}
		fmt.Fprintf(&b, "\n  %s/  %s at %s", s.Dir, s.Repo, rev)
	}
	return b.String()
}

// CheckSources reports whether dir holds every source at the pinned
// revision, naming what is missing or at another revision.
func CheckSources(dir string) error {
	var probs []string
	for _, s := range Sources {
		d := filepath.Join(dir, s.Dir)
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			probs = append(probs, d+" is missing")
			continue
		}
		if s.Rev == "" {
			continue
		}
		out, err := exec.Command("git", "-C", d, "rev-parse", "HEAD").Output()
		if err != nil {
			probs = append(probs, d+" is not a git checkout (git rev-parse HEAD failed)")
			continue
		}
		if got := strings.TrimSpace(string(out)); got != s.Rev {
			probs = append(probs, fmt.Sprintf("%s is at %s, the flake pins %s (git -C %s checkout %s)", d, got, s.Rev, d, s.Rev))
		}
	}
	if len(probs) > 0 {
		return errors.New(strings.Join(probs, "; "))
	}
	return nil
}

// Host is what evaluating one host gives.
type Host struct {
	Services    map[string]Unit       `json:"services"`
	Firewall    Firewall              `json:"firewall"`
	FileSystems map[string]FileSystem `json:"fileSystems"`
	Sops        struct {
		Secrets     map[string]Secret `json:"secrets"`
		SSHKeyPaths []string          `json:"sshKeyPaths"`
	} `json:"sops"`
	OpenSSH struct {
		Enable   bool `json:"enable"`
		HostKeys []struct {
			Path string `json:"path"`
			Type string `json:"type"`
		} `json:"hostKeys"`
	} `json:"openssh"`
	// TmpfilesRules are systemd.tmpfiles.rules.
	TmpfilesRules []string `json:"tmpfilesRules"`
	HostName      string   `json:"hostName"`
	// SystemPackages are the names of environment.systemPackages.
	SystemPackages []string `json:"systemPackages"`
	KernelParams   []string `json:"kernelParams"`
	// Image is the name of what `nix build .#<host>` builds.
	Image string `json:"image"`
	// Kernel is the kernel package's name ("" without boot.kernelPackages).
	Kernel string `json:"kernel"`
	// SDCmdline is an SD-card host's cmdline.txt ("" for other hosts).
	SDCmdline string `json:"sdCmdline"`
	// KernelFile is the kernel's file in its package (Image on arm64),
	// the file a kexec tree and an SD card take.
	KernelFile string   `json:"kernelFile"`
	Warnings   []string `json:"warnings"`
	// BootLoader is the name of the boot loader folder the system carries
	// at /etc/homestaker/boot-loader ("" when it carries none).
	BootLoader string `json:"bootLoader"`
	// BootCounting is what marks a boot from a counted boot entry complete:
	// the mounts systemd-bless-boot.service waits for, and the units and
	// mounts boot-complete.target requires.
	BootCounting struct {
		BlessRequiresMountsFor    []string `json:"blessRequiresMountsFor"`
		CompleteRequires          []string `json:"completeRequires"`
		CompleteRequiresMountsFor []string `json:"completeRequiresMountsFor"`
	} `json:"bootCounting"`
}

// Unit is a systemd service as NixOS would write it.
type Unit struct {
	Description   string                     `json:"description"`
	After         []string                   `json:"after"`
	Before        []string                   `json:"before"`
	Wants         []string                   `json:"wants"`
	Requires      []string                   `json:"requires"`
	WantedBy      []string                   `json:"wantedBy"`
	ServiceConfig map[string]json.RawMessage `json:"serviceConfig"`
}

// Firewall is the host's firewall.
type Firewall struct {
	Enable          bool  `json:"enable"`
	AllowedTCPPorts []int `json:"allowedTCPPorts"`
	AllowedUDPPorts []int `json:"allowedUDPPorts"`
}

// FileSystem is a mount.
type FileSystem struct {
	Device        string   `json:"device"`
	FSType        string   `json:"fsType"`
	NeededForBoot bool     `json:"neededForBoot"`
	Options       []string `json:"options"`
}

// Secret is a sops-nix secret.
type Secret struct {
	Path     string  `json:"path"`
	Owner    *string `json:"owner"`
	Mode     string  `json:"mode"`
	SopsFile string  `json:"sopsFile"`
}

// Strings returns a serviceConfig entry as a list of strings (a single
// value becomes a list of one); nil when absent.
func (u Unit) Strings(key string) []string {
	raw, ok := u.ServiceConfig[key]
	if !ok {
		return nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	return []string{string(raw)}
}

// String returns a serviceConfig entry that is a single string, or its JSON
// text when it is something else.
func (u Unit) String(key string) string {
	raw, ok := u.ServiceConfig[key]
	if !ok {
		return ""
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return one
	}
	return string(raw)
}

// Evaluate evaluates every host of the flake in flakeDir with the sources in
// sourcesDir, using nixInstantiate (Nix 2.8 or newer), and returns the hosts
// by name. An evaluation error comes back with Nix's own message.
func Evaluate(ctx context.Context, nixInstantiate, flakeDir, sourcesDir string) (map[string]Host, error) {
	work, err := os.MkdirTemp("", "homestaker-nodeeval-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	if err := copyFiles(work); err != nil {
		return nil, err
	}
	flakeAbs, err := filepath.Abs(flakeDir)
	if err != nil {
		return nil, err
	}
	srcAbs, err := filepath.Abs(sourcesDir)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, nixInstantiate,
		"--option", "build-users-group", "",
		"--eval", "--strict", "--json", filepath.Join(work, "eval.nix"),
		"--arg", "sources", srcAbs, "--arg", "flake", flakeAbs)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("evaluating %s: %v\n%s", flakeDir, err, strings.TrimSpace(stderr.String()))
	}
	var hosts map[string]Host
	if err := json.Unmarshal(stdout.Bytes(), &hosts); err != nil {
		return nil, fmt.Errorf("evaluating %s: reading the result: %w", flakeDir, err)
	}
	return hosts, nil
}

func copyFiles(dst string) error {
	return fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dst, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
