package cli

import (
	"fmt"
	"path/filepath"

	"github.com/homestaker/homestaker/nixbuild"
	"github.com/homestaker/homestaker/plan"
)

// sdBoot says how an sd host boots, for the review.
func sdBoot(env *cliEnv, p plan.Plan) string {
	img, err := sdImagePath(env, p.Host.Name)
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
