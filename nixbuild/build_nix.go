package nixbuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MinNixMajor and MinNixMinor are the oldest Nix the pinned nixpkgs
// evaluates with (2.18).
const (
	MinNixMajor = 2
	MinNixMinor = 18
)

// NixInstallHint tells a user without a usable Nix how to get one.
const NixInstallHint = "Let homestaker install a verified Nix for root: homestaker nix install " +
	"(it asks first and checks the release's pinned SHA-256), " +
	"or put a static nix (nixpkgs' nixStatic) on PATH, then run homestaker again."

// ErrNixNotFound is returned by FindNix when no nix binary is found.
var ErrNixNotFound = errors.New("nix is not installed (not on PATH nor in the usual Nix profiles)")

// nixProfileBins are where installers put nix when PATH does not say so
// (sudo and non-login shells often drop the profile from PATH).
var nixProfileBins = []string{
	"/nix/var/nix/profiles/default/bin/nix",
	"/run/current-system/sw/bin/nix",
}

// FindNix returns the path of the nix binary: on PATH (lookPath, usually
// exec.LookPath), else in the default Nix profile or the user's profile
// under $HOME. It returns ErrNixNotFound when there is none.
func FindNix(lookPath func(string) (string, error), getenv func(string) string) (string, error) {
	if p, err := lookPath("nix"); err == nil {
		return p, nil
	}
	candidates := append([]string(nil), nixProfileBins...)
	if home := getenv("HOME"); home != "" {
		candidates = append(candidates, filepath.Join(home, ".nix-profile", "bin", "nix"))
	}
	for _, c := range candidates {
		if p, err := lookPath(c); err == nil {
			return p, nil
		}
	}
	return "", ErrNixNotFound
}

// NixVersion is the version `nix --version` reported.
type NixVersion struct {
	Major, Minor, Patch int
	// Text is the whole first line Nix printed ("nix (Nix) 2.8.0").
	Text string
}

// String returns the version as "major.minor.patch".
func (v NixVersion) String() string {
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// AtLeast reports whether v is major.minor or newer.
func (v NixVersion) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

// ParseNixVersion reads the output of `nix --version`: "nix (Nix) 2.8.0",
// "nix (Nix) 2.24.10pre…", "nix (Determinate Nix 3.6.2) 2.29.0",
// "nix (Lix, like Nix) 2.91.1". The version is the last word.
func ParseNixVersion(out string) (NixVersion, error) {
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return NixVersion{}, fmt.Errorf("nix --version printed nothing")
	}
	v := NixVersion{Text: line}
	parts := strings.SplitN(fields[len(fields)-1], ".", 3)
	nums := []*int{&v.Major, &v.Minor, &v.Patch}
	for i, part := range parts {
		end := 0
		for end < len(part) && part[end] >= '0' && part[end] <= '9' {
			end++
		}
		n, err := strconv.Atoi(part[:end])
		if err != nil || (i < 2 && end != len(part)) {
			return NixVersion{}, fmt.Errorf("nix --version printed %q, not a version number", line)
		}
		*nums[i] = n
	}
	if len(parts) < 2 {
		return NixVersion{}, fmt.Errorf("nix --version printed %q, not a version number", line)
	}
	return v, nil
}

// OldNixError says the installed Nix is too old for the pinned nixpkgs.
type OldNixError struct {
	Version NixVersion
}

func (e *OldNixError) Error() string {
	return fmt.Sprintf("Nix %s is installed, but building a NixOS image needs Nix %d.%d or newer. %s",
		e.Version, MinNixMajor, MinNixMinor, NixInstallHint)
}

// NixCommand is one run of nix.
type NixCommand struct {
	Path string
	Args []string
	// Dir is the working directory ("" for the current one).
	Dir string
	// Env is the whole environment (nil for the current one).
	Env    []string
	Stdout io.Writer
	Stderr io.Writer
}

// String returns the command line, quoted for a shell where needed.
func (c NixCommand) String() string {
	words := append([]string{c.Path}, c.Args...)
	for i, w := range words {
		words[i] = shellQuote(w)
	}
	return strings.Join(words, " ")
}

func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=#@+,%", r)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

// CommandRunner runs a command to completion. It must stop the command when
// ctx ends and return an error when the command fails (an *exec.ExitError
// for a non-zero exit).
type CommandRunner func(ctx context.Context, cmd NixCommand) error

// DefaultStopGrace is how long a cancelled nix gets after SIGTERM before
// its process group is killed.
const DefaultStopGrace = 5 * time.Second

// ExecRunner returns a CommandRunner that starts the command in its own
// process group, so a Ctrl-C in the terminal reaches homestaker alone; when
// ctx ends it sends SIGTERM to the whole group and SIGKILL after grace.
func ExecRunner(grace time.Duration) CommandRunner {
	if grace <= 0 {
		grace = DefaultStopGrace
	}
	return func(ctx context.Context, c NixCommand) error {
		cmd := exec.CommandContext(ctx, c.Path, c.Args...)
		cmd.Dir, cmd.Env = c.Dir, c.Env
		cmd.Stdout, cmd.Stderr = c.Stdout, c.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error {
			return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		}
		// After grace, Go kills the leader and stops waiting for output
		// that a stray child might hold open; the watcher below takes the
		// rest of the group with it.
		cmd.WaitDelay = grace
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", c.Path, err)
		}
		exited := make(chan struct{})
		go func() {
			select {
			case <-exited:
			case <-ctx.Done():
				t := time.NewTimer(grace)
				defer t.Stop()
				select {
				case <-exited:
				case <-t.C:
					_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				}
			}
		}()
		err := cmd.Wait()
		close(exited)
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("%s stopped: %w", filepath.Base(c.Path), ctx.Err())
		}
		return err
	}
}

// QueryNixVersion runs `nix --version`.
func QueryNixVersion(ctx context.Context, run CommandRunner, nixPath string) (NixVersion, error) {
	var out, errOut bytes.Buffer
	err := run(ctx, NixCommand{Path: nixPath, Args: []string{"--version"},
		Stdout: &limitedBuffer{buf: &out, max: 4096}, Stderr: &limitedBuffer{buf: &errOut, max: 4096}})
	if err != nil {
		return NixVersion{}, fmt.Errorf("%s --version: %w: %s", nixPath, err, strings.TrimSpace(errOut.String()))
	}
	return ParseNixVersion(out.String())
}

// limitedBuffer keeps the first max bytes written to it and drops the rest.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
