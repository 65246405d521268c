package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/homestaker/homestaker/media"
	"github.com/homestaker/homestaker/nixbuild"
)

// runImage is `homestaker image sd --parts DIR --out FILE`: a Raspberry Pi
// 4 SD-card image from a folder of parts (what an sd host's build makes, or
// parts built elsewhere), with the same code `homestaker build` uses.
func runImage(ctx context.Context, env *cliEnv, args []string) int {
	help := len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help")
	if len(args) == 0 || (args[0] != "sd" && !help) {
		fmt.Fprintln(env.stderr, "usage: homestaker image sd --parts DIR --out FILE")
		return exitUsage
	}
	if help {
		args = []string{"sd", "--help"} // the only image there is
	}
	fl := flag.NewFlagSet("image sd", flag.ContinueOnError)
	fl.SetOutput(env.stderr)
	partsDir := fl.String("parts", "", "the parts folder: Image, initrd, cmdline.txt, the Pi 4 firmware, *.dtb and overlays/")
	out := fl.String("out", "", "the image file to write (replaced atomically)")
	fl.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: homestaker image sd --parts DIR --out FILE")
		fmt.Fprintln(env.stderr, "Assembles a Raspberry Pi 4 SD-card image: an MBR with one FAT32 boot partition")
		fmt.Fprintln(env.stderr, "holding the parts and config.txt. The same parts give the same image.")
		fl.PrintDefaults()
	}
	if err := fl.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(env.stderr, "homestaker image sd: unexpected argument %q\n", fl.Arg(0))
		return exitUsage
	}
	if *partsDir == "" || *out == "" {
		fmt.Fprintln(env.stderr, "homestaker image sd: --parts DIR and --out FILE are both required")
		return exitUsage
	}
	parts, err := media.ReadParts(*partsDir)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker image sd: %v\n", err)
		var pe *media.PartsError
		if errors.As(err, &pe) {
			return exitInvalid
		}
		return exitFailure
	}
	start := time.Now()
	img, err := media.Assemble(ctx, parts, *out)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker image sd: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(env.stdout, "Wrote %s in %s: %s, one FAT32 partition (type 0x0c, label %s) of %s at %s, disk identifier %08x.\n",
		img.Path, time.Since(start).Round(time.Millisecond), nixbuild.FormatBytes(uint64(img.Size)), media.VolumeLabel,
		nixbuild.FormatBytes(uint64(img.PartitionSize)), nixbuild.FormatBytes(uint64(img.PartitionStart)), img.DiskSignature)
	for _, f := range img.Files {
		fmt.Fprintf(env.stdout, "  %-28s %10s  sha256:%s\n", f.Name, nixbuild.FormatBytes(uint64(f.Size)), f.SHA256)
	}
	fmt.Fprintf(env.stdout, "Image sha256:%s\n", img.SHA256)
	fmt.Fprintf(env.stdout, "Kernel command line: %s\n", parts.Cmdline)
	fmt.Fprintf(env.stdout, "Write it to the card with: homestaker flash --image %s --device /dev/disk/by-id/…\n", img.Path)
	return exitOK
}
