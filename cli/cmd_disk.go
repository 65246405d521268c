package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/report"
	"github.com/homestaker/homestaker/secrets"
	"github.com/homestaker/homestaker/steps"
)

// systemRootEnv points disk discovery at a recorded machine instead of "/"
// (tests use the fixtures under disk/testdata).
const systemRootEnv = "HOMESTAKER_SYSTEM_ROOT"

// runDisk is `homestaker disk list|format`.
func runDisk(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(env.stderr, "usage: homestaker disk list [--json] | homestaker disk format --answers FILE [flags]")
		return exitUsage
	}
	sys := disk.System{Root: env.getenv(systemRootEnv)}
	switch args[0] {
	case "list":
		return runDiskList(env, sys, args[1:])
	case "format":
		return runDiskFormat(ctx, env, sys, args[1:])
	case "-h", "--help", "help":
		fmt.Fprintln(env.stdout, "usage: homestaker disk list [--json] | homestaker disk format --answers FILE [flags]")
		return exitOK
	}
	fmt.Fprintf(env.stderr, "homestaker disk: unknown command %q (want list or format)\n", args[0])
	return exitUsage
}

func runDiskList(env *cliEnv, sys disk.System, args []string) int {
	fl := flag.NewFlagSet("disk list", flag.ContinueOnError)
	fl.SetOutput(env.stderr)
	asJSON := fl.Bool("json", false, "print the disks as JSON")
	if err := fl.Parse(args); err != nil {
		return flagExit(err)
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(env.stderr, "homestaker disk list: unexpected argument %q\n", fl.Arg(0))
		return exitUsage
	}
	devs, err := disk.Discover(sys)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker disk list: %v\n", err)
		return exitFailure
	}
	if *asJSON {
		if devs == nil {
			devs = []disk.BlockDevice{}
		}
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(devs); err != nil {
			return exitFailure
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DISK\tSIZE\tMODEL\tTYPE\tIN USE\tBY-ID")
	for _, d := range devs {
		kind := "ssd"
		if d.Rotational {
			kind = "hdd"
		}
		if d.Removable {
			kind += ",removable"
		}
		use := "no"
		if d.InUse {
			use = "yes: " + d.InUseReason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Path, sizeText(d.SizeBytes), d.Model, kind, use, d.ByID)
	}
	tw.Flush()
	return exitOK
}

func sizeText(n uint64) string { return disk.SizeText(n) }

func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

func runDiskFormat(ctx context.Context, env *cliEnv, sys disk.System, args []string) int {
	fl := flag.NewFlagSet("disk format", flag.ContinueOnError)
	fl.SetOutput(env.stderr)
	answers := fl.String("answers", "", "the answers file (homestaker.json)")
	image := fl.String("image", "", "write to this image file instead of the plan's disk")
	sizeFlag := fl.String("size", "", "size of a new image, in bytes or with K/M/G/T (binary) suffix")
	sectorFlag := fl.Uint64("sector-size", 512, "logical sector size of the image: 512 or 4096")
	hostKey := fl.String("host-key", "", "SSH host private key to put in "+disk.SSHHostKeyPath+" (default: the host's key in the private folder)")
	private := fl.String("private", "", "the private `folder` 'homestaker render' kept the host key in (default $XDG_STATE_HOME/homestaker)")
	dryRun := fl.Bool("dry-run", false, "print the partition table and every command, write nothing")
	yes := fl.Bool("yes", false, "do not ask (needs --confirm-device)")
	confirm := fl.String("confirm-device", "", "the device (or image) to erase, named again, with --yes")
	if err := fl.Parse(args); err != nil {
		return flagExit(err)
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(env.stderr, "homestaker disk format: unexpected argument %q\n", fl.Arg(0))
		return exitUsage
	}
	if *answers == "" {
		fmt.Fprintln(env.stderr, "homestaker disk format: --answers FILE is required")
		return exitUsage
	}
	if *yes != (*confirm != "") {
		fmt.Fprintln(env.stderr, "homestaker disk format: --yes and --confirm-device PATH go together: name the disk you are erasing")
		return exitUsage
	}
	p, _, code := loadAnswers(env, *answers)
	if code >= 0 {
		return code
	}
	layout, err := disk.New(p)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker disk format: answers file %s: %v\n", *answers, err)
		return exitInvalid
	}
	keyPath, code := diskHostKey(env, *answers, p, *hostKey, *private)
	if code >= 0 {
		return code
	}
	out := env.stderr
	if *dryRun {
		out = env.stdout
	}
	pr := &eventPrinter{w: out, quiet: true, prefix: disk.ReportStep + ": "}
	t := &steps.Target{Plan: p, System: sys}
	step := steps.DiskStep{HostKeyFile: keyPath, DryRun: *dryRun}
	// The staging copy of the host key goes in the private folder the key
	// came from (or --private); a --host-key FILE alone keeps it in that
	// key's own folder.
	if *hostKey == "" || *private != "" {
		if dir, err := privateDir(env, *private); err == nil {
			step.PrivateDir = dir
		}
	}
	fail := func(err error) int { return formatFailure(env, err) }

	if *image != "" {
		st, err := os.Stat(*image)
		exists := err == nil
		switch {
		case exists:
		case !errors.Is(err, fs.ErrNotExist):
			return fail(err)
		case *sizeFlag == "":
			fmt.Fprintf(env.stderr, "homestaker disk format: image %s does not exist: give --size to create it\n", *image)
			return exitUsage
		default:
			if step.ImageSize, err = parseSize(*sizeFlag); err != nil {
				fmt.Fprintf(env.stderr, "homestaker disk format: --size: %v\n", err)
				return exitUsage
			}
		}
		step.Image, step.SectorSize = *image, *sectorFlag
		if exists {
			step.ImageSize = uint64(st.Size())
		}
		if _, err := layout.Place(step.ImageSize, *sectorFlag); err != nil {
			return fail(fmt.Errorf("image %s: %w", *image, err))
		}
		if exists && !*dryRun {
			if code := confirmTarget(env, *yes, *confirm, *image, []string{*image}); code != exitOK {
				return code
			}
		}
	} else {
		t.ResolveDisk()
		if t.DiskErr != nil {
			return fail(t.DiskErr)
		}
		if !*dryRun {
			describeErase(env.stderr, p, *t.Disk, *t.Layout)
			if code := confirmTarget(env, *yes, *confirm, p.Disk.Device, steps.EraseNames(p, *t.Disk)); code != exitOK {
				return code
			}
		}
		t.Confirmed = t.Disk.Path
	}
	if err := steps.Run(ctx, t, []steps.Step{step}, steps.Options{Emit: pr.emit}); err != nil {
		return fail(err)
	}
	return exitOK
}

// diskHostKey finds the host key disk format puts on the data disk: the
// --host-key file, else the host's key in the private folder (--private, or
// render's default). The key must match the answers' ssh.hostKey when that
// is set, because the flake's secrets are encrypted to it. code >= 0 means
// stop: the key is missing (exitRefused, naming the file and what to do),
// unreadable, or another key.
func diskHostKey(env *cliEnv, answersPath string, p plan.Plan, keyFlag, privateFlag string) (string, int) {
	const cmd = "homestaker disk format"
	path := keyFlag
	if path == "" {
		dir, err := privateDir(env, privateFlag)
		if err != nil {
			fmt.Fprintf(env.stderr, "%s: %v\n", cmd, err)
			return "", exitUsage
		}
		path = secrets.HostKeyPath(dir, p.Host.Name)
	}
	key, err := secrets.ReadHostKeyFile(path, p.Host.Name)
	if errors.Is(err, fs.ErrNotExist) {
		what := "the host key file " + path
		if keyFlag == "" {
			what = "the SSH host key of " + p.Host.Name + " (" + path + ")"
		}
		fmt.Fprintf(env.stderr, "%s: refusing: %s does not exist; nothing was written.\n"+
			"The flake's secrets are encrypted to the host key 'homestaker render' made, and the node reads that key from the data disk.\n"+
			"Run 'homestaker render --answers %s --out DIR' first (it makes the key), or give the folder render used with --private DIR, or the key itself with --host-key FILE.\n",
			cmd, what, answersPath)
		return "", exitRefused
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "%s: refusing: %v; nothing was written\n", cmd, err)
		return "", exitRefused
	}
	if p.SSH.HostKey != "" && !secrets.SamePublicKey(p.SSH.HostKey, key.PublicKey) {
		fmt.Fprintf(env.stderr, "%s: refusing: the answers %s name the host key %s (ssh.hostKey), but %s is %s; nothing was written.\n"+
			"The flake's secrets are encrypted to the answers' key: give that key with --host-key FILE or --private DIR, or render the flake again with this one.\n",
			cmd, answersPath, p.SSH.HostKey, path, key.PublicKey)
		return "", exitRefused
	}
	return path, -1
}

// formatFailure prints a disk-format error and maps it to its exit code.
func formatFailure(env *cliEnv, err error) int {
	code := exitCode(err)
	var se *steps.Error
	if errors.As(err, &se) {
		err = se.Err // the step's name is the command's
	}
	fmt.Fprintf(env.stderr, "homestaker disk format: %v\n", err)
	return code
}

// describeErase says which disk is erased and the partition table it gets.
func describeErase(w io.Writer, p plan.Plan, target disk.BlockDevice, placed disk.Layout) {
	fmt.Fprintf(w, "This erases %s (%s)", p.Disk.Device, steps.EraseDetail(p, target))
	if len(target.Partitions) > 0 {
		fmt.Fprintf(w, " and its partitions %s", strings.Join(target.Partitions, ", "))
	}
	fmt.Fprintf(w, ":\n%s", placed.String())
}

// confirmTarget asks for the target to be named: headless with --yes
// --confirm-device, interactively by typing it. names are the accepted spellings.
func confirmTarget(env *cliEnv, yes bool, confirm, shown string, names []string) int {
	return confirmTargetFor(env, "disk format", yes, confirm, shown, names)
}

// confirmTargetFor is confirmTarget for the subcommand cmd ("flash"), which
// its messages name.
func confirmTargetFor(env *cliEnv, cmd string, yes bool, confirm, shown string, names []string) int {
	matches := func(s string) bool {
		for _, n := range names {
			if s == n {
				return true
			}
		}
		return false
	}
	if yes {
		if matches(confirm) {
			return exitOK
		}
		fmt.Fprintf(env.stderr, "homestaker %s: refusing: --confirm-device %q does not name the target %s\n", cmd, confirm, shown)
		return exitRefused
	}
	fmt.Fprintf(env.stderr, "Everything on %s will be lost. Type its path to go on: ", shown)
	line, err := bufio.NewReader(env.stdin).ReadString('\n')
	if err != nil && err != io.EOF || !matches(strings.TrimSpace(line)) {
		fmt.Fprintf(env.stderr, "\nhomestaker %s: refusing: the typed path does not name %s; nothing was written\n", cmd, shown)
		return exitRefused
	}
	return exitOK
}

// printEvent writes a progress event as a line; commands start with "$".
func printEvent(w io.Writer, e report.Event) {
	if e.Command != nil {
		prefix := "$ "
		if strings.HasPrefix(e.Message, "would ") {
			prefix = "would run: "
		}
		fmt.Fprintf(w, "%s%s\n", prefix, strings.Join(e.Command, " "))
		return
	}
	fmt.Fprintf(w, "%s: %s\n", e.Step, strings.TrimRight(e.Message, "\n"))
}

// parseSize reads "4T", "512G", "1048576", "8GiB" as bytes (binary units).
func parseSize(s string) (uint64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "IB"), "B")
	mult := uint64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil || n == 0 || n > (1<<63)/mult {
		return 0, fmt.Errorf("%q is not a size such as 8G or 4T", s)
	}
	return n * mult, nil
}
