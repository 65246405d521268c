package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/homestaker/homestaker/boot"
	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/report"
)

const bootUsage = "usage: homestaker boot install (--device DEV | --image IMG) --kernel K --initrd I --cmdline TEXT --loader DIR [--firmware uefi|bios] [--dry-run]"

// runBoot is `homestaker boot install`.
func runBoot(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(env.stderr, bootUsage)
		return exitUsage
	}
	switch args[0] {
	case "install":
		return runBootInstall(ctx, env, args[1:])
	case "-h", "--help", "help":
		fmt.Fprintln(env.stdout, bootUsage)
		return exitOK
	}
	fmt.Fprintf(env.stderr, "homestaker boot: unknown command %q (want install)\n", args[0])
	return exitUsage
}

func runBootInstall(ctx context.Context, env *cliEnv, args []string) int {
	fl := flag.NewFlagSet("boot install", flag.ContinueOnError)
	fl.SetOutput(env.stderr)
	device := fl.String("device", "", "the data disk (formatted by homestaker disk format)")
	image := fl.String("image", "", "an image file of the data disk, instead of --device")
	kernel := fl.String("kernel", "", "the node's kernel (bzImage of the kexec tree)")
	initrd := fl.String("initrd", "", "the node's initrd (initrd.zst of the kexec tree)")
	cmdline := fl.String("cmdline", "", "the kernel command line, e.g. \"init=/nix/store/…/init loglevel=4\"")
	loader := fl.String("loader", "", "folder with the boot loader from the build: systemd-bootx64.efi (UEFI), or GRUB's i386-pc folder with boot.img and core.img (BIOS)")
	firmware := fl.String("firmware", "", "uefi (systemd-boot) or bios (GRUB); default: this machine's firmware")
	dryRun := fl.Bool("dry-run", false, "read the disk and print every step, write nothing")
	if err := fl.Parse(args); err != nil {
		return flagExit(err)
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(env.stderr, "homestaker boot install: unexpected argument %q\n", fl.Arg(0))
		return exitUsage
	}
	if (*device == "") == (*image == "") {
		fmt.Fprintln(env.stderr, "homestaker boot install: name the data disk with exactly one of --device DEV and --image IMG")
		return exitUsage
	}
	fw := boot.Firmware(*firmware)
	switch fw {
	case "":
		fw = boot.RunningFirmware(env.getenv(systemRootEnv))
		fmt.Fprintf(env.stderr, "boot: this machine booted with %s firmware; the entry uses %s (--firmware overrides)\n", fw, loaderName(fw))
	case boot.UEFI, boot.BIOS:
	default:
		fmt.Fprintf(env.stderr, "homestaker boot install: --firmware %q: want uefi or bios\n", *firmware)
		return exitUsage
	}
	path := *device
	if path == "" {
		path = *image
	}
	out := env.stderr
	if *dryRun {
		out = env.stdout
	}
	in := &boot.Installer{
		Reporter: report.Func(func(e report.Event) { printEvent(out, e) }),
		SysRoot:  env.getenv(systemRootEnv),
	}
	_, res, err := in.WriteEntry(ctx, boot.EntryRequest{
		Path: path, Image: *image != "",
		Generation: boot.Generation{Kernel: *kernel, Initrd: *initrd, Cmdline: *cmdline},
		Options:    boot.Options{Firmware: fw, LoaderDir: *loader, DryRun: *dryRun},
	})
	var kind *boot.KindError
	if errors.As(err, &kind) {
		flag := "--device"
		if kind.Image {
			flag = "--image"
		}
		fmt.Fprintf(env.stderr, "homestaker boot install: %s %v\n", flag, err)
		return exitUsage
	}
	if err != nil {
		return bootFailure(env, err)
	}
	if !*dryRun {
		fmt.Fprintf(env.stdout, "%s boots generation %d with %s", path, res.Generation, loaderName(fw))
		if res.Unchanged {
			fmt.Fprint(env.stdout, " (unchanged: it already booted this kernel, initrd and command line)")
		}
		if res.Fallback != 0 {
			fmt.Fprintf(env.stdout, "; generation %d is the fallback", res.Fallback)
			if res.Tries > 0 && !res.Unchanged {
				fmt.Fprintf(env.stdout, ", booted by itself after %d starts of generation %d that never complete a boot (%s)", res.Tries, res.Generation, res.Entry)
			}
		}
		fmt.Fprintln(env.stdout)
	}
	return exitOK
}

func loaderName(fw boot.Firmware) string {
	if fw == boot.BIOS {
		return "GRUB"
	}
	return "systemd-boot"
}

// bootFailure prints a boot-install error and maps it to its exit code.
func bootFailure(env *cliEnv, err error) int {
	fmt.Fprintf(env.stderr, "homestaker boot install: %v\n", err)
	var refused *disk.RefusedError
	if errors.As(err, &refused) {
		return exitRefused
	}
	return exitFailure
}
