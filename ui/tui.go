package ui

import (
	"slices"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"charm.land/huh/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// Outcome is how the wizard ended.
type Outcome int

// Outcomes of the wizard.
const (
	// Interrupted: Ctrl-C; nothing may be written.
	Interrupted Outcome = iota
	// Quit: the user chose to stop at the review; nothing is written.
	Quit
	// FlakeOnly: write the flake and answers, touch no disk.
	FlakeOnly
	// ApplyAll: write the flake, build, erase the confirmed disk, boot.
	ApplyAll
	// Rebuild (reconfigure): write the flake, build, boot; no disk is
	// touched.
	Rebuild
)

// ReviewFunc describes, without side effects, what applying the plan of w
// would do; the wizard shows it on its review screen.
type ReviewFunc func(w *Wizard) Review

// Model is the full-screen wizard: the question screens, the review and the
// typed confirmation. It ends with an Outcome; the steps run after it.
type Model struct {
	w       *Wizard
	review  ReviewFunc
	observe func(Answers, int)

	idx     int // current question screen; len(screenIDs) = review, +1 = confirm
	screen  Screen
	form    *huh.Form
	problem string

	rev  Review
	view viewport.Model
	// preparing is set while the review is computed (in a command: it
	// reads the disks and asks Nix its version); keys typed meanwhile wait
	// in typedAhead and go to the review's form once it is there.
	preparing  bool
	typedAhead []tea.Msg
	reviews    *reviewRunner
	moves      *pageMoves
	startCmd   tea.Cmd
	choice     string
	confirm    string
	width      int
	height     int
	outcome    Outcome
	quitting   bool
}

const (
	choiceApply = "apply"
	choiceFlake = "flake"
	choiceBack  = "back"
	choiceQuit  = "quit"
)

// NewModel returns the wizard starting at screen start. review describes
// the plan on the review screen; observe (optional) is called with the
// answers and screen index after every change, for the draft kept when the
// connection drops.
func NewModel(w *Wizard, start int, review ReviewFunc, observe func(Answers, int)) *Model {
	m := &Model{w: w, review: review, observe: observe, width: 80, height: 24, reviews: &reviewRunner{}, moves: newPageMoves()}
	if start < 0 || start >= len(screenIDs) {
		start = 0
	}
	m.startCmd = m.goTo(start)
	return m
}

// Outcome is how the wizard ended.
func (m *Model) Outcome() Outcome { return m.outcome }

// Review is the review the user confirmed.
func (m *Model) Review() Review { return m.rev }

// Screen is the index of the current screen.
func (m *Model) Screen() int { return m.idx }

var (
	titleStyle   = lipgloss.NewStyle().Bold(true)
	dimStyle     = lipgloss.NewStyle().Faint(true)
	problemStyle = lipgloss.NewStyle().Foreground(lipgloss.Red).Bold(true)
	eraseStyle   = lipgloss.NewStyle().Foreground(lipgloss.Red).Bold(true)
	warnStyle    = lipgloss.NewStyle().Foreground(lipgloss.Yellow)
)

func theme() huh.Theme { return huh.ThemeFunc(huh.ThemeBase16) }

func keymap() *huh.KeyMap {
	k := huh.NewDefaultKeyMap()
	return k
}

// goTo builds the form of screen i (a question screen, the review or the
// confirmation) and returns the command that starts it. The review's form
// comes once its review is ready (reviewReady).
func (m *Model) goTo(i int) tea.Cmd {
	m.idx = i
	m.problem = ""
	m.preparing = false
	n := len(screenIDs)
	switch {
	case i < n:
		m.screen = m.w.Screens()[i]
		m.form = m.questionForm(m.screen)
	case i == n:
		m.preparing = true
		m.form = nil
		m.rev = Review{}
		m.view = viewport.New()
		m.layout()
		return m.reviews.start(m.review, m.w.snapshot())
	default:
		m.confirm = ""
		accept := m.rev.ConfirmNames
		m.form = huh.NewForm(huh.NewGroup(
			huh.NewInput().Title("Type " + m.rev.EraseDevice + " to erase it, or press Esc to go back").
				Value(&m.confirm).
				Validate(func(s string) error {
					if slices.Contains(accept, strings.TrimSpace(s)) {
						return nil
					}
					return errNotDevice(m.rev.EraseDevice)
				}),
		))
	}
	m.form = m.form.WithTheme(theme()).WithKeyMap(keymap()).WithShowHelp(true)
	m.layout()
	m.notify()
	return m.initForm()
}

// reviewReady shows a review computed by reviewRunner, then hands it the
// keys typed while it was being prepared.
func (m *Model) reviewReady(rev Review) tea.Cmd {
	m.preparing = false
	m.rev = rev
	m.choice = choiceApply
	if m.rev.Blocker != "" || m.rev.EraseDevice == "" {
		m.choice = choiceFlake
	}
	if m.rev.Reconfigure != nil {
		m.choice = choiceValue(ReconfigureChoices(m.rev)[0])
	}
	m.form = huh.NewForm(huh.NewGroup(
		huh.NewSelect[string]().Title("What now?").Options(m.choices()...).Value(&m.choice),
	)).WithTheme(theme()).WithKeyMap(keymap()).WithShowHelp(true)
	m.layout()
	cmds := []tea.Cmd{m.initForm()}
	keys := m.typedAhead
	m.typedAhead = nil
	for _, k := range keys {
		if m.quitting {
			break
		}
		_, cmd := m.Update(k)
		cmds = append(cmds, cmd)
	}
	return tea.Batch(cmds...)
}

type errNotDevice string

func (e errNotDevice) Error() string { return "type " + string(e) + " exactly to erase it" }

func (m *Model) choices() []huh.Option[string] {
	if m.rev.Reconfigure != nil {
		return reconfigureOptions(m.rev)
	}
	var opts []huh.Option[string]
	if m.rev.Blocker == "" && m.rev.EraseDevice != "" {
		opts = append(opts, huh.NewOption("Apply: write the flake, build, erase the disk above, boot", choiceApply))
	}
	opts = append(opts,
		huh.NewOption("Write the flake and answers only (no disk is touched)", choiceFlake),
		huh.NewOption("Go back and change answers", choiceBack),
		huh.NewOption("Quit without writing anything", choiceQuit),
	)
	return opts
}

// questionForm turns a screen's groups into a huh form.
func (m *Model) questionForm(s Screen) *huh.Form {
	// Lists get a page each so every page fits 80x24; short inputs that
	// follow each other share one.
	var groups []*huh.Group
	for _, g := range s.Groups {
		g := g
		var fields []huh.Field
		flush := func() {
			if len(fields) == 0 {
				return
			}
			hg := huh.NewGroup(fields...)
			if g.Show != nil {
				hg = hg.WithHideFunc(func() bool { return !g.Show() })
			}
			groups = append(groups, hg)
			fields = nil
		}
		for _, q := range g.Questions {
			f := field(q)
			if f == nil {
				continue
			}
			switch q.Kind {
			case Select, MultiSelect, Text:
				flush()
				fields = append(fields, f)
				flush()
			default:
				fields = append(fields, f)
			}
		}
		flush()
	}
	if len(groups) == 0 {
		groups = append(groups, huh.NewGroup(huh.NewNote().Title("Press Enter to begin.").Next(true).NextLabel("Begin")))
	}
	return huh.NewForm(groups...)
}

// describe joins a question's help and live feedback.
func describe(q Question, v string) string {
	parts := []string{}
	if q.Help != "" {
		parts = append(parts, q.Help)
	}
	feedback := ""
	if q.Feedback != nil {
		feedback = q.Feedback(v)
	}
	if feedback != "" {
		parts = append(parts, feedback)
	}
	// Say what is wrong as it is typed, in full (the form's own error line
	// is one truncated line).
	if (q.Kind == Input || q.Kind == Text) && q.Validate != nil && strings.TrimSpace(v) != "" && !strings.HasPrefix(feedback, "✗") {
		if err := q.Validate(strings.TrimSpace(v)); err != nil {
			parts = append(parts, "✗ "+err.Error())
		}
	}
	return strings.Join(parts, "\n")
}

func field(q Question) huh.Field {
	validate := func(s string) error {
		if q.Validate == nil {
			return nil
		}
		return q.Validate(strings.TrimSpace(s))
	}
	switch q.Kind {
	case Select:
		var opts []huh.Option[string]
		for _, o := range q.Options {
			opts = append(opts, huh.NewOption(o.Label, o.Value))
		}
		return huh.NewSelect[string]().Title(q.Title).Options(opts...).Value(q.Str).
			DescriptionFunc(func() string { return describe(q, *q.Str) }, q.Str).Validate(validate)
	case MultiSelect:
		var opts []huh.Option[string]
		for _, o := range q.Options {
			opts = append(opts, huh.NewOption(o.Label, o.Value).Selected(slices.Contains(*q.Multi, o.Value)))
		}
		return huh.NewMultiSelect[string]().Title(q.Title).Description(q.Help).Options(opts...).Height(len(opts) + 3).Value(q.Multi).
			Validate(func([]string) error { return validate("") })
	case Input:
		return huh.NewInput().Title(q.Title).Value(q.Str).
			DescriptionFunc(func() string { return describe(q, *q.Str) }, q.Str).Validate(validate)
	case Text:
		return huh.NewText().Title(q.Title).Description(q.Help + " (Tab goes on)").Lines(3).Value(q.Str).Validate(validate)
	case Confirm:
		return huh.NewConfirm().Title(q.Title).Description(q.Help).Affirmative("Yes").Negative("No").Value(q.Bool)
	case Note:
		return huh.NewNote().Title(q.Title).Description(q.Help)
	}
	return nil
}

func (m *Model) notify() {
	if m.observe != nil && m.idx < len(screenIDs) {
		m.observe(m.w.A, m.idx)
	}
}

// chrome is the number of lines around the form: header, intro, problem, footer.
func (m *Model) header() string {
	n := len(screenIDs) + 2
	var title string
	switch {
	case m.idx < len(screenIDs):
		title = m.screen.Title
	case m.idx == len(screenIDs):
		title = "Review"
	default:
		title = "Confirm"
	}
	left := titleStyle.Render("homestaker") + dimStyle.Render(" · step "+strconv.Itoa(m.idx+1)+" of "+strconv.Itoa(n)+" · ") + titleStyle.Render(title)
	right := "ctrl+c quit"
	if m.idx > 0 {
		right = "esc back · " + right
	}
	if m.idx == len(screenIDs) {
		right = "pgup/pgdn scroll · " + right
	}
	gap := min(m.width, 100) - lipgloss.Width(left) - lipgloss.Width(right)
	if gap < 2 {
		return left
	}
	return left + strings.Repeat(" ", gap) + dimStyle.Render(right)
}

func (m *Model) intro() string {
	switch {
	case m.idx < len(screenIDs):
		return m.screen.Intro
	case m.idx > len(screenIDs):
		return eraseStyle.Render("This erases everything on "+m.rev.EraseDevice) + "\n" + m.rev.EraseDetail
	}
	return ""
}

// layout sizes the form (and the review's viewport) to the window.
func (m *Model) layout() {
	w := m.width
	if w > 100 {
		w = 100
	}
	used := 2 // header, blank
	if in := m.intro(); in != "" {
		used += lipgloss.Height(ansi.Wrap(in, w, " /")) + 1
	}
	if m.problem != "" {
		used += lipgloss.Height(m.problem)
	}
	if m.idx == len(screenIDs) {
		formH := len(m.choices()) + 3 // title, choices, help, a blank line
		m.view.SetWidth(w)
		m.view.SetContent(ansi.Wrap(m.rev.Text(), w, " /"))
		m.view.SetHeight(max(3, m.height-used-formH))
		used = m.height - formH
	}
	if m.form != nil {
		m.form = m.form.WithWidth(w).WithHeight(max(5, m.height-used-1))
	}
}

// Init starts the first form.
func (m *Model) Init() tea.Cmd { return m.startCmd }

// Update handles keys, window sizes and the forms' progress. It never
// waits: the review is computed in a command (reviewRunner).
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
	case reviewMsg:
		if msg.gen != m.reviews.latest() || !m.preparing {
			return m, nil // a review of answers since changed
		}
		return m, m.reviewReady(msg.rev)
	case tea.KeyPressMsg:
		switch msg.String() {
		case "ctrl+c":
			m.outcome = Interrupted
			m.quitting = true
			return m, tea.Quit
		case "esc":
			if m.preparing && len(m.typedAhead) > 0 {
				break
			}
			if m.idx > 0 {
				return m, m.goTo(m.idx - 1)
			}
			return m, nil
		case "pgup", "pgdown":
			if m.idx == len(screenIDs) && !m.preparing {
				var cmd tea.Cmd
				m.view, cmd = m.view.Update(msg)
				return m, cmd
			}
		}
		if m.preparing {
			m.typedAhead = append(m.typedAhead, msg)
			return m, nil
		}
	case tea.PasteMsg:
		if m.preparing {
			m.typedAhead = append(m.typedAhead, msg)
			return m, nil
		}
	}
	if m.form == nil {
		return m, nil
	}
	cmd := m.formUpdate(msg)
	switch m.form.State {
	case huh.StateAborted:
		m.outcome = Interrupted
		m.quitting = true
		return m, tea.Quit
	case huh.StateCompleted:
		return m, tea.Batch(cmd, m.next())
	}
	m.notify()
	return m, cmd
}

// next accepts the current screen and moves on.
func (m *Model) next() tea.Cmd {
	n := len(screenIDs)
	switch {
	case m.idx < n:
		if m.screen.Check != nil {
			if err := m.screen.Check(); err != nil {
				cmd := m.goTo(m.idx)
				m.problem = problemStyle.Render("✗ " + err.Error())
				m.layout()
				return cmd
			}
		}
		if m.screen.Done != nil {
			m.screen.Done()
		}
		return m.goTo(m.idx + 1)
	case m.idx == n:
		switch m.choice {
		case choiceBack:
			return m.goTo(n - 1)
		case choiceQuit:
			m.outcome, m.quitting = Quit, true
			return tea.Quit
		case choiceFlake:
			m.outcome, m.quitting = FlakeOnly, true
			return tea.Quit
		case choiceRebuild:
			m.outcome, m.quitting = Rebuild, true
			return tea.Quit
		}
		return m.goTo(n + 1)
	default:
		m.outcome, m.quitting = ApplyAll, true
		return tea.Quit
	}
}

// View draws the current screen.
func (m *Model) View() tea.View {
	if m.quitting {
		return tea.NewView("")
	}
	var b strings.Builder
	b.WriteString(m.header())
	b.WriteString("\n\n")
	if in := m.intro(); in != "" {
		b.WriteString(ansi.Wrap(in, min(m.width, 100), " /"))
		b.WriteString("\n\n")
	}
	if m.idx == len(screenIDs) {
		if m.preparing {
			b.WriteString(dimStyle.Render("Preparing the review… (checking the disk, the flake folder and Nix)"))
		} else {
			b.WriteString(m.view.View())
		}
		b.WriteString("\n")
	}
	if m.problem != "" {
		b.WriteString(m.problem)
		b.WriteString("\n")
	}
	if m.form != nil {
		b.WriteString(m.form.View())
	}
	body := strings.TrimRight(b.String(), "\n")
	if lines := strings.Split(body, "\n"); m.height > 0 && len(lines) > m.height {
		body = strings.Join(lines[:m.height], "\n")
	}
	v := tea.NewView(body)
	v.AltScreen = true
	return v
}

// Plain returns a view's text without colours or styles, for golden tests
// and logs.
func Plain(v tea.View) string {
	lines := strings.Split(ansi.Strip(v.Content), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}
