package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/homestaker/homestaker/boot"
	"github.com/homestaker/homestaker/secrets"
)

// KexecStep boots the node from RAM on this machine: preflight checks,
// the network carried over, load, and a jump a few seconds later from a
// detached process, so the SSH session ends cleanly. In an apply it was
// confirmed at the review; it asks nothing.
type KexecStep struct {
	Kexec *boot.Kexec
	// StartJump starts the detached jump after Delay and returns the path
	// of its log.
	StartJump func(delay time.Duration) (string, error)
	Delay     time.Duration
	// DryRun runs every check and builds the carry-over archive, and
	// loads nothing.
	DryRun bool
	// Request, when set, is what to boot (kexec --kernel …, or a flake's
	// build the command found); nil: the build of the target's host.
	Request *boot.KexecRequest
	// Confirm asks before the running system ends; an error stops the
	// step (nil: confirmed at the review).
	Confirm func() error
}

func (KexecStep) Name() string { return "kexec" }

func (KexecStep) Title(t *Target) string {
	if t.Plan.Host.Name == "" {
		return "Boot the node from RAM (kexec)"
	}
	return "Boot " + t.Plan.Host.Name + " from RAM (kexec)"
}

func (KexecStep) Describe(t *Target) []string {
	return []string{"check this machine (root, kexec, Secure Boot, architecture, RAM, SSH keys, data disk), carry the network over, load the node's kernel and jump into it: this system and its SSH session end"}
}

// lineWriter turns written lines into notes (or, with result, result
// lines).
type lineWriter struct {
	s      *Sink
	buf    bytes.Buffer
	result bool
}

func (w *lineWriter) line(text string) {
	if w.result {
		w.s.Resultf("%s", text)
	} else {
		w.s.Notef("%s", text)
	}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(p), nil
		}
		w.line(strings.TrimRight(line, "\n"))
	}
}

func (w *lineWriter) flush() {
	if w.buf.Len() > 0 {
		w.line(w.buf.String())
		w.buf.Reset()
	}
}

func (k KexecStep) Apply(ctx context.Context, t *Target, s *Sink) error {
	out := &lineWriter{s: s}
	defer out.flush()
	var req boot.KexecRequest
	if k.Request != nil {
		req = *k.Request
	} else {
		var err error
		if req, err = flakeKexecRequest(ctx, t, out); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp("", "homestaker-kexec-")
	if err != nil {
		return err
	}
	req.TempDir = tmp
	if !k.DryRun {
		defer os.RemoveAll(tmp)
	}
	if t.Store != nil {
		if k.DryRun {
			fmt.Fprintf(out, "The build's store on the data disk stays mounted (%s, %s): a real kexec copies the kernel and initrd to %s and unmounts both first.\n", t.Store.NixDir, t.Store.MountDir, tmp)
		} else if req, err = releaseStore(req, tmp, *t.Store, out); err != nil {
			return err
		}
	}
	kx := k.Kexec
	if kx == nil {
		kx = &boot.Kexec{}
	}
	pre, err := kx.Preflight(ctx, req)
	fmt.Fprintln(out, "Checks:")
	boot.WriteChecks(out, pre.Checks)
	if err != nil {
		return err
	}
	if !pre.OK() {
		var names []string
		for _, c := range pre.Refused() {
			names = append(names, c.Name)
		}
		return Refuse(fmt.Errorf("kexec refused (%s); nothing was loaded", strings.Join(names, ", ")))
	}
	carry, err := kx.PrepareCarry(req, pre)
	if err != nil {
		return err
	}
	if t.Store != nil && !k.DryRun {
		os.Remove(req.Image.Initrd) // the plain copy: the carry-over copy is booted
	}
	fmt.Fprintf(out, "Carry-over archive (%d bytes) appended to the initrd copy\n  %s\n", carry.ArchiveBytes, carry.Initrd)
	for _, f := range carry.Files {
		fmt.Fprintf(out, "  %-36s %5d bytes\n", f.Path, len(f.Data))
	}
	if k.DryRun {
		boot.WriteReconnect(out, pre.Carried, req.KnownHosts)
		fmt.Fprintf(out, "Dry run: nothing was loaded. The initrd copy stays in\n  %s\n", tmp)
		return nil
	}
	if k.Confirm != nil {
		if err := k.Confirm(); err != nil {
			return Refuse(fmt.Errorf("%v; nothing was loaded", err))
		}
	}
	method, err := kx.Load(ctx, boot.KexecImage{Kernel: req.Image.Kernel, Initrd: carry.Initrd, Cmdline: req.Image.Cmdline})
	if err != nil {
		var le *boot.LoadError
		if errors.As(err, &le) {
			return fmt.Errorf("%s failed: %v\n%s\n%s", le.Call, le.Err, le.Meaning, le.Fix)
		}
		return err
	}
	os.Remove(carry.Initrd) // the kernel holds its own copy now
	fmt.Fprintf(out, "Loaded the node's kernel with %s.\n", method)
	boot.WriteReconnect(out, pre.Carried, req.KnownHosts)
	if k.StartJump == nil {
		return errors.New("the kernel is loaded, but nothing starts the jump: run 'kexec -e'")
	}
	logPath, err := k.StartJump(k.Delay)
	if err != nil {
		return fmt.Errorf("start the jump: %v; the kernel is loaded: 'kexec -e' starts it", err)
	}
	fmt.Fprintf(out, "Jumping in %s; this session will end. If the machine is still up\n10 s later, see %s.\n", k.Delay, logPath)
	return nil
}

// releaseStore copies the kernel and initrd out of the build's store on the
// data disk into tmp (RAM) and unmounts the store and the data partition,
// so that the preflight's data-disk check sees the disk as the node will
// (present, not mounted) and no write to it is lost in the jump. The
// request returned boots the copies.
func releaseStore(req boot.KexecRequest, tmp string, m StoreMount, out *lineWriter) (boot.KexecRequest, error) {
	for _, f := range []struct {
		src  *string
		name string
	}{{&req.Image.Kernel, "store-kernel"}, {&req.Image.Initrd, "store-initrd"}} {
		dst := filepath.Join(tmp, f.name)
		if err := copyFile(*f.src, dst); err != nil {
			return req, fmt.Errorf("copy %s out of the store on the data disk: %w; nothing was loaded", *f.src, err)
		}
		*f.src = dst
	}
	if err := m.Release(); err != nil {
		return req, Refuse(fmt.Errorf("%v; nothing was loaded", err))
	}
	fmt.Fprintf(out, "Copied the kernel and initrd to %s and unmounted the build's store (%s) and the data partition (%s).\n", tmp, m.NixDir, m.MountDir)
	return req, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	o, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(o, in); err != nil {
		o.Close()
		return err
	}
	return o.Close()
}

// flakeKexecRequest is the kexec of the target's host as its last build
// made it, with the host's answers and known_hosts line.
func flakeKexecRequest(ctx context.Context, t *Target, out *lineWriter) (boot.KexecRequest, error) {
	found, err := boot.FindKexecImage(ctx, t.FlakeDir, t.Plan.Host.Name)
	if err != nil {
		return boot.KexecRequest{}, err
	}
	p := t.Plan
	req := boot.KexecRequest{Image: found.KexecImage, Plan: &p, PlanSource: found.AnswersPath}
	if found.KnownHostsPath != "" {
		if data, err := os.ReadFile(found.KnownHostsPath); err == nil {
			req.KnownHosts = FirstKnownHostsLine(string(data))
		}
	}
	if req.KnownHosts == "" && p.SSH.HostKey != "" {
		if req.KnownHosts, err = secrets.KnownHostsLine(p.SSH.HostKey, p.Host.Name); err != nil {
			return req, &Error{Kind: KindInvalid, Err: fmt.Errorf("ssh.hostKey: %w", err)}
		}
	}
	fmt.Fprintf(out, "Booting host %s, built %s:\n  kernel  %s\n  initrd  %s\n  cmdline %s\n", p.Host.Name,
		found.Manifest.BuiltAt.Format("2006-01-02 15:04 MST"), req.Image.Kernel, req.Image.Initrd, req.Image.Cmdline)
	return req, nil
}

// FirstKnownHostsLine returns the first line that is not blank or a comment.
func FirstKnownHostsLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			return t
		}
	}
	return ""
}
