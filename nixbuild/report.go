package nixbuild

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/homestaker/homestaker/plan"
)

// StatusInterval is the least time between two status lines in line mode.
const StatusInterval = time.Second

// statusHeartbeat is how often line mode repeats an unchanged status, so a
// long build step still shows it is alive.
const statusHeartbeat = 30 * time.Second

// BuildLinePrinter shows a build as plain lines, for dumb terminals, logs
// and pipes: a compact status line at most once per StatusInterval, a line
// per finished build, and Nix's own errors, warnings and plain lines.
type BuildLinePrinter struct {
	w          io.Writer
	progress   *NixProgress
	started    time.Time
	lastAt     time.Time
	lastStatus string
	printed    bool
}

// NewBuildLinePrinter returns a printer writing to w for a build that
// started at started.
func NewBuildLinePrinter(w io.Writer, started time.Time) *BuildLinePrinter {
	return &BuildLinePrinter{w: w, progress: NewNixProgress(0), started: started}
}

// Observe takes one log event read at the given time; it fits
// BuildOptions.Observe.
func (p *BuildLinePrinter) Observe(ev NixLogEvent, at time.Time) {
	u := p.progress.Apply(ev, at)
	if u.Message != "" {
		for _, line := range strings.Split(u.Message, "\n") {
			fmt.Fprintf(p.w, "nix: %s\n", line)
		}
	}
	if b := u.Finished; b != nil {
		verb := "built"
		if b.Failed {
			verb = "FAILED"
		}
		fmt.Fprintf(p.w, "%s %s (%s)\n", verb, b.Name, FormatElapsed(b.Duration(at)))
	}
	p.status(at, false)
}

// Finish prints the last status line.
func (p *BuildLinePrinter) Finish(at time.Time) {
	p.status(at, true)
}

func (p *BuildLinePrinter) status(at time.Time, force bool) {
	line := StatusSummary(p.progress.Status())
	if line == "" {
		return
	}
	changed := line != p.lastStatus
	due := !p.printed || at.Sub(p.lastAt) >= StatusInterval
	if force || (due && changed) || (p.printed && at.Sub(p.lastAt) >= statusHeartbeat) {
		fmt.Fprintf(p.w, "[%s] %s\n", FormatElapsed(at.Sub(p.started)), line)
		p.lastAt, p.lastStatus, p.printed = at, line, true
	}
}

// StatusSummary renders a build's progress on one line: counts of
// derivations built, paths fetched and bytes downloaded, then what Nix is
// doing ("built 2/5 (1 running), fetched 3/10 paths (12 MiB/40 MiB) |
// building initrd (buildPhase)").
func StatusSummary(s NixStatus) string {
	var parts []string
	if c := s.Builds; c.Expected > 0 || c.Failed > 0 {
		part := fmt.Sprintf("built %d/%d", c.Done, c.Expected)
		if c.Running > 0 {
			part += fmt.Sprintf(" (%d running)", c.Running)
		}
		if c.Failed > 0 {
			part += fmt.Sprintf(" (%d failed)", c.Failed)
		}
		parts = append(parts, part)
	}
	if c := s.Copies; c.Expected > 0 {
		part := fmt.Sprintf("fetched %d/%d paths", c.Done, c.Expected)
		if b := s.CopyBytes; b.Expected > 0 {
			part += fmt.Sprintf(" (%s/%s)", FormatBytes(b.Done), FormatBytes(b.Expected))
		}
		parts = append(parts, part)
	}
	if d := s.Download; d.Expected > 0 || d.Done > 0 {
		parts = append(parts, fmt.Sprintf("downloaded %s/%s", FormatBytes(d.Done), FormatBytes(d.Expected)))
	}
	line := strings.Join(parts, ", ")
	if s.Current != "" {
		if line != "" {
			line += " | "
		}
		line += TruncateText(s.Current, 100)
	}
	return line
}

// TruncateText cuts s to at most n runes, marking the cut with "…".
func TruncateText(s string, n int) string {
	if n <= 0 {
		return ""
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// FormatElapsed renders a duration as m:ss or h:mm:ss.
func FormatElapsed(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// WriteBuildFailure explains a failed build: the failing derivation, its
// last log lines and the command that shows the whole log; or, when no
// derivation failed (an evaluation error), Nix's last messages.
func WriteBuildFailure(w io.Writer, e *BuildError) {
	if len(e.Failed) == 0 {
		fmt.Fprintf(w, "nix build of %s for host %s failed before building anything:\n", e.Target.Attribute(), e.Target.Host)
		msgs := e.Messages
		if len(msgs) > DefaultTailLines {
			msgs = msgs[len(msgs)-DefaultTailLines:]
		}
		for _, m := range msgs {
			for _, line := range strings.Split(m, "\n") {
				fmt.Fprintf(w, "  %s\n", line)
			}
		}
		if len(msgs) == 0 {
			fmt.Fprintf(w, "  (%v, and nix printed no message)\n", e.Err)
		}
		fmt.Fprintf(w, "The command was: %s\n", e.Command)
		return
	}
	for _, b := range e.Failed {
		fmt.Fprintf(w, "Building %s failed", b.Name)
		if b.Phase != "" {
			fmt.Fprintf(w, " in %s", b.Phase)
		}
		fmt.Fprintf(w, ".\nDerivation: %s\n", b.Drv)
		if len(b.Tail) > 0 {
			fmt.Fprintf(w, "Its last %d log lines:\n", len(b.Tail))
			for _, line := range b.Tail {
				fmt.Fprintf(w, "  | %s\n", line)
			}
		}
		fmt.Fprintf(w, "See the whole log with: %s\n", NixLogCommand(b.Drv))
	}
}

// WriteBuildSummary lists what a build produced: the output, each artifact
// with size and SHA-256, and where the manifest was written.
func WriteBuildSummary(w io.Writer, m BuildManifest, manifestPath string, elapsed time.Duration) {
	what := "kexec tree"
	switch m.Format {
	case plan.FormatISO:
		what = "ISO image"
	case plan.FormatSD:
		what = "SD card"
	}
	fmt.Fprintf(w, "Built the %s for %s in %s: %s\n", what, m.Host, FormatElapsed(elapsed), m.OutPath)
	if m.OutLink != "" {
		fmt.Fprintf(w, "Link: %s\n", m.OutLink)
	}
	var loaders int
	var loaderBytes uint64
	for _, a := range m.Artifacts {
		if a.Role == RoleLoader {
			// Hundreds of GRUB modules: counted, listed in the manifest.
			loaders++
			loaderBytes += uint64(a.Size)
			continue
		}
		fmt.Fprintf(w, "  %-12s %-16s %10s  sha256:%s\n", a.Role, a.Name, FormatBytes(uint64(a.Size)), a.SHA256)
	}
	if loaders > 0 {
		fmt.Fprintf(w, "  %-12s %d boot loader files (%s) for the data disk's boot entry\n", RoleLoader, loaders, FormatBytes(loaderBytes))
	}
	fmt.Fprintf(w, "Manifest: %s\n", manifestPath)
}
