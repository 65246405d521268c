package nixbuild

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// recordedEvents reads a recorded log into events.
func recordedEvents(t *testing.T, name string) []NixLogEvent {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "build", name))
	if err != nil {
		t.Fatal(err)
	}
	r := NewNixLogReader(bytes.NewReader(data), 0)
	var evs []NixLogEvent
	for {
		ev, err := r.Next()
		if err != nil {
			return evs
		}
		evs = append(evs, ev)
	}
}

// clockWriter records, for each write, the fake time it happened at.
type clockWriter struct {
	now   *time.Time
	lines []string
	times []time.Time
}

func (w *clockWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimSuffix(string(p), "\n"), "\n") {
		w.lines = append(w.lines, l)
		w.times = append(w.times, *w.now)
	}
	return len(p), nil
}

func TestBuildLinePrinter(t *testing.T) {
	eachRecording(t, "kexec.log", func(t *testing.T, log string) {
		start := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
		now := start
		w := &clockWriter{now: &now}
		p := NewBuildLinePrinter(w, start)
		for _, ev := range recordedEvents(t, log) {
			now = now.Add(300 * time.Millisecond)
			p.Observe(ev, now)
		}
		p.Finish(now)

		var built []string
		var lastStatus time.Time
		statusLines := 0
		for i, l := range w.lines {
			switch {
			case strings.HasPrefix(l, "built "):
				built = append(built, l)
			case strings.HasPrefix(l, "["):
				statusLines++
				if i != len(w.lines)-1 && !lastStatus.IsZero() && w.times[i].Sub(lastStatus) < StatusInterval {
					t.Errorf("status line %q only %v after the previous one", l, w.times[i].Sub(lastStatus))
				}
				lastStatus = w.times[i]
			default:
				t.Errorf("unexpected line %q", l)
			}
		}
		if len(built) != 4 || !strings.HasPrefix(built[3], "built kexec-tree (0:") {
			t.Errorf("finished builds: %q", built)
		}
		// 78 events at 0.3 s: about 23 s, so at most one status line a second.
		if statusLines < 3 || statusLines > 25 {
			t.Errorf("%d status lines:\n%s", statusLines, strings.Join(w.lines, "\n"))
		}
		if last := w.lines[len(w.lines)-1]; !strings.Contains(last, "built 4/4") {
			t.Errorf("last line %q, want the final count", last)
		}
	})
}

func TestBuildLinePrinterFailure(t *testing.T) {
	eachRecording(t, "fail.log", func(t *testing.T, log string) {
		now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
		var out strings.Builder
		p := NewBuildLinePrinter(&out, now)
		for _, ev := range recordedEvents(t, log) {
			now = now.Add(10 * time.Millisecond)
			p.Observe(ev, now)
		}
		p.Finish(now)
		text := out.String()
		for _, want := range []string{
			"built linux-kernel (0:00)\n",
			"FAILED kexec-tree-broken (0:0",
			"nix: error: builder for '/nix/store/",
			"built 1/2 (1 failed) | ",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("line mode output lacks %q:\n%s", want, text)
			}
		}
		if strings.Contains(text, "\x1b") {
			t.Error("line mode output has terminal escapes")
		}
	})
}

func TestStatusSummary(t *testing.T) {
	s := NixStatus{
		Builds:    NixCounter{Done: 2, Expected: 5, Running: 1},
		Copies:    NixCounter{Done: 3, Expected: 10},
		CopyBytes: NixCounter{Done: 12 << 20, Expected: 40 << 20},
		Download:  NixCounter{Done: 5 << 20, Expected: 20 << 20},
		Current:   "building initrd (buildPhase): " + strings.Repeat("x", 200),
	}
	got := StatusSummary(s)
	want := "built 2/5 (1 running), fetched 3/10 paths (12 MiB/40 MiB), downloaded 5.0 MiB/20 MiB | building initrd (buildPhase): "
	if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "x…") || len([]rune(got)) != len([]rune(want))+100-len("building initrd (buildPhase): ") {
		t.Errorf("StatusSummary = %q", got)
	}
	if StatusSummary(NixStatus{}) != "" {
		t.Error("an empty status gave a line")
	}
}
