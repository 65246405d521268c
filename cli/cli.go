// Package cli holds homestaker's commands, one file each: flags → plan and
// target → the steps → an exit code. main wires it to the process.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

// Exit codes are part of the command-line contract (README, "Exit codes").
const (
	exitOK        = 0
	exitFailure   = 1 // the command ran and failed
	exitUsage     = 2 // wrong flags or arguments
	exitInvalid   = 3 // the answers file has problems
	exitRefused   = 4 // a safety check refused to go on
	exitInterrupt = 130
)

// command is one subcommand of homestaker.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *cliEnv, args []string) int
}

// cliEnv is what a subcommand may touch: its streams and environment.
type cliEnv struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// build, when set, replaces how nix is found and run (tests fake the
	// evaluation and the build of install with it); nil is the real nix.
	build *buildDeps
	// detach, when set, runs an install's apply in a process of its own
	// that outlives the terminal (Main sets it); nil applies in this
	// process.
	detach *detacher
	// kexec, when set, replaces the kexec step's kernel interface and
	// jump (tests); nil is the real kexec.
	kexec *kexecDeps
}

func commands() []command {
	return []command{
		// One line per subcommand, in the order of the README.
		{"install", "the wizard (the default); with --answers FILE, the same without questions", runInstall},
		{"validate", "check an answers file and print every problem with its field path", runValidate},
		{"schema", "print the JSON Schema of the answers file", runSchema},
		{"render", "write the flake for an answers file without touching disks", runRender},
		{"build", "nix build a host's kexec tree or ISO, with progress", runBuild},
		{"detect", "print the detected hardware, disks and network", runDetect},
		{"disk", "list disks, or partition and format the data disk", runDisk},
		{"kexec", "check the machine, carry the network over and boot the node from RAM", runKexec},
		{"flash", "write an ISO or SD image to a USB stick or card, then verify it", runFlash},
		{"reconfigure", "change a host's answers: review the diff, rebuild, boot; every key kept", runReconfigure},
		{"boot", "write the boot entry on the data disk, so the node boots again after a power cut", runBoot},
		{"nix", "install a verified Nix (official release tarball, pinned SHA-256) for root when it is missing", runNix},
		{"image", "assemble a Raspberry Pi 4 SD-card image from a folder of parts", runImage},
		{"attach", "show a running apply's progress, or how the last one ended", runAttach},
	}
}

// Main runs homestaker with the process's own streams and environment and
// returns the exit code; ctx ends on Ctrl-C or SIGTERM.
func Main(ctx context.Context, args []string) int {
	env := &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, detach: newDetacher()}
	return run(ctx, env, args)
}

// run dispatches to a subcommand and returns the exit code.
func run(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		return runWizard(ctx, env)
	}
	name := args[0]
	if name == detachedApplyCmd {
		// Hidden: the detached apply install starts (not in the usage).
		return runDetachedApply(ctx, env, args[1:])
	}
	if name == "-h" || name == "--help" || name == "help" {
		usage(env.stdout)
		return exitOK
	}
	if name == "--version" || name == "version" {
		info, ok := debug.ReadBuildInfo()
		fmt.Fprintln(env.stdout, versionText(info, ok))
		return exitOK
	}
	for _, c := range commands() {
		if c.name == name {
			code := c.run(ctx, env, args[1:])
			if ctx.Err() != nil && code != exitOK {
				return exitInterrupt
			}
			return code
		}
	}
	fmt.Fprintf(env.stderr, "homestaker: unknown command %q\n\n", name)
	usage(env.stderr)
	return exitUsage
}

// versionText is `homestaker --version`: the module version and the VCS
// revision the binary was built from, "devel" when the build recorded none.
func versionText(info *debug.BuildInfo, ok bool) string {
	version := "devel"
	if ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		version = info.Main.Version
	}
	var rev, at string
	modified := false
	if ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	var details []string
	if rev != "" {
		c := "commit " + rev[:min(7, len(rev))]
		if modified {
			c += " with local changes"
		}
		details = append(details, c)
	}
	if len(at) >= 10 {
		details = append(details, at[:10])
	}
	if len(details) == 0 {
		return "homestaker " + version
	}
	return "homestaker " + version + " (" + strings.Join(details, ", ") + ")"
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: homestaker <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'homestaker <command> --help' for a command's flags, 'homestaker --version' for the version.")
}
