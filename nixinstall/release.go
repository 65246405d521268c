// Package nixinstall puts a verified Nix on a machine that has none: it
// downloads the official release tarball (nix-<version>-<system>.tar.xz)
// whose SHA-256 is pinned in assets/nix-release.json, checks the hash before
// unpacking anything, and does itself what the tarball's install script does
// for a single-user install by root: the store paths into /nix/store, their
// registration with `nix-store --load-db`, and Nix in root's default profile.
// No downloaded script is ever run.
package nixinstall

import (
	"encoding/json"
	"fmt"
	"regexp"
	"runtime"

	"github.com/homestaker/homestaker/assets"
)

// Release is one row of assets/nix-release.json.
type Release struct {
	Version string `json:"version"`
	System  string `json:"system"`
	URL     string `json:"url"`
	SHA256  string `json:"sha256"`
	Source  string `json:"source"`
	Date    string `json:"date"`
}

// Dir is the top folder of the tarball: nix-<version>-<system>.
func (r Release) Dir() string { return "nix-" + r.Version + "-" + r.System }

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Releases parses the pinned table.
func Releases() ([]Release, error) {
	var t struct {
		Releases []Release `json:"releases"`
	}
	if err := json.Unmarshal(assets.NixRelease, &t); err != nil {
		return nil, fmt.Errorf("assets/nix-release.json: %w", err)
	}
	for i, r := range t.Releases {
		if r.Version == "" || r.System == "" || r.URL == "" || !sha256Hex.MatchString(r.SHA256) {
			return nil, fmt.Errorf("assets/nix-release.json: release %d (%s %s) lacks a version, system, URL or a 64-digit lowercase sha256", i, r.Version, r.System)
		}
	}
	return t.Releases, nil
}

// SystemFor is the Nix system name of a Go architecture on Linux.
func SystemFor(goarch string) (string, error) {
	switch goarch {
	case "amd64":
		return "x86_64-linux", nil
	case "arm64":
		return "aarch64-linux", nil
	}
	return "", fmt.Errorf("no pinned Nix release for %s: homestaker installs Nix only on x86_64-linux and aarch64-linux", goarch)
}

// ForSystem returns the pinned release for system ("" is this machine's).
func ForSystem(system string) (Release, error) {
	if system == "" {
		s, err := SystemFor(runtime.GOARCH)
		if err != nil {
			return Release{}, err
		}
		system = s
	}
	rs, err := Releases()
	if err != nil {
		return Release{}, err
	}
	for _, r := range rs {
		if r.System == system {
			return r, nil
		}
	}
	return Release{}, fmt.Errorf("assets/nix-release.json pins no Nix release for %s", system)
}
