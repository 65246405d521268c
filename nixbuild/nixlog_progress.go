package nixbuild

import (
	"regexp"
	"slices"
	"strings"
	"time"
)

// DefaultTailLines is how many log lines NixProgress keeps per build: the
// number shown when a build fails.
const DefaultTailLines = 30

// maxTailLineBytes caps one kept log line, so the tails stay small even
// when a build prints endless lines.
const maxTailLineBytes = 4096

// maxKeptMessages caps the Nix messages (warnings, errors) and plain lines
// NixProgress keeps.
const maxKeptMessages = 50

// maxRecentBuilds is how many stopped builds keep their log tail, so a
// failure reported after its build stopped still finds it.
const maxRecentBuilds = 16

// NixCounter is one line of progress: items or bytes done out of expected,
// with how many are running and how many failed.
type NixCounter struct {
	Done, Expected, Running, Failed uint64
}

// Fraction is Done/Expected in [0,1], or 0 when nothing is expected yet.
func (c NixCounter) Fraction() float64 {
	if c.Expected == 0 {
		return 0
	}
	return min(float64(c.Done)/float64(c.Expected), 1)
}

// NixBuildInfo is one derivation being built, or built.
type NixBuildInfo struct {
	// Drv is the derivation's store path (/nix/store/…-name.drv).
	Drv string
	// Name is the derivation's name without hash and ".drv".
	Name string
	// Phase is the last phase the builder announced ("buildPhase"), if any.
	Phase string
	// LastLine is the last line the builder logged.
	LastLine string
	// Started and Stopped are the times the build started and stopped
	// (zero while running).
	Started, Stopped time.Time
	// Failed is set when Nix reported this build as failed.
	Failed bool
	// Tail holds its last log lines, oldest first.
	Tail []string
}

// Duration is how long the build ran (until now while it runs).
func (b NixBuildInfo) Duration(now time.Time) time.Duration {
	end := b.Stopped
	if end.IsZero() {
		end = now
	}
	if b.Started.IsZero() || end.Before(b.Started) {
		return 0
	}
	return end.Sub(b.Started)
}

// NixStatus is a snapshot of a running `nix build`, as shown to the user.
type NixStatus struct {
	// Builds counts derivations built out of expected.
	Builds NixCounter
	// Copies counts store paths fetched (substituted or copied).
	Copies NixCounter
	// CopyBytes is the unpacked size of those paths.
	CopyBytes NixCounter
	// Download is the bytes downloaded from binary caches.
	Download NixCounter
	// Running lists the builds in progress, oldest first.
	Running []NixBuildInfo
	// Current describes what Nix did last ("building foo (buildPhase): …").
	Current string
	// Failed lists the builds Nix reported as failed.
	Failed []NixBuildInfo
	// Messages are Nix's own warnings and errors, and plain stderr lines,
	// oldest first (the last few only).
	Messages []string
}

// NixProgressUpdate tells what an event changed, for displays that print
// lines rather than redraw.
type NixProgressUpdate struct {
	// Finished is set when a build stopped (Failed tells how it went).
	Finished *NixBuildInfo
	// Message is set to a Nix message (level error or warning) or a plain
	// line that should be shown as it comes.
	Message string
}

// nixActivity is the state of one running activity.
type nixActivity struct {
	typ            int
	parent         uint64
	text           string
	done, expected uint64
	running        uint64
	failed         uint64
	expectedByType map[int]uint64
	seq            uint64 // when it last changed, for "current"
	build          *NixBuildInfo
	lastLine       string
}

// nixTypeTotals is what stopped activities of one type left behind, and
// the expected totals announced for the type.
type nixTypeTotals struct {
	done, failed, expected uint64
}

// NixProgress follows a `nix build` from its structured log. It mirrors the
// accounting of Nix's own progress bar (src/libmain/progress-bar.cc): the
// totals of each activity type are the sum over running activities plus
// what stopped ones reported, and expected sizes come from SetExpected.
// It is not safe for concurrent use.
type NixProgress struct {
	tailLines int
	seq       uint64
	acts      map[uint64]*nixActivity
	totals    map[int]*nixTypeTotals
	recent    []*NixBuildInfo // stopped builds, newest last
	failed    []*NixBuildInfo
	messages  []string
	// lastCurrent describes the last activity that stopped, shown while
	// nothing else describes itself (between two downloads, say).
	lastCurrent string
	// pendingFailure is set when the Builds counter reported a failure
	// before the failing build's activity stopped.
	pendingFailure uint64
}

// NewNixProgress returns an empty progress model that keeps tailLines log
// lines per build (DefaultTailLines when tailLines <= 0).
func NewNixProgress(tailLines int) *NixProgress {
	if tailLines <= 0 {
		tailLines = DefaultTailLines
	}
	return &NixProgress{
		tailLines: tailLines,
		acts:      map[uint64]*nixActivity{},
		totals:    map[int]*nixTypeTotals{},
	}
}

func (p *NixProgress) total(typ int) *nixTypeTotals {
	t := p.totals[typ]
	if t == nil {
		t = &nixTypeTotals{}
		p.totals[typ] = t
	}
	return t
}

// Apply takes one event into the model; now is when it was read.
func (p *NixProgress) Apply(ev NixLogEvent, now time.Time) NixProgressUpdate {
	p.seq++
	switch ev.Kind {
	case NixLogStart:
		return p.start(ev, now)
	case NixLogStop:
		return p.stop(ev, now)
	case NixLogResult:
		p.result(ev)
	case NixLogMsg:
		if ev.Level <= 1 && ev.Text != "" { // error or warning
			p.keepMessage(ev.Text)
			if ev.Level == 0 {
				p.blameMessage(ev.Text, now)
			}
			return NixProgressUpdate{Message: ev.Text}
		}
	case NixLogPlain:
		if ev.Text != "" {
			p.keepMessage(ev.Text)
			return NixProgressUpdate{Message: ev.Text}
		}
	}
	return NixProgressUpdate{}
}

func (p *NixProgress) keepMessage(s string) {
	if len(s) > maxTailLineBytes {
		s = s[:maxTailLineBytes]
	}
	p.messages = appendBounded(p.messages, s, maxKeptMessages)
}

func appendBounded(list []string, s string, limit int) []string {
	if len(list) >= limit {
		copy(list, list[len(list)-limit+1:])
		list = list[:limit-1]
	}
	return append(list, s)
}

func (p *NixProgress) start(ev NixLogEvent, now time.Time) NixProgressUpdate {
	if old, ok := p.acts[ev.ID]; ok {
		// Nix never reuses an id; a repeated start is treated as a
		// restart so totals stay consistent.
		p.forget(ev.ID, old)
	}
	a := &nixActivity{typ: ev.Type, parent: ev.Parent, text: ev.Text, seq: p.seq}
	switch ev.Type {
	case actBuild:
		drv := ev.Str(0)
		name := storePathName(drv)
		a.build = &NixBuildInfo{Drv: drv, Name: name, Started: now}
		a.text = "building " + name
		if machine := ev.Str(1); machine != "" {
			a.text += " on " + machine
		}
	case actSubstitute:
		if path, sub := ev.Str(0), ev.Str(1); path != "" {
			verb := "fetching "
			if strings.HasPrefix(sub, "local") {
				verb = "copying "
			}
			a.text = verb + storePathName(path) + " from " + sub
		}
	case actQueryPathInfo:
		if path, sub := ev.Str(0), ev.Str(1); path != "" {
			a.text = "querying " + storePathName(path) + " on " + sub
		}
	case actBuildWaiting:
		a.text = ""
	}
	p.acts[ev.ID] = a
	return NixProgressUpdate{}
}

// forget removes a running activity, keeping what it counted.
func (p *NixProgress) forget(id uint64, a *nixActivity) {
	t := p.total(a.typ)
	t.done += a.done
	t.failed += a.failed
	for typ, n := range a.expectedByType {
		tt := p.total(typ)
		tt.expected -= min(n, tt.expected)
	}
	delete(p.acts, id)
}

func (p *NixProgress) stop(ev NixLogEvent, now time.Time) NixProgressUpdate {
	a, ok := p.acts[ev.ID]
	if !ok {
		return NixProgressUpdate{}
	}
	if a.typ == actCopyPath {
		// A finished copy is complete even when its last progress report
		// (sent every few kilobytes) fell short of the size.
		a.done = max(a.done, a.expected)
	}
	p.forget(ev.ID, a)
	if d := describeActivity(a); d != "" {
		p.lastCurrent = d
	}
	if a.build == nil {
		return NixProgressUpdate{}
	}
	b := a.build
	b.Stopped = now
	if p.pendingFailure > 0 && !b.Failed {
		p.pendingFailure--
		p.markFailed(b)
	}
	p.recent = append(p.recent, b)
	if len(p.recent) > maxRecentBuilds {
		p.recent = slices.Delete(p.recent, 0, len(p.recent)-maxRecentBuilds)
	}
	finished := *b
	finished.Tail = slices.Clone(b.Tail)
	return NixProgressUpdate{Finished: &finished}
}

func (p *NixProgress) markFailed(b *NixBuildInfo) {
	if b.Failed {
		return
	}
	b.Failed = true
	p.failed = append(p.failed, b)
}

func (p *NixProgress) result(ev NixLogEvent) {
	a, ok := p.acts[ev.ID]
	if !ok {
		return
	}
	switch ev.Type {
	case resBuildLogLine, resPostBuildLogLine:
		line := ev.Str(0)
		if len(line) > maxTailLineBytes {
			line = line[:maxTailLineBytes]
		}
		a.lastLine = line
		a.seq = p.seq
		if a.build != nil {
			a.build.LastLine = line
			a.build.Tail = appendBounded(a.build.Tail, line, p.tailLines)
		}
	case resSetPhase:
		if a.build != nil {
			a.build.Phase = ev.Str(0)
			a.seq = p.seq
		}
	case resProgress:
		done, ok1 := ev.Int(0)
		expected, ok2 := ev.Int(1)
		running, ok3 := ev.Int(2)
		failed, ok4 := ev.Int(3)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return
		}
		if a.typ == actBuilds && failed > a.failed {
			p.blameRunning(failed - a.failed)
		}
		a.done, a.expected, a.running, a.failed = done, expected, running, failed
	case resSetExpected:
		typ, ok1 := ev.Int(0)
		n, ok2 := ev.Int(1)
		if !ok1 || !ok2 || typ > 1<<16 {
			return
		}
		if a.expectedByType == nil {
			a.expectedByType = map[int]uint64{}
		}
		t := p.total(int(typ))
		old := a.expectedByType[int(typ)]
		t.expected -= min(old, t.expected)
		t.expected += n
		a.expectedByType[int(typ)] = n
	}
}

// blameRunning records that n more builds failed. Nix reports the count
// just before the failing build's activity stops; when exactly one build
// runs it is the one, otherwise the next builds to stop are.
func (p *NixProgress) blameRunning(n uint64) {
	var running []*NixBuildInfo
	for _, a := range p.acts {
		if a.build != nil && !a.build.Failed {
			running = append(running, a.build)
		}
	}
	if len(running) == 1 && n == 1 {
		p.markFailed(running[0])
		return
	}
	p.pendingFailure += n
}

var drvPathPattern = regexp.MustCompile(`/nix/store/[0-9a-z]{32}-[^\s'"` + "`" + `]+\.drv`)

// blameMessage marks the build an error message names as failed: Nix's
// final error says "builder for '<drv>' failed" (or "Cannot build '<drv>'"
// in later releases). Messages naming a derivation whose dependencies
// failed name one that never started, so only started builds count.
func (p *NixProgress) blameMessage(msg string, now time.Time) {
	for _, drv := range drvPathPattern.FindAllString(msg, 8) {
		if b := p.findBuild(drv); b != nil {
			if !b.Failed {
				if p.pendingFailure > 0 && b.Stopped.IsZero() {
					p.pendingFailure--
				}
				p.markFailed(b)
			}
			return
		}
	}
}

func (p *NixProgress) findBuild(drv string) *NixBuildInfo {
	for _, a := range p.acts {
		if a.build != nil && a.build.Drv == drv {
			return a.build
		}
	}
	for i := len(p.recent) - 1; i >= 0; i-- {
		if p.recent[i].Drv == drv {
			return p.recent[i]
		}
	}
	return nil
}

// counter sums the activities of one type the way Nix's progress bar does.
func (p *NixProgress) counter(typ int) NixCounter {
	t := p.totals[typ]
	var c NixCounter
	if t != nil {
		c.Done, c.Failed = t.done, t.failed
	}
	expected := c.Done
	for _, a := range p.acts {
		if a.typ != typ {
			continue
		}
		c.Done += a.done
		expected += a.expected
		c.Running += a.running
		c.Failed += a.failed
	}
	if t != nil {
		expected = max(expected, t.expected)
	}
	// Nix lowers "expected" when a build fails; what failed was expected.
	c.Expected = max(expected, c.Done+c.Failed)
	return c
}

// Status returns a snapshot of the build for display; it shares nothing
// with the model.
func (p *NixProgress) Status() NixStatus {
	s := NixStatus{
		Builds:    p.counter(actBuilds),
		Copies:    p.counter(actCopyPaths),
		CopyBytes: p.counter(actCopyPath),
		Download:  p.counter(actFileTransfer),
		Messages:  slices.Clone(p.messages),
	}
	var current *nixActivity
	for _, a := range p.acts {
		if a.build != nil {
			b := *a.build
			b.Tail = nil
			s.Running = append(s.Running, b)
		}
		if (a.text != "" || a.lastLine != "") && (current == nil || a.seq > current.seq) {
			current = a
		}
	}
	slices.SortFunc(s.Running, func(x, y NixBuildInfo) int {
		if c := x.Started.Compare(y.Started); c != 0 {
			return c
		}
		return strings.Compare(x.Drv, y.Drv)
	})
	if current != nil {
		s.Current = describeActivity(current)
	} else if len(s.Running) == 0 {
		s.Current = p.lastCurrent
	}
	for _, b := range p.failed {
		f := *b
		f.Tail = slices.Clone(b.Tail)
		s.Failed = append(s.Failed, f)
	}
	return s
}

func describeActivity(a *nixActivity) string {
	text := a.text
	if a.build != nil && a.build.Phase != "" {
		text += " (" + a.build.Phase + ")"
	}
	if a.lastLine != "" {
		if text != "" {
			text += ": "
		}
		text += a.lastLine
	}
	return text
}

// storePathName returns the name part of a store path: no directory, no
// hash, no ".drv".
func storePathName(path string) string {
	base := path[strings.LastIndexByte(path, '/')+1:]
	if i := strings.IndexByte(base, '-'); i >= 0 {
		base = base[i+1:]
	}
	return strings.TrimSuffix(base, ".drv")
}
