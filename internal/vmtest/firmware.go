package vmtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/homestaker/homestaker/internal/testutil"
)

// OVMF's firmware and variable store as Debian's ovmf package installs them.
const (
	ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// Firmware boots of a disk: "uefi" (OVMF) or "bios" (SeaBIOS, QEMU's default).
const (
	UEFI = "uefi"
	BIOS = "bios"
)

// DiskBoot is a guest started by its firmware from a disk, with no -kernel:
// what a machine does after a power cut.
type DiskBoot struct {
	Firmware string
	Disk     string
	// Expect ends the run once the console matches.
	Expect  *regexp.Regexp
	Timeout time.Duration
	// Reboot lets a guest that reboots start again from its firmware, in
	// the same QEMU with the same variable store, as a machine does after
	// a reset; without it QEMU stops when the guest reboots.
	Reboot bool
}

// RequireFirmware skips (fails in CI) a test that needs QEMU, the host
// kernel and, for UEFI, OVMF.
func RequireFirmware(t testing.TB, fw string) {
	t.Helper()
	Require(t)
	if fw == UEFI {
		for _, f := range []string{ovmfCode, ovmfVars} {
			if _, err := os.Stat(f); err != nil {
				testutil.Missing(t, f+" is missing (install ovmf)")
			}
		}
	}
}

// HostKernel is the host's kernel image, which the VM tests boot.
func HostKernel() (string, error) {
	k, _, err := hostKernel()
	return k, err
}

// BootDisk powers a guest on with firmware and the disk, and waits for the
// console to match Expect (then stops it). The console is returned either way.
func BootDisk(ctx context.Context, cfg DiskBoot) (Result, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Minute
	}
	args := []string{
		"-machine", "q35", "-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", "512",
		"-display", "none", "-monitor", "none", "-serial", "stdio", "-nodefaults",
		"-drive", fmt.Sprintf("file=%s,format=raw,if=none,id=disk0,cache=writeback", escapeComma(cfg.Disk)),
		"-device", "virtio-blk-pci,drive=disk0,bootindex=1",
	}
	if !cfg.Reboot {
		args = append(args, "-no-reboot")
	}
	switch cfg.Firmware {
	case UEFI:
		vars, err := os.CreateTemp("", "homestaker-ovmf-vars-")
		if err != nil {
			return Result{}, err
		}
		defer os.Remove(vars.Name())
		src, err := os.Open(ovmfVars)
		if err != nil {
			vars.Close()
			return Result{}, err
		}
		_, err = io.Copy(vars, src)
		src.Close()
		if cerr := vars.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return Result{}, fmt.Errorf("copy the OVMF variable store: %w", err)
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+ovmfCode,
			"-drive", "if=pflash,format=raw,unit=1,file="+escapeComma(vars.Name()))
	case BIOS:
	default:
		return Result{}, fmt.Errorf("firmware %q: want uefi or bios", cfg.Firmware)
	}
	run := runGuest(ctx, "qemu-system-x86_64", args, cfg.Timeout, cfg.Expect)
	res := Result{Console: run.Console, Duration: run.Duration, ExitCode: -1, Matched: run.Matched}
	runErr := run.Err
	if res.Matched {
		return res, nil
	}
	if run.TimedOut {
		return res, fmt.Errorf("the console did not show %v within %s; console:\n%s", cfg.Expect, cfg.Timeout, tail(res.Console, 60))
	}
	return res, fmt.Errorf("the guest stopped (qemu: %v) before the console showed %v; console:\n%s", runErr, cfg.Expect, tail(res.Console, 60))
}

// MarkerInitrd writes an initrd whose /init prints "HOMESTAKER-BOOTED
// <marker> cmdline=<the kernel command line>" on the serial console and
// powers the guest off: it proves which boot entry started the kernel, with
// which command line.
func MarkerInitrd(path, marker string) error {
	return markerInitrd(path, marker, "poweroff")
}

// RebootingInitrd writes an initrd whose /init prints the marker as
// MarkerInitrd's does and then reboots the guest: a generation whose boot
// never completes, so the boot loader's counter is never taken off.
func RebootingInitrd(path, marker string) error {
	return markerInitrd(path, marker, "reboot")
}

func markerInitrd(path, marker, then string) error {
	if strings.ContainsAny(marker, "'\n") {
		return fmt.Errorf("marker %q: no quotes or newlines", marker)
	}
	bb, err := busybox()
	if err != nil {
		return err
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	w := newCpio(bufio.NewWriter(out))
	w.dir("bin")
	w.dir("proc")
	if err := w.fileFrom("bin/busybox", bb, 0o755); err != nil {
		out.Close()
		return err
	}
	w.symlink("bin/sh", "busybox")
	w.file("init", []byte(`#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox echo "HOMESTAKER-BOOTED `+marker+` cmdline=$(/bin/busybox cat /proc/cmdline)" > /dev/console
/bin/busybox sync
/bin/busybox `+then+` -f
`), 0o755)
	if err := w.close(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// CopyFile copies a host file (the kernel, say) into dir, readable by
// tools that run as the test's user.
func CopyFile(t testing.TB, src, dir string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}
