package ui

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
)

// slowReviewModel is a model at the output screen whose review waits for
// release (as one waits for `nix --version`).
func slowReviewModel(t *testing.T) (*Model, chan struct{}, *int) {
	m := newModel(t)
	release := make(chan struct{})
	calls := 0
	m.review = func(w *Wizard) Review {
		calls++
		<-release
		p := w.Plan()
		return Review{Plan: p, FlakeDir: "/srv/flake", EraseDevice: p.Disk.Device, ConfirmNames: []string{p.Disk.Device}}
	}
	m.w.A.FeeRecipient = testFee
	m.w.A.SSHKeys = testKey
	drain(m, m.goTo(len(ScreenIDs())-1), 0)
	return m, release, &calls
}

// updateNow runs one Update and fails when it does not return at once.
func updateNow(t *testing.T, m *Model, msg tea.Msg) tea.Cmd {
	t.Helper()
	done := make(chan tea.Cmd, 1)
	go func() {
		_, cmd := m.Update(msg)
		done <- cmd
	}()
	select {
	case cmd := <-done:
		return cmd
	case <-time.After(2 * time.Second):
		t.Fatalf("Update(%v) blocked", msg)
		return nil
	}
}

// TestReviewIsPreparedInACommand: accepting the last screen returns at
// once with "Preparing the review…"; keys typed meanwhile act on the review
// once it is there.
func TestReviewIsPreparedInACommand(t *testing.T) {
	m, release, _ := slowReviewModel(t)
	updateNow(t, m, enter)        // the boot format
	cmd := updateNow(t, m, enter) // the flake folder: the output screen is done
	if m.Screen() != len(ScreenIDs()) || !m.preparing {
		t.Fatalf("screen %d, preparing %v", m.Screen(), m.preparing)
	}
	if v := Plain(m.View()); !strings.Contains(v, "Preparing the review") {
		t.Errorf("no word of the review being prepared:\n%s", v)
	}
	// Down (to "Write the flake only"), Enter: typed before the review is there.
	updateNow(t, m, down)
	updateNow(t, m, enter)
	if m.quitting {
		t.Fatalf("a key typed during the preparation acted on nothing")
	}
	close(release)
	typeAhead(t, m, reviewIn(t, cmd))
	if m.Outcome() != FlakeOnly || !m.quitting {
		t.Errorf("keys typed ahead of the review: outcome %v, quitting %v\n%s", m.Outcome(), m.quitting, Plain(m.View()))
	}
}

// TestEscWhilePreparingDropsThatReview: going back before the review is
// there leaves it unseen, and Ctrl-C still quits at once.
func TestEscWhilePreparingDropsThatReview(t *testing.T) {
	m, release, _ := slowReviewModel(t)
	updateNow(t, m, enter)
	cmd := updateNow(t, m, enter)
	updateNow(t, m, esc)
	if m.Screen() != len(ScreenIDs())-1 {
		t.Fatalf("Esc while preparing: screen %d", m.Screen())
	}
	close(release)
	updateNow(t, m, reviewIn(t, cmd))
	if m.Screen() != len(ScreenIDs())-1 || m.preparing {
		t.Errorf("a review of answers left behind was shown: screen %d", m.Screen())
	}

	m, _, _ = slowReviewModel(t) // never released
	updateNow(t, m, enter)
	updateNow(t, m, enter)
	updateNow(t, m, ctrlC)
	if m.Outcome() != Interrupted || !m.quitting {
		t.Errorf("Ctrl-C while preparing: outcome %v", m.Outcome())
	}
}

// TestSupersededReviewIsSkipped: of reviews queued behind a slow one, only
// the latest runs.
func TestSupersededReviewIsSkipped(t *testing.T) {
	var r reviewRunner
	calls := 0
	review := func(w *Wizard) Review { calls++; return Review{} }
	w := newWizard(t, serverHardware(t))
	first, second := r.start(review, w), r.start(review, w)
	if msg := first(); msg != nil {
		t.Errorf("a superseded review ran: %v", msg)
	}
	if msg, ok := second().(reviewMsg); !ok || msg.gen != r.latest() || calls != 1 {
		t.Errorf("the latest review: %v, %d calls", msg, calls)
	}
}

// reviewIn runs cmd and the commands it batches until one answers with a
// review.
func reviewIn(t *testing.T, cmd tea.Cmd) reviewMsg {
	t.Helper()
	found := make(chan reviewMsg, 1)
	var run func(tea.Cmd)
	run = func(c tea.Cmd) {
		switch msg := c().(type) {
		case reviewMsg:
			found <- msg
		case tea.BatchMsg:
			for _, c := range msg {
				if c != nil {
					go run(c)
				}
			}
		}
	}
	go run(cmd)
	select {
	case msg := <-found:
		return msg
	case <-time.After(5 * time.Second):
		t.Fatal("no review was computed")
		return reviewMsg{}
	}
}
