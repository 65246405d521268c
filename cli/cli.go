// Package cli holds homestaker's commands, one file each: flags → plan and
// target → the steps → an exit code. main wires it to the process.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
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
		{"reconfigure", "change a host's answers: review the diff, rebuild and boot; keys and secrets kept, the data disk not formatted", runReconfigure},
		{"boot", "write the boot entry on the data disk, so the node boots again after a power cut", runBoot},
		{"nix", "install a verified Nix (official release tarball, pinned SHA-256) for root when it is missing", runNix},
		{"image", "assemble a Raspberry Pi 4 SD-card image from a folder of parts", runImage},
	}
}

// Main runs homestaker with the process's own streams and environment and
// returns the exit code; ctx ends on Ctrl-C or SIGTERM.
func Main(ctx context.Context, args []string) int {
	env := &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	return run(ctx, env, args)
}

// run dispatches to a subcommand and returns the exit code.
func run(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		return runWizard(ctx, env)
	}
	name := args[0]
	if name == "-h" || name == "--help" || name == "help" {
		usage(env.stdout)
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

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: homestaker <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'homestaker <command> --help' for a command's flags.")
}
