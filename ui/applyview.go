package ui

import (
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/homestaker/homestaker/report"
	"github.com/homestaker/homestaker/steps"
)

// ApplyEventMsg carries one event of steps.Run into an ApplyModel.
type ApplyEventMsg struct{ Event steps.Event }

// ApplyDoneMsg tells an ApplyModel the apply ended; Err is nil on success.
type ApplyDoneMsg struct{ Err error }

// applyStep is a step as the apply view shows it.
type applyStep struct {
	title  string
	status steps.Status
	note   string
}

// ApplyModel is the full-screen view of an apply: every step with its
// status, the running step's latest lines and, while the build step runs,
// the build's own progress view. It is fed by ApplyEventMsg and
// ApplyDoneMsg (the same events the line printer and --json render). Ctrl-C
// calls interrupt (which should cancel the apply) and waits for the steps
// to stop; a second Ctrl-C quits the view at once.
type ApplyModel struct {
	title     string
	steps     []applyStep
	current   int
	lines     []string
	build     *BuildModel
	width     int
	height    int
	now       func() time.Time
	interrupt func()
	stopping  bool
	done      bool
	err       error
}

// NewApplyModel returns an apply view titled title; now is the clock (nil:
// time.Now).
func NewApplyModel(title string, now func() time.Time, interrupt func()) *ApplyModel {
	if now == nil {
		now = time.Now
	}
	return &ApplyModel{title: title, width: 80, height: 24, now: now, interrupt: interrupt, current: -1}
}

// Init does nothing: the events drive the view.
func (m *ApplyModel) Init() tea.Cmd { return nil }

// Done reports whether the apply ended, and how.
func (m *ApplyModel) Done() (bool, error) { return m.done, m.err }

// Update takes the apply's events, its end, the window size and keys.
func (m *ApplyModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case ApplyEventMsg:
		return m, m.event(msg.Event)
	case ApplyDoneMsg:
		m.done, m.err = true, msg.Err
		return m, tea.Quit
	case tea.WindowSizeMsg:
		m.width, m.height = max(msg.Width, 40), max(msg.Height, 10)
		if m.build != nil {
			m.build.SetSize(m.width, m.buildHeight())
		}
	case tea.KeyPressMsg:
		if msg.String() == "ctrl+c" {
			if m.done || m.stopping || m.interrupt == nil {
				return m, tea.Quit
			}
			m.stopping = true
			m.interrupt()
		}
	default:
		if m.build != nil {
			bm, cmd := m.build.Update(msg)
			b := bm.(BuildModel)
			m.build = &b
			return m, cmd
		}
	}
	return m, nil
}

func (m *ApplyModel) event(e steps.Event) tea.Cmd {
	for len(m.steps) < e.Of {
		m.steps = append(m.steps, applyStep{})
	}
	i := e.N - 1
	if i < 0 || i >= len(m.steps) {
		return nil
	}
	st := &m.steps[i]
	if e.Title != "" {
		st.title = e.Title
	}
	if st.title == "" {
		st.title = e.Step
	}
	switch e.Status {
	case steps.Started:
		st.status, m.current, m.lines = steps.Started, i, nil
		if e.Step == "build" {
			b := NewBuildModel(st.title, m.now, nil, false)
			b.SetSize(m.width, m.buildHeight())
			m.build = &b
			return b.Init()
		}
	case steps.Done, steps.Skipped, steps.Failed:
		st.status, st.note = e.Status, e.Message
		if m.build != nil && i == m.current {
			var err error
			if e.Status == steps.Failed {
				err = fmt.Errorf("%s", e.Message)
			}
			bm, _ := m.build.Update(BuildDoneMsg{Err: err})
			b := bm.(BuildModel)
			m.build = &b
			if e.Status != steps.Failed {
				m.build = nil
			}
		}
	case steps.Progress:
		if e.Nix != nil && m.build != nil {
			bm, _ := m.build.Update(BuildEventMsg{Event: *e.Nix, At: e.At})
			b := bm.(BuildModel)
			m.build = &b
			return nil
		}
		if e.Total > 0 {
			m.addLine(fmt.Sprintf("%s (%d%%)", e.Message, e.Done*100/e.Total))
		} else if e.Message != "" {
			m.addLine(e.Message)
		}
	case steps.Note, steps.Result:
		msg := e.Message
		if e.Command != nil {
			msg = "$ " + strings.Join(e.Command, " ")
		}
		if e.Level == report.Warning {
			msg = "Warning: " + msg
		}
		for _, l := range strings.Split(msg, "\n") {
			m.addLine(l)
		}
	}
	return nil
}

func (m *ApplyModel) addLine(l string) {
	m.lines = append(m.lines, l)
	if keep := 200; len(m.lines) > keep {
		m.lines = m.lines[len(m.lines)-keep:]
	}
}

// buildHeight is what the build view may use below the step list.
func (m *ApplyModel) buildHeight() int { return max(m.height-len(m.steps)-3, 6) }

// View draws the apply at the model's size.
func (m *ApplyModel) View() tea.View { return tea.NewView(m.render()) }

func (m *ApplyModel) render() string {
	st := newBuildStyles()
	var out []string
	out = append(out, ansi.Truncate(st.title.Render(m.title), m.width, "…"))
	for i, s := range m.steps {
		mark := "  "
		switch s.status {
		case steps.Started:
			mark = st.running.Render("▸ ")
		case steps.Done:
			mark = st.ok.Render("✓ ")
		case steps.Skipped:
			mark = st.dim.Render("- ")
		case steps.Failed:
			mark = st.failed.Render("✗ ")
		}
		line := fmt.Sprintf("[%d/%d] %s", i+1, len(m.steps), s.title)
		if s.note != "" && s.status != steps.Done {
			line += ": " + s.note
		}
		out = append(out, mark+ansi.Truncate(line, m.width-2, "…"))
	}
	out = append(out, "")
	room := m.height - len(out) - 1
	if m.build != nil {
		for _, l := range strings.Split(m.build.render(), "\n") {
			out = append(out, ansi.Truncate(l, m.width, "…"))
		}
	} else if room > 0 {
		lines := m.lines
		if len(lines) > room {
			lines = lines[len(lines)-room:]
		}
		for _, l := range lines {
			out = append(out, st.dim.Render(ansi.Truncate(l, m.width, "…")))
		}
	}
	switch {
	case m.done && m.err != nil:
		out = append(out, st.failed.Render(ansi.Truncate("✗ "+oneLine(m.err.Error()), m.width, "…")))
	case m.done:
		out = append(out, st.ok.Render("✓ done"))
	case m.stopping:
		out = append(out, st.warn.Render("stopping at the next safe point…"))
	default:
		out = append(out, st.dim.Render("Ctrl-C stops the apply"))
	}
	if len(out) > m.height {
		// Keep the title, the steps and the last lines.
		head := 1 + len(m.steps)
		if head >= m.height {
			out = out[:m.height]
		} else {
			out = append(out[:head], out[len(out)-(m.height-head):]...)
		}
	}
	return strings.Join(out, "\n")
}
