package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/homestaker/homestaker/detect"
	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/ui"
)

// detectHardware is what the wizard needs to know about this machine:
// detection (as `homestaker detect` shows it), the keys that let the user
// in now, and the timezone.
func detectHardware(ctx context.Context, env *cliEnv) ui.Hardware {
	src := detectSources(env)
	hw := ui.Hardware{Arch: plan.ArchX86_64, Board: plan.BoardGeneric}
	if m, err := detect.Detect(ctx, src); err == nil {
		hw.Arch, hw.Board = plan.Arch(m.Arch), plan.Board(m.Board)
		hw.MemoryBytes, hw.CPUs, hw.Disks = m.MemoryBytes, m.CPUs, m.Disks
	} else {
		hw.Disks, _ = disk.Discover(src.System)
	}
	if hw.Arch != plan.ArchAarch64 {
		hw.Arch = plan.ArchX86_64
	}
	if home := env.getenv("HOME"); home != "" {
		hw.AuthorizedKeysFile = filepath.Join(home, ".ssh", "authorized_keys")
		hw.AuthorizedKeys = ui.ReadAuthorizedKeys(hw.AuthorizedKeysFile)
	}
	hw.Timezone = env.getenv("TZ")
	if hw.Timezone == "" {
		root := src.System.Root
		if root == "" {
			root = "/"
		}
		if tz, err := os.ReadFile(filepath.Join(root, "etc/timezone")); err == nil {
			hw.Timezone = strings.TrimSpace(string(tz))
		}
	}
	return hw
}
