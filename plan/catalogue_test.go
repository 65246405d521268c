package plan

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestDiskFiguresPerNetwork: every client has a dated disk figure for every
// network, and the testnets' are far below mainnet's.
func TestDiskFiguresPerNetwork(t *testing.T) {
	c := catalogue(t)
	if c.TestnetDisk.AsOf == "" || c.TestnetDisk.Source == "" {
		t.Errorf("the testnet disk figures are not dated or sourced: %+v", c.TestnetDisk)
	}
	for _, cl := range c.Clients {
		main := cl.DiskFor(Mainnet)
		for _, n := range c.NetworkNames() {
			gib := cl.DiskFor(n)
			if gib <= 0 {
				t.Errorf("%s has no disk figure for %s", cl.Name, n)
			}
			if n != Mainnet && (gib >= main || gib > 250) {
				t.Errorf("%s on %s: %d GiB, not a testnet's size (mainnet %d GiB)", cl.Name, n, gib, main)
			}
			if n != Mainnet && c.DiskAsOf(cl, n) != c.TestnetDisk.AsOf {
				t.Errorf("%s on %s is dated %q", cl.Name, n, c.DiskAsOf(cl, n))
			}
		}
	}
}

// TestDiskWarningUsesTheNetworksFigures: a small disk on hoodi is judged
// with hoodi's figures, not mainnet's.
func TestDiskWarningUsesTheNetworksFigures(t *testing.T) {
	tree := base()
	set(tree, "ethereum.network", "hoodi")
	set(tree, "ethereum.execution", "geth")
	set(tree, "ethereum.consensus", "nimbus")
	set(tree, "ethereum.mevBoost.enable", false)
	set(tree, "ethereum.checkpointSyncUrl", nil)
	set(tree, "disk.sizeBytes", 8<<30)
	data, _ := json.Marshal(tree)
	_, res, err := load(t, data)
	if err != nil || !res.OK() {
		t.Fatalf("%v %v", err, res.Errors)
	}
	var msg string
	for _, w := range res.Warnings {
		if w.Path == "disk.sizeBytes" {
			msg = w.Message
		}
	}
	c := catalogue(t)
	geth, _ := c.Client("geth")
	want := "Go Ethereum: ~" + itoa(geth.DiskFor(Hoodi)) + " GiB"
	if !strings.Contains(msg, want) || !strings.Contains(msg, "on hoodi") || strings.Contains(msg, "1300") {
		t.Errorf("hoodi disk warning = %q, want %q", msg, want)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
