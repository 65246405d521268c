package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/homestaker/homestaker/nixbuild"
	"github.com/homestaker/homestaker/nixinstall"
)

const nixUsage = "usage: homestaker nix install [--yes] [--dry-run] [--url URL]"

// nixInstallHook, when set (by tests), adjusts the installer before it
// runs: the pinned release, the download's temp folder, how nix-store and
// nix-env are run in a prefix.
var nixInstallHook func(*nixinstall.Installer)

// runNix is `homestaker nix install`.
func runNix(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(env.stderr, nixUsage)
		return exitUsage
	}
	switch args[0] {
	case "install":
		return runNixInstall(ctx, env, args[1:])
	case "-h", "--help", "help":
		// install is nix's only command: its flags are nix's help.
		fmt.Fprintln(env.stdout, nixUsage)
		fl, _ := nixInstallFlags(env.stdout)
		fl.PrintDefaults()
		return exitOK
	}
	fmt.Fprintf(env.stderr, "homestaker nix: unknown command %q (want install)\n", args[0])
	return exitUsage
}

type nixInstallOpts struct {
	yes, dryRun *bool
	url         *string
}

func nixInstallFlags(out io.Writer) (*flag.FlagSet, nixInstallOpts) {
	fl := flag.NewFlagSet("nix install", flag.ContinueOnError)
	fl.SetOutput(out)
	return fl, nixInstallOpts{
		yes:    fl.Bool("yes", false, "install without asking (headless)"),
		dryRun: fl.Bool("dry-run", false, "print what would be done, download and change nothing"),
		url:    fl.String("url", "", "download the tarball from this mirror instead of releases.nixos.org (it must match the pinned SHA-256 all the same)"),
	}
}

func runNixInstall(ctx context.Context, env *cliEnv, args []string) int {
	fl, opts := nixInstallFlags(env.stderr)
	yes, dryRun, url := opts.yes, opts.dryRun, opts.url
	if err := fl.Parse(args); err != nil {
		return flagExit(err)
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(env.stderr, "homestaker nix install: unexpected argument %q\n", fl.Arg(0))
		return exitUsage
	}

	deps := env.buildDeps()
	checkCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	nixPath, v, err := findNix(checkCtx, env, deps)
	cancel()
	switch {
	case err == nil && v.AtLeast(nixbuild.MinNixMajor, nixbuild.MinNixMinor):
		fmt.Fprintf(env.stdout, "Nix %s is already installed (%s), and homestaker needs %d.%d or newer: nothing to do.\n", v, nixPath, nixbuild.MinNixMajor, nixbuild.MinNixMinor)
		return exitOK
	case err == nil:
		fmt.Fprintf(env.stdout, "Nix %s (%s) is older than the %d.%d homestaker needs.\n", v, nixPath, nixbuild.MinNixMajor, nixbuild.MinNixMinor)
	default:
		fmt.Fprintf(env.stdout, "No Nix found (homestaker needs %d.%d or newer).\n", nixbuild.MinNixMajor, nixbuild.MinNixMinor)
	}

	in, err := newNixInstaller(env, *url)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker nix install: %v\n", err)
		return exitFailure
	}
	root, rel := in.Root, in.Release
	fmt.Fprintf(env.stdout, "homestaker nix install (single-user, for root) will:\n")
	for i, line := range in.Describe() {
		fmt.Fprintf(env.stdout, "  %d. %s\n", i+1, line)
	}
	if err := in.Preflight(); err != nil {
		fmt.Fprintf(env.stderr, "homestaker nix install: refusing: %v\n", err)
		return exitRefused
	}
	if *dryRun {
		fmt.Fprintln(env.stdout, "dry run: nothing was downloaded or changed.")
		return exitOK
	}
	if filepath.Clean(root) == "/" && os.Geteuid() != 0 {
		fmt.Fprintln(env.stderr, "homestaker nix install: refusing: this installs Nix for root into /nix; run it as root (sudo homestaker nix install)")
		return exitRefused
	}
	if !*yes {
		fmt.Fprintf(env.stderr, "Install Nix %s for root into %s? Type yes to go on: ", rel.Version, filepath.Join(root, "nix"))
		line, err := bufio.NewReader(env.stdin).ReadString('\n')
		if err != nil && err != io.EOF || strings.TrimSpace(line) != "yes" {
			fmt.Fprintln(env.stderr, "\nhomestaker nix install: not confirmed; nothing was installed (--yes installs without asking)")
			return exitRefused
		}
	}

	in.Progress = nixProgress(env)
	res, err := in.Install(ctx)
	var ce *nixinstall.ChecksumError
	switch {
	case errors.As(err, &ce):
		fmt.Fprintf(env.stderr, "homestaker nix install: %v\n", err)
		return exitRefused
	case err != nil:
		fmt.Fprintf(env.stderr, "homestaker nix install: %v\n", err)
		return exitFailure
	}
	bin := filepath.Join(res.Profile, "bin")
	fmt.Fprintf(env.stdout, "Nix %s is installed: %s (%d store paths added), in root's profile %s.\n", rel.Version, res.NixPath, res.StorePaths, res.Profile)
	fmt.Fprintf(env.stdout, "homestaker finds it there; for your shell: . %s/etc/profile.d/nix.sh (or PATH=%s:$PATH)\n", res.Profile, bin)
	if nixPath != "" && filepath.Dir(nixPath) != bin {
		fmt.Fprintf(env.stdout, "The older %s is still on PATH and comes first: remove it (e.g. apt-get remove nix-bin) or put %s first on PATH.\n", nixPath, bin)
	}
	return exitOK
}

// newNixInstaller is the installer of the pinned release for this machine
// into the system root's /nix (`homestaker nix install`, and install's nix
// step), downloading from url ("": releases.nixos.org).
func newNixInstaller(env *cliEnv, url string) (*nixinstall.Installer, error) {
	rel, err := nixinstall.ForSystem("")
	if err != nil {
		return nil, err
	}
	root := env.getenv(systemRootEnv)
	if root == "" {
		root = "/"
	}
	in := &nixinstall.Installer{Root: root, Release: rel, URL: url}
	if nixInstallHook != nil {
		nixInstallHook(in)
	}
	return in, nil
}

// nixProgress prints the install's phases and the download every 10%.
func nixProgress(env *cliEnv) func(nixinstall.Progress) {
	phase, lastTenth := "", int64(-1)
	return func(p nixinstall.Progress) {
		if p.Phase != phase {
			phase = p.Phase
			if p.Phase != "download" {
				fmt.Fprintf(env.stderr, "nix install: %s\n", p.Phase)
			}
		}
		if p.Phase == "download" {
			if p.Total > 0 {
				if tenth := p.Done * 10 / p.Total; tenth != lastTenth {
					lastTenth = tenth
					fmt.Fprintf(env.stderr, "nix install: download %3d%% (%.1f of %.1f MB)\n", tenth*10, float64(p.Done)/1e6, float64(p.Total)/1e6)
				}
			} else if p.Done/(10<<20) != lastTenth {
				lastTenth = p.Done / (10 << 20)
				fmt.Fprintf(env.stderr, "nix install: download %.1f MB\n", float64(p.Done)/1e6)
			}
		}
	}
}
