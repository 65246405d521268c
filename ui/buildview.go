package ui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/progress"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/homestaker/homestaker/nixbuild"
)

// BuildEventMsg carries one log event of the running build into a
// BuildModel (send it from BuildOptions.Observe with Program.Send).
type BuildEventMsg struct {
	Event nixbuild.NixLogEvent
	At    time.Time
}

// BuildDoneMsg tells a BuildModel the build ended; Err is nil on success.
type BuildDoneMsg struct {
	Err error
}

// buildStyles are the build view's styles, in one place.
type buildStyles struct {
	title, dim, label, running, failed, ok, warn lipgloss.Style
}

func newBuildStyles() buildStyles {
	return buildStyles{
		title:   lipgloss.NewStyle().Bold(true),
		dim:     lipgloss.NewStyle().Faint(true),
		label:   lipgloss.NewStyle().Width(13),
		running: lipgloss.NewStyle().Foreground(lipgloss.Blue),
		failed:  lipgloss.NewStyle().Foreground(lipgloss.Red).Bold(true),
		ok:      lipgloss.NewStyle().Foreground(lipgloss.Green).Bold(true),
		warn:    lipgloss.NewStyle().Foreground(lipgloss.Yellow),
	}
}

// BuildModel is the bubbletea view of a running nix build: bars for
// derivations and downloads, counts, elapsed time, the builds in progress
// with their phase and last log line, and Nix's messages. It is fed by
// BuildEventMsg and BuildDoneMsg; the wizard embeds it in its apply
// screen, `homestaker build` runs it alone. Ctrl-C calls the interrupt
// function given to NewBuildModel (which should cancel the build) and the
// view waits for the build to stop; a second Ctrl-C quits at once.
type BuildModel struct {
	title       string
	progress    *nixbuild.NixProgress
	spin        spinner.Model
	bar         progress.Model
	styles      buildStyles
	width       int
	height      int
	started     time.Time
	now         func() time.Time
	interrupt   func()
	quitOnDone  bool
	stopping    bool
	done        bool
	err         error
	lastEventAt time.Time
}

// NewBuildModel returns a build view titled title ("Building the kexec tree
// for node1"). now is the clock (nil: time.Now); interrupt is called on
// Ctrl-C (nil: Ctrl-C quits). With quitOnDone the model quits the program
// when the build ends.
func NewBuildModel(title string, now func() time.Time, interrupt func(), quitOnDone bool) BuildModel {
	if now == nil {
		now = time.Now
	}
	return BuildModel{
		title:      title,
		progress:   nixbuild.NewNixProgress(0),
		spin:       spinner.New(spinner.WithSpinner(spinner.MiniDot)),
		bar:        progress.New(progress.WithoutPercentage(), progress.WithDefaultBlend(), progress.WithFillCharacters('█', '░')),
		styles:     newBuildStyles(),
		width:      80,
		height:     24,
		started:    now(),
		now:        now,
		interrupt:  interrupt,
		quitOnDone: quitOnDone,
	}
}

// Init starts the spinner, whose ticks also refresh the elapsed time.
func (m BuildModel) Init() tea.Cmd {
	return m.spin.Tick
}

// SetSize sets the area the view may draw in.
func (m *BuildModel) SetSize(width, height int) {
	if width > 0 {
		m.width = width
	}
	if height > 0 {
		m.height = height
	}
}

// Done reports whether the build ended, and how.
func (m BuildModel) Done() (bool, error) {
	return m.done, m.err
}

// Status returns the build's progress so far.
func (m BuildModel) Status() nixbuild.NixStatus {
	return m.progress.Status()
}

// Update takes a message: log events, the end of the build, window size,
// keys, spinner ticks.
func (m BuildModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case BuildEventMsg:
		m.progress.Apply(msg.Event, msg.At)
		m.lastEventAt = msg.At
	case BuildDoneMsg:
		m.done, m.err = true, msg.Err
		if m.quitOnDone {
			return m, tea.Quit
		}
	case tea.WindowSizeMsg:
		m.SetSize(msg.Width, msg.Height)
	case tea.KeyPressMsg:
		if msg.String() == "ctrl+c" {
			if m.done || m.stopping || m.interrupt == nil {
				return m, tea.Quit
			}
			m.stopping = true
			m.interrupt()
		}
	case spinner.TickMsg:
		if m.done {
			return m, nil
		}
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(msg)
		return m, cmd
	}
	return m, nil
}

// View draws the build at the model's size (80x24 unless told).
func (m BuildModel) View() tea.View {
	return tea.NewView(m.render())
}

func (m BuildModel) render() string {
	st := m.progress.Status()
	now := m.now()
	width := max(m.width, 40)
	var b strings.Builder
	line := func(s string) {
		b.WriteString(ansi.Truncate(s, width, "…"))
		b.WriteByte('\n')
	}

	elapsed := nixbuild.FormatElapsed(now.Sub(m.started))
	title := nixbuild.TruncateText(m.title, width-len(elapsed)-1)
	// The title line is built by hand so the time sits at the right edge.
	gap := max(width-lipgloss.Width(title)-len(elapsed), 1)
	b.WriteString(m.styles.title.Render(title) + strings.Repeat(" ", gap) + m.styles.dim.Render(elapsed) + "\n\n")

	switch {
	case m.done && m.err == nil:
		line(m.styles.ok.Render("✓ built"))
	case m.done:
		line(m.styles.failed.Render("✗ " + oneLine(m.err.Error())))
	case m.stopping:
		line(m.styles.warn.Render("stopping the build…"))
	default:
		current := st.Current
		if current == "" {
			current = "evaluating the flake…"
		}
		line(m.spin.View() + " " + current)
	}
	b.WriteByte('\n')

	barWidth := max(width-13-26, 10)
	m.bar.SetWidth(barWidth)
	counts := fmt.Sprintf("%d/%d", st.Builds.Done, st.Builds.Expected)
	if st.Builds.Running > 0 {
		counts += fmt.Sprintf(" · %d running", st.Builds.Running)
	}
	if st.Builds.Failed > 0 {
		counts += " · " + m.styles.failed.Render(fmt.Sprintf("%d failed", st.Builds.Failed))
	}
	line(m.styles.label.Render("Derivations") + m.bar.ViewAs(st.Builds.Fraction()) + "  " + counts)
	fetched, fetchedOf := st.CopyBytes, st.CopyBytes.Expected
	dl := fmt.Sprintf("%d/%d paths", st.Copies.Done, st.Copies.Expected)
	if fetchedOf > 0 {
		dl = fmt.Sprintf("%s/%s · %s", nixbuild.FormatBytes(fetched.Done), nixbuild.FormatBytes(fetchedOf), dl)
	} else if st.Download.Done > 0 {
		dl = nixbuild.FormatBytes(st.Download.Done) + " · " + dl
	}
	if st.Copies.Expected == 0 && st.Download.Done == 0 {
		dl = "nothing to fetch yet"
	}
	frac := fetched.Fraction()
	if fetchedOf == 0 {
		frac = st.Copies.Fraction()
	}
	line(m.styles.label.Render("Downloads") + m.bar.ViewAs(frac) + "  " + dl)
	b.WriteByte('\n')

	// The rest of the screen: running builds first, then messages.
	rows := max(m.height-countLines(b.String())-2, 0)
	var running []string
	for _, r := range st.Running {
		head := "  " + m.styles.running.Render(r.Name)
		if r.Phase != "" {
			head += " " + m.styles.dim.Render("("+r.Phase+")")
		}
		head += " " + m.styles.dim.Render(nixbuild.FormatElapsed(r.Duration(now)))
		running = append(running, head)
		if r.LastLine != "" {
			running = append(running, m.styles.dim.Render("    > "+nixbuild.TruncateText(r.LastLine, width-6)))
		}
	}
	var messages []string
	for _, msg := range st.Messages {
		for _, l := range strings.Split(msg, "\n") {
			messages = append(messages, "  "+l)
		}
	}
	if len(running) > 0 && rows > 1 {
		line("Running:")
		rows--
		if len(running) > rows {
			running = running[:rows]
		}
		for _, r := range running {
			line(r)
		}
		rows -= len(running)
	}
	if len(messages) > 0 && rows > 1 {
		line("Nix says:")
		rows--
		if len(messages) > rows {
			messages = messages[len(messages)-rows:]
		}
		for _, msg := range messages {
			line(m.styles.warn.Render(nixbuild.TruncateText(msg, width)))
		}
	}
	if !m.done {
		b.WriteByte('\n')
		b.WriteString(m.styles.dim.Render("ctrl+c stops the build"))
	}
	return b.String()
}

func countLines(s string) int {
	return strings.Count(s, "\n")
}

func oneLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
