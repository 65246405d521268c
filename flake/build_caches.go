package flake

import "strings"

// BinaryCache is a Nix binary cache with the key its paths are signed with.
type BinaryCache struct {
	URL       string
	PublicKey string
	// Serves says what the node gets from it.
	Serves string
	// Source is where the URL and key were read, and when.
	Source string
}

// BinaryCaches returns the binary caches a homestaker flake lists in its
// nixConfig (extra-substituters, extra-trusted-public-keys), so the
// Ethereum clients are downloaded rather than compiled. cache.nixos.org is
// Nix's default and is listed so the table is complete on its own.
//
// Build passes --accept-flake-config, so Nix takes these without asking;
// a user who is not in Nix's trusted-users still needs them in the
// system's trusted-substituters, as BinaryCacheNote says.
func BinaryCaches() []BinaryCache {
	return []BinaryCache{
		{
			URL:       "https://cache.nixos.org",
			PublicKey: "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=",
			Serves:    "nixpkgs and NixOS (kernel, systemd, base system)",
			Source:    "Nix's default substituter and trusted-public-keys; checked 2026-11",
		},
		{
			URL:       "https://nix-community.cachix.org",
			PublicKey: "nix-community.cachix.org-1:mB9FSh9qf2dCimDSUo8Zy7bkq5CX+/rkCWyvRCYg3Fs=",
			Serves:    "ethereum.nix packages (Ethereum clients, mev-boost)",
			Source:    "nix-community/ethereum.nix flake.nix nixConfig (commit 00894ee8); read 2026-11",
		},
	}
}

// BinaryCacheNote is the sentence shown before a build and on the review
// screen about where packages come from.
func BinaryCacheNote() string {
	var urls []string
	for _, c := range BinaryCaches() {
		urls = append(urls, c.URL)
	}
	return "Packages are downloaded from the binary caches in the flake's nixConfig (" +
		strings.Join(urls, ", ") + ") rather than compiled; if Nix warns that it ignores an untrusted " +
		"substituter, run the build as root or add the caches to trusted-substituters in /etc/nix/nix.conf."
}
