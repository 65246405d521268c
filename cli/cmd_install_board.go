package cli

import (
	"fmt"
	"path/filepath"

	"github.com/homestaker/homestaker/disk"
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
	need, source := storeNeed(p, flakeDir)
	return st.ReviewLine(need, source, p.Host.MemoryBytes)
}

// storeNeed is the space the build needs in the store, and where the
// figure comes from.
func storeNeed(p plan.Plan, flakeDir string) (uint64, string) {
	initrd := uint64(nixbuild.EstimatedInitrdBytes)
	source := fmt.Sprintf("%d × the initrd, whose size before the first build is a %s stand-in; an estimate", nixinstall.StoreNeedFactor, nixbuild.FormatBytes(initrd))
	if m, err := nixbuild.ReadBuildManifest(filepath.Join(flakeDir, "hosts", p.Host.Name, "build-manifest.json")); err == nil {
		if a, ok := m.Artifact(nixbuild.RoleInitrd); ok && a.Size > 0 {
			initrd = uint64(a.Size)
			source = fmt.Sprintf("%d × the %s initrd of the last build; an estimate", nixinstall.StoreNeedFactor, nixbuild.FormatBytes(initrd))
		}
	}
	return nixinstall.StoreNeedFactor * initrd, source
}

// storeInRAM reports whether this machine's /nix lives in RAM (a rescue
// system): then the store on the data disk spares that RAM.
func storeInRAM(root string) bool {
	st, err := nixinstall.FindStore(root)
	return err == nil && st.InRAM
}

// storeOnDiskLine is the review's Nix store line of an install that builds
// on the data disk (--store-on-data-disk): that the disk is erased before
// the build, where the store will live, the space the build needs there
// and the RAM it no longer takes.
func storeOnDiskLine(t *steps.Target, flakeDir string) string {
	need, source := storeNeed(t.Plan, flakeDir)
	part := "the data partition"
	free := "the data partition's size"
	if t.Layout != nil {
		free = "about " + gib(t.Layout.Data().SizeBytes)
		if t.Disk != nil {
			part = fmt.Sprintf("the data partition %s", disk.PartitionDevice(t.Disk.Name, t.Layout.DataNumber()))
		}
	}
	line := fmt.Sprintf("the data disk is erased BEFORE the build; then /nix is bind-mounted from the folder %s on %s (mounted at %s), %s free; "+
		"the build needs about %s there (%s)", disk.BuildStoreDir, part, steps.StoreMountDir, free, gib(need), source)
	ram := "the store takes no RAM"
	if t.Layout != nil && t.Layout.Data().SizeBytes < need {
		line += "; the data partition is SMALLER than that"
	}
	if t.Plan.Host.MemoryBytes > 0 {
		ram += fmt.Sprintf(" of this machine's %s", gib(t.Plan.Host.MemoryBytes))
	}
	return line + "; " + ram + ", but Nix's evaluation and its build folders (in $TMPDIR, /tmp) still use RAM (not measured here; typically a few GiB). " +
		"The kexec step unmounts the store before it loads the node, and the node removes the folder (" + disk.DataMountPoint + "/" + disk.BuildStoreDir + ") at its first boot"
}

func gib(b uint64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }
