package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/homestaker/homestaker/boot"
	"github.com/homestaker/homestaker/secrets"
	"github.com/homestaker/homestaker/steps"
)

// detachedJumpArg is the hidden sub-mode the kexec command re-executes
// itself with: detached from the terminal, it waits, syncs and jumps.
const detachedJumpArg = "--detached-jump"

// kexecDeps are the capabilities runKexec uses; tests replace them.
type kexecDeps struct {
	kexec *boot.Kexec
	// startJump starts the detached jump after delay and returns the
	// path of its log.
	startJump func(delay time.Duration) (string, error)
}

func defaultKexecDeps(env *cliEnv) kexecDeps {
	if env.kexec != nil {
		return *env.kexec
	}
	return kexecDeps{
		kexec:     &boot.Kexec{Root: env.getenv(systemRootEnv)},
		startJump: startDetachedJump,
	}
}

// runKexec is `homestaker kexec DIR [--host NAME]` and
// `homestaker kexec --kernel K --initrd I --cmdline C`.
func runKexec(ctx context.Context, env *cliEnv, args []string) int {
	if len(args) > 0 && args[0] == detachedJumpArg {
		return runDetachedJump(ctx, env, args[1:])
	}
	return runKexecWith(ctx, env, args, defaultKexecDeps(env))
}

func runKexecWith(ctx context.Context, env *cliEnv, args []string, deps kexecDeps) int {
	fs := flag.NewFlagSet("kexec", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	host := fs.String("host", "", "the host to boot (needed when the flake has several)")
	kernel := fs.String("kernel", "", "boot this kernel instead of a flake's build (with --initrd, --cmdline)")
	initrd := fs.String("initrd", "", "the initrd to boot with --kernel")
	cmdline := fs.String("cmdline", "", "the kernel command line with --kernel")
	answers := fs.String("answers", "", "the node's answers (homestaker.json), to check its SSH keys and data disk with --kernel")
	knownHosts := fs.String("known-hosts", "", "the node's known_hosts file, with --kernel (default: from the answers' ssh.hostKey)")
	dryRun := fs.Bool("dry-run", false, "run every check and build the carry-over archive, load nothing")
	yes := fs.Bool("yes", false, "do not ask before ending the running system")
	delay := fs.Duration("delay", 3*time.Second, "how long to wait after loading before the jump, so the SSH session ends cleanly")
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, "usage: homestaker kexec DIR [--host NAME] [--dry-run] [--yes]")
		fmt.Fprintln(env.stderr, "       homestaker kexec --kernel K --initrd I --cmdline C [--answers FILE] [--dry-run] [--yes]")
		fmt.Fprintln(env.stderr, "Checks this machine (root, kexec, Secure Boot, architecture, RAM, SSH key, data")
		fmt.Fprintln(env.stderr, "disk, network), carries the network over to the node and boots it from RAM.")
		fs.PrintDefaults()
	}
	positional, err := parseInterleaved(fs, args)
	if err != nil {
		return flagExit(err)
	}
	usageErr := func(msg string) int {
		fmt.Fprintf(env.stderr, "homestaker kexec: %s\n", msg)
		return exitUsage
	}
	fromFlake := len(positional) > 0
	switch {
	case len(positional) > 1:
		return usageErr("give one flake folder")
	case fromFlake && (*kernel != "" || *initrd != "" || *cmdline != "" || *answers != "" || *knownHosts != ""):
		return usageErr("give either a flake folder or --kernel/--initrd/--cmdline, not both")
	case !fromFlake && (*kernel == "" || *initrd == "" || *cmdline == ""):
		return usageErr("give a flake folder (the one 'homestaker render' wrote), or all of --kernel, --initrd and --cmdline")
	case !fromFlake && *host != "":
		return usageErr("--host goes with a flake folder")
	case *delay < 0 || *delay > time.Minute:
		return usageErr("--delay must be between 0s and 1m")
	}

	req := boot.KexecRequest{Image: boot.KexecImage{Kernel: *kernel, Initrd: *initrd, Cmdline: *cmdline}}
	var hostName string
	if fromFlake {
		found, err := boot.FindKexecImage(ctx, positional[0], *host)
		if err != nil {
			fmt.Fprintf(env.stderr, "homestaker kexec: %v\n", err)
			return targetExit(err)
		}
		req.Image = found.KexecImage
		hostName = found.Target.Host
		*answers = found.AnswersPath
		if found.KnownHostsPath != "" {
			*knownHosts = found.KnownHostsPath
		}
		fmt.Fprintf(env.stdout, "Booting host %s, built %s:\n  kernel  %s\n  initrd  %s\n  cmdline %s\n",
			hostName, found.Manifest.BuiltAt.Format("2006-01-02 15:04 MST"), req.Image.Kernel, req.Image.Initrd, req.Image.Cmdline)
	}
	if *answers != "" {
		p, res, err := readAnswers(*answers)
		if err != nil {
			fmt.Fprintf(env.stderr, "homestaker kexec: %s: %v\n", *answers, err)
			return exitFailure
		}
		if !res.OK() {
			printResult(env.stderr, *answers, res)
			return exitInvalid
		}
		req.Plan, req.PlanSource = &p, *answers
		hostName = p.Host.Name
	}
	if *knownHosts != "" {
		data, err := os.ReadFile(*knownHosts)
		if err != nil {
			fmt.Fprintf(env.stderr, "homestaker kexec: --known-hosts: %v\n", err)
			return exitFailure
		}
		req.KnownHosts = steps.FirstKnownHostsLine(string(data))
		if _, _, err := boot.HostKeyFingerprint(req.KnownHosts); err != nil {
			fmt.Fprintf(env.stderr, "homestaker kexec: %s: %v\n", *knownHosts, err)
			return exitInvalid
		}
	} else if req.Plan != nil && req.Plan.SSH.HostKey != "" {
		line, err := secrets.KnownHostsLine(req.Plan.SSH.HostKey, hostName)
		if err != nil {
			fmt.Fprintf(env.stderr, "homestaker kexec: %s: ssh.hostKey: %v\n", *answers, err)
			return exitInvalid
		}
		req.KnownHosts = line
	}

	step := steps.KexecStep{Kexec: deps.kexec, StartJump: deps.startJump, Delay: *delay, DryRun: *dryRun, Request: &req}
	if !*yes {
		step.Confirm = func() error {
			fmt.Fprint(env.stderr, "This ends the running system (and this SSH session) and boots the node\nfrom RAM. Type yes to go on: ")
			line, err := bufio.NewReader(env.stdin).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) || strings.TrimSpace(line) != "yes" {
				return errors.New("not confirmed (--yes skips this question)")
			}
			return nil
		}
	}
	t := &steps.Target{}
	if req.Plan != nil {
		t.Plan = *req.Plan
	}
	pr := &eventPrinter{w: env.stdout, quiet: true}
	if err := steps.Run(ctx, t, []steps.Step{step}, steps.Options{Emit: pr.emit}); err != nil {
		reportFailure(env.stderr, "kexec", err)
		return exitCode(err)
	}
	return exitOK
}

// startDetachedJump re-executes homestaker in a new session with its input
// and output on /dev/null and its errors in a log, so it outlives the SSH
// session that started it; it jumps after delay.
func startDetachedJump(delay time.Duration) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer null.Close()
	logPath := filepath.Join(os.TempDir(), fmt.Sprintf("homestaker-kexec-jump-%d.log", os.Getpid()))
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	defer logf.Close()
	cmd := exec.Command(self, "kexec", detachedJumpArg, delay.String())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	return logPath, cmd.Process.Release()
}

// runDetachedJump is the hidden sub-mode: wait, sync, jump into the
// loaded kernel.
func runDetachedJump(ctx context.Context, env *cliEnv, args []string) int {
	signal.Ignore(syscall.SIGHUP)
	if len(args) != 1 {
		fmt.Fprintln(env.stderr, "homestaker kexec: internal: "+detachedJumpArg+" takes one delay")
		return exitUsage
	}
	delay, err := time.ParseDuration(args[0])
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker kexec: internal: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(env.stderr, "%s: jumping into the loaded kernel in %s\n", time.Now().Format(time.RFC3339), delay)
	k := &boot.Kexec{}
	if err := k.Jump(ctx, delay); err != nil {
		fmt.Fprintf(env.stderr, "homestaker kexec: %v\n", err)
		return exitFailure
	}
	return exitOK
}
