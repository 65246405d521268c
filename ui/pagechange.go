package ui

import (
	"reflect"
	"runtime"
	"strings"

	tea "charm.land/bubbletea/v2"
	"charm.land/huh/v2"
)

// huh moves between fields and pages through commands: a key answers with
// a command sending "next field", whose handling answers with "next group",
// and so on. The runtime runs commands concurrently with the input, so keys
// typed meanwhile reach the field being left (three quick Enters on the
// welcome sent three "next field"s, the last two then moving the hardware
// page on twice and skipping the timezone). The model therefore performs
// huh's own moves at once, in the same Update as the key that caused them,
// and hands only the rest (cursor blink, live descriptions) to the runtime.
//
// The moves are plain functions (huh.NextField, huh.PrevField and the
// unexported nextGroup and prevGroup, found by asking a one-note form),
// recognised by their code address. tea.Batch and tea.Sequence return
// closures, recognised by name, that only wrap their commands, so calling
// one never waits. Anything else (a cursor blink waits half a second) goes
// to the runtime unopened. TestPageMovesAreRecognised fails if an upgrade
// of huh or bubbletea changes any of this; the model then falls back to
// huh's own asynchronous moves.
type pageMoves struct {
	moves   map[uintptr]bool
	batches map[uintptr]bool // answers of isBatch, by address
}

func funcAddr(cmd tea.Cmd) uintptr { return reflect.ValueOf(cmd).Pointer() }

func newPageMoves() *pageMoves {
	s := &pageMoves{
		moves:   map[uintptr]bool{funcAddr(huh.NextField): true, funcAddr(huh.PrevField): true},
		batches: map[uintptr]bool{},
	}
	// A one-page form with one note answers "next field" with nextGroup
	// alone and "previous field" with prevGroup alone.
	for _, move := range []tea.Msg{huh.NextField(), huh.PrevField()} {
		f := huh.NewForm(huh.NewGroup(huh.NewNote().Title("probe")))
		f.Init()
		if _, cmd := f.Update(move); cmd != nil && !s.isBatch(cmd) {
			s.moves[funcAddr(cmd)] = true
		}
	}
	return s
}

// isBatch reports whether cmd is the closure of tea.Batch or tea.Sequence
// (compactCmds, wherever the compiler inlined it).
func (s *pageMoves) isBatch(cmd tea.Cmd) bool {
	a := funcAddr(cmd)
	is, ok := s.batches[a]
	if !ok {
		f := runtime.FuncForPC(a)
		is = f != nil && strings.Contains(f.Name(), ".compactCmds[")
		s.batches[a] = is
	}
	return is
}

// formUpdate passes msg to the form and performs the page moves it causes
// at once; it returns the commands left for the runtime.
func (m *Model) formUpdate(msg tea.Msg) tea.Cmd {
	f, cmd := m.form.Update(msg)
	if hf, ok := f.(*huh.Form); ok {
		m.form = hf
	}
	return m.settle(cmd)
}

// initForm starts the current form, performing at once any page move its
// start makes (a first page that is hidden).
func (m *Model) initForm() tea.Cmd { return m.settle(m.form.Init()) }

// settle performs the page moves among cmd (and the commands they answer
// with) on the form, and returns the other commands for the runtime.
func (m *Model) settle(cmd tea.Cmd) tea.Cmd {
	var rest []tea.Cmd
	pending := []tea.Cmd{cmd}
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		if c == nil {
			continue
		}
		switch {
		case m.moves.isBatch(c):
			// Calling a batch only unwraps it.
			switch b := c().(type) {
			case tea.BatchMsg:
				pending = append(pending, b...)
			default:
				rest = append(rest, m.sequence(b, &pending))
			}
		case m.moves.moves[funcAddr(c)]:
			if m.form.State != huh.StateNormal {
				continue
			}
			f, next := m.form.Update(c())
			if hf, ok := f.(*huh.Form); ok {
				m.form = hf
			}
			pending = append(pending, next)
		default:
			rest = append(rest, c)
		}
	}
	return tea.Batch(rest...)
}

// sequence takes the page moves out of a tea.Sequence (huh's Init uses one)
// into pending, and returns the rest, still in order.
func (m *Model) sequence(msg tea.Msg, pending *[]tea.Cmd) tea.Cmd {
	v := reflect.ValueOf(msg)
	if v.Kind() != reflect.Slice {
		return func() tea.Msg { return msg }
	}
	var rest []tea.Cmd
	for i := 0; i < v.Len(); i++ {
		c, ok := v.Index(i).Interface().(tea.Cmd)
		switch {
		case !ok:
			return func() tea.Msg { return msg }
		case c != nil && m.moves.moves[funcAddr(c)]:
			*pending = append(*pending, c)
		default:
			rest = append(rest, c)
		}
	}
	return tea.Sequence(rest...)
}
