package ui

import (
	"slices"
	"sync"
	"sync/atomic"

	tea "charm.land/bubbletea/v2"
)

// reviewMsg carries a review computed outside Update; gen tells a review
// of the current answers from one the user has since gone back from.
type reviewMsg struct {
	gen int64
	rev Review
}

// reviewRunner computes reviews in commands, one at a time: a review may
// take seconds (it reads the disks and asks Nix its version, with a
// timeout), and the ReviewFunc need not be safe to run twice at once.
// A review already superseded when its turn comes is skipped.
type reviewRunner struct {
	mu  sync.Mutex
	gen atomic.Int64
}

func (r *reviewRunner) latest() int64 { return r.gen.Load() }

// start returns the command that computes the review of w (a snapshot the
// form no longer writes to).
func (r *reviewRunner) start(review ReviewFunc, w *Wizard) tea.Cmd {
	gen := r.gen.Add(1)
	return func() tea.Msg {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.gen.Load() != gen {
			return nil
		}
		return reviewMsg{gen: gen, rev: review(w)}
	}
}

// snapshot is a copy of the wizard for a review computed while the forms
// go on writing to the original's answers.
func (w *Wizard) snapshot() *Wizard {
	c := *w
	c.A.Relays = slices.Clone(w.A.Relays)
	return &c
}
