// Package assets holds homestaker's embedded data: the client catalogue, the
// per-network defaults (checkpoint sync endpoints, MEV-boost relays) and the
// NixOS modules copied into every generated flake. It has no behaviour;
// plan reads the tables and image copies the modules.
package assets

import "embed"

// Catalogue is catalogue.json: which clients run where and what they need.
//
//go:embed catalogue.json
var Catalogue []byte

// Networks is networks.json: checkpoint sync endpoints and relays per network.
//
//go:embed networks.json
var Networks []byte

// Modules holds the NixOS modules every generated flake carries under
// modules/ (paths are "nix/modules/<name>"), with the helper files they
// refer to (network-carry.nix runs network-carry.sh and network-carry.jq).
//
//go:embed nix/modules/*.nix nix/modules/*.jq nix/modules/*.sh
var Modules embed.FS

// NixRelease is nix-release.json: the official Nix release tarballs
// `homestaker nix install` may download, with their pinned SHA-256.
//
//go:embed nix-release.json
var NixRelease []byte
