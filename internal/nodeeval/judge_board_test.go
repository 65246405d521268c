package nodeeval_test

import (
	"regexp"
	"slices"
	"strings"

	"github.com/homestaker/homestaker/internal/nodeeval"
	"github.com/homestaker/homestaker/plan"
)

// initParam is NixOS' init= as stage 1 wants it: the system's own init.
var initParam = regexp.MustCompile(`^init=/nix/store/[0-9a-z]{32}-nixos-system-[a-z0-9-]+/init$`)

// judgeBoard checks a Raspberry Pi 4 host: the Pi's kernel, its serial
// console, and for an SD card the command line the firmware hands the kernel.
func judgeBoard(j *judgement, p plan.Plan, h nodeeval.Host) {
	j.t.Helper()
	if p.Host.Board != plan.BoardRPi4 {
		j.check(h.SDCmdline == "", "a %s host has an SD command line %q", p.Host.Board, h.SDCmdline)
		return
	}
	j.check(h.KernelFile == "Image", "a Pi 4's kernel file is %q, want the arm64 Image the firmware loads", h.KernelFile)
	j.check(h.Kernel == "linux-rpi4", "a Pi 4 runs the kernel %q, want the Pi's own (linuxPackages_rpi4)", h.Kernel)
	j.check(slices.Contains(h.KernelParams, "console=ttyS0,115200") && h.KernelParams[len(h.KernelParams)-1] == "console=ttyS0,115200",
		"a Pi 4's kernel parameters %q lack the serial console (enable_uart=1's ttyS0) as the last console", h.KernelParams)
	if p.Host.Format != plan.FormatSD {
		j.check(h.SDCmdline == "", "a %s host has an SD command line %q", p.Host.Format, h.SDCmdline)
		return
	}
	f := strings.Fields(h.SDCmdline)
	j.check(len(f) > 0 && initParam.MatchString(f[0]), "cmdline.txt %q does not start with the system's init=", h.SDCmdline)
	j.check(len(f) == len(h.KernelParams)+1 && slices.Equal(f[1:], h.KernelParams),
		"cmdline.txt %q does not carry the kernel parameters %q", h.SDCmdline, h.KernelParams)
	j.check(!strings.ContainsAny(h.SDCmdline, "\n\r"), "cmdline.txt %q is more than one line", h.SDCmdline)
}
