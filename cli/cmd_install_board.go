package cli

import (
	"fmt"
	"path/filepath"

	"github.com/homestaker/homestaker/nixbuild"
	"github.com/homestaker/homestaker/nixinstall"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/steps"
)

// sdBoot says how an sd host boots, for the review.
func sdBoot(env *cliEnv, p plan.Plan) string {
	img, err := steps.SDImagePath(env.getenv, p.Host.Name)
	if err != nil {
		img = "<the image build prints>"
	}
	return fmt.Sprintf("write the SD card (`homestaker flash --image %s --device /dev/disk/by-id/…`) and boot the Pi from it", img)
}

// ramBudget is the review's RAM line: the node's RAM (detected, or the most
// its board has), the initrd (measured by an earlier build of this host, or
// estimated), the system, and what is left for the clients.
func ramBudget(p plan.Plan, cat *plan.Catalogue, flakeDir string) string {
	ram, assumed := p.NodeMemory()
	b := nixbuild.RAMBudget{RAMBytes: ram, InitrdBytes: nixbuild.EstimatedInitrdBytes}
	switch {
	case ram == 0:
		return ""
	case assumed:
		b.RAMNote = "the most a Raspberry Pi 4 has"
	default:
		b.RAMNote = "detected"
	}
	role := nixbuild.RoleInitrd
	if p.Host.Format == plan.FormatISO {
		role = nixbuild.RoleISO // copied to RAM
	}
	if m, err := nixbuild.ReadBuildManifest(filepath.Join(flakeDir, "hosts", p.Host.Name, "build-manifest.json")); err == nil && m.Format == p.Host.Format {
		if a, ok := m.Artifact(role); ok {
			b.InitrdBytes, b.Measured = uint64(a.Size), true
		}
	}
	for _, name := range []string{p.Ethereum.Execution, p.Ethereum.Consensus} {
		if c, ok := cat.Client(name); ok {
			b.ClientsBytes += uint64(c.RAMGiB) << 30
			if b.Clients != "" {
				b.Clients += " + "
			}
			b.Clients += fmt.Sprintf("%s %d GiB", c.Title, c.RAMGiB)
		}
	}
	return b.Text()
}

// storeLine is the review's line on the build's Nix store: where it lives on
// this machine (root: the system root, "" for the running one), how much
// it needs (nixinstall.StoreNeedFactor times the initrd: measured by the
// last build, else nixbuild's stand-in) and, on a RAM-only rescue system,
// the RAM that takes.
func storeLine(root string, p plan.Plan, flakeDir string) string {
	st, err := nixinstall.FindStore(root)
	if err != nil {
		return ""
	}
	initrd := uint64(nixbuild.EstimatedInitrdBytes)
	source := fmt.Sprintf("%d × the initrd, whose size before the first build is a %s stand-in; an estimate", nixinstall.StoreNeedFactor, nixbuild.FormatBytes(initrd))
	if m, err := nixbuild.ReadBuildManifest(filepath.Join(flakeDir, "hosts", p.Host.Name, "build-manifest.json")); err == nil {
		if a, ok := m.Artifact(nixbuild.RoleInitrd); ok && a.Size > 0 {
			initrd = uint64(a.Size)
			source = fmt.Sprintf("%d × the %s initrd of the last build; an estimate", nixinstall.StoreNeedFactor, nixbuild.FormatBytes(initrd))
		}
	}
	return st.ReviewLine(nixinstall.StoreNeedFactor*initrd, source, p.Host.MemoryBytes)
}
