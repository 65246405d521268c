package main

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

	"github.com/homestaker/homestaker/image"
	"github.com/homestaker/homestaker/secrets"
)

// detachedJumpArg is the hidden sub-mode the kexec command re-executes
// itself with: detached from the terminal, it waits, syncs and jumps.
const detachedJumpArg = "--detached-jump"

// kexecDeps are the capabilities runKexec uses; tests replace them.
type kexecDeps struct {
	kexec *image.Kexec
	// startJump starts the detached jump after delay and returns the
	// path of its log.
	startJump func(delay time.Duration) (string, error)
}

func defaultKexecDeps(env *cliEnv) kexecDeps {
	return kexecDeps{
		kexec:     &image.Kexec{Root: env.getenv(systemRootEnv)},
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

	req := image.KexecRequest{Image: image.KexecImage{Kernel: *kernel, Initrd: *initrd, Cmdline: *cmdline}}
	var hostName string
	if fromFlake {
		found, err := image.FindKexecImage(ctx, positional[0], *host)
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
		req.KnownHosts = firstKnownHostsLine(string(data))
		if _, _, err := image.HostKeyFingerprint(req.KnownHosts); err != nil {
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

	tmp, err := os.MkdirTemp("", "homestaker-kexec-")
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker kexec: %v\n", err)
		return exitFailure
	}
	req.TempDir = tmp
	keepTmp := *dryRun
	defer func() {
		if !keepTmp {
			os.RemoveAll(tmp)
		}
	}()

	k := deps.kexec
	fmt.Fprintln(env.stdout, "Checks:")
	pre, err := k.Preflight(ctx, req)
	image.WriteChecks(env.stdout, pre.Checks)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker kexec: %v\n", err)
		return exitFailure
	}
	if !pre.OK() {
		var names []string
		for _, c := range pre.Refused() {
			names = append(names, c.Name)
		}
		fmt.Fprintf(env.stderr, "homestaker kexec: refused (%s); nothing was loaded\n", strings.Join(names, ", "))
		return exitRefused
	}

	carry, err := k.PrepareCarry(req, pre)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker kexec: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(env.stdout, "Carry-over archive (%d bytes) appended to the initrd copy\n  %s\n", carry.ArchiveBytes, carry.Initrd)
	for _, f := range carry.Files {
		fmt.Fprintf(env.stdout, "  %-36s %5d bytes\n", f.Path, len(f.Data))
	}
	if *dryRun {
		image.WriteReconnect(env.stdout, pre.Carried, req.KnownHosts)
		fmt.Fprintf(env.stdout, "Dry run: nothing was loaded. The initrd copy stays in\n  %s\n", tmp)
		return exitOK
	}
	if !*yes {
		fmt.Fprint(env.stderr, "This ends the running system (and this SSH session) and boots the node\nfrom RAM. Type yes to go on: ")
		line, err := bufio.NewReader(env.stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) || strings.TrimSpace(line) != "yes" {
			fmt.Fprintln(env.stderr, "\nhomestaker kexec: not confirmed; nothing was loaded (--yes skips this question)")
			return exitRefused
		}
	}
	method, err := k.Load(ctx, image.KexecImage{Kernel: req.Image.Kernel, Initrd: carry.Initrd, Cmdline: req.Image.Cmdline})
	if err != nil {
		var le *image.LoadError
		if errors.As(err, &le) {
			fmt.Fprintf(env.stderr, "homestaker kexec: %s failed: %v\n", le.Call, le.Err)
			fmt.Fprintf(env.stderr, "%s\n%s\n", le.Meaning, le.Fix)
		} else {
			fmt.Fprintf(env.stderr, "homestaker kexec: %v\n", err)
		}
		return exitFailure
	}
	// The kernel holds its own copy now; the file would only take RAM.
	os.Remove(carry.Initrd)
	fmt.Fprintf(env.stdout, "Loaded the node's kernel with %s.\n", method)
	image.WriteReconnect(env.stdout, pre.Carried, req.KnownHosts)
	logPath, err := deps.startJump(*delay)
	if err != nil {
		fmt.Fprintf(env.stderr, "homestaker kexec: start the jump: %v; the kernel is loaded: 'kexec -e' starts it\n", err)
		return exitFailure
	}
	fmt.Fprintf(env.stdout, "Jumping in %s; this session will end. If the machine is still up\n10 s later, see %s.\n", *delay, logPath)
	return exitOK
}

// firstKnownHostsLine returns the first line that is not blank or a comment.
func firstKnownHostsLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			return t
		}
	}
	return ""
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
	k := &image.Kexec{}
	if err := k.Jump(ctx, delay); err != nil {
		fmt.Fprintf(env.stderr, "homestaker kexec: %v\n", err)
		return exitFailure
	}
	return exitOK
}
