package main

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/ui"
)

// detectHardware is what the wizard needs to know about this machine.
func detectHardware(env *cliEnv, sys disk.System) ui.Hardware {
	root := sys.Root
	if root == "" {
		root = "/"
	}
	hw := ui.Hardware{Arch: plan.ArchX86_64, Board: plan.BoardGeneric, CPUs: runtime.NumCPU()}
	if runtime.GOARCH == "arm64" {
		hw.Arch = plan.ArchAarch64
	}
	if model, err := os.ReadFile(filepath.Join(root, "proc/device-tree/model")); err == nil &&
		strings.HasPrefix(strings.TrimRight(string(model), "\x00\n"), "Raspberry Pi 4") {
		hw.Board, hw.Arch = plan.BoardRPi4, plan.ArchAarch64
	}
	if f, err := os.Open(filepath.Join(root, "proc/meminfo")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) >= 2 && fields[0] == "MemTotal:" {
				kb, _ := strconv.ParseUint(fields[1], 10, 64)
				hw.MemoryBytes = kb * 1024
			}
		}
		f.Close()
	}
	hw.Disks, _ = disk.Discover(sys)
	if home := env.getenv("HOME"); home != "" {
		hw.AuthorizedKeysFile = filepath.Join(home, ".ssh", "authorized_keys")
		hw.AuthorizedKeys = ui.ReadAuthorizedKeys(hw.AuthorizedKeysFile)
	}
	hw.Timezone = env.getenv("TZ")
	if hw.Timezone == "" {
		if tz, err := os.ReadFile(filepath.Join(root, "etc/timezone")); err == nil {
			hw.Timezone = strings.TrimSpace(string(tz))
		}
	}
	return hw
}
