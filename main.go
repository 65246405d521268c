// Command homestaker takes an Ethereum home-staker from fresh hardware to a
// running NixOS node: it asks, writes the answers down as a Nix flake,
// prepares the data disk and keys, builds the RAM-resident image and boots it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/homestaker/homestaker/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(cli.Main(ctx, os.Args[1:]))
}
