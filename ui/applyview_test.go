package ui

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/homestaker/homestaker/steps"
)

// TestApplyModelFollowsTheSteps feeds the view the events of a five-step
// apply and checks every screen fits 80x24 and says where the apply is.
func TestApplyModelFollowsTheSteps(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	stopped := 0
	m := NewApplyModel("Applying beta", func() time.Time { return now }, func() { stopped++ })
	var model tea.Model = m
	send := func(e steps.Event) string {
		e.Of, e.At = 5, now
		model, _ = model.Update(ApplyEventMsg{Event: e})
		view := ansi.Strip(model.(*ApplyModel).render())
		lines := strings.Split(view, "\n")
		if len(lines) > 24 {
			t.Errorf("%d lines:\n%s", len(lines), view)
		}
		for _, l := range lines {
			if ansi.StringWidth(l) > 80 {
				t.Errorf("line %q is wider than 80", l)
			}
		}
		return view
	}
	send(steps.Event{N: 1, Step: "flake", Title: "Keys and flake of beta", Status: steps.Started})
	v := send(steps.Event{N: 1, Step: "flake", Status: steps.Result, Message: "+ create /home/me/flake/hosts/beta/default.nix"})
	if !strings.Contains(v, "▸ [1/5] Keys and flake of beta") || !strings.Contains(v, "+ create /home/me/flake/hosts/beta/default.nix") {
		t.Errorf("running step or its line missing:\n%s", v)
	}
	send(steps.Event{N: 1, Step: "flake", Status: steps.Done})
	for i := 0; i < 60; i++ { // more lines than fit
		send(steps.Event{N: 2, Step: "evaluate", Title: "Evaluate", Status: steps.Note, Message: strings.Repeat("x", 120)})
	}
	v = send(steps.Event{N: 2, Step: "evaluate", Status: steps.Skipped, Message: "done 12:00:00 in the interrupted apply"})
	if !strings.Contains(v, "✓ [1/5] Keys and flake of beta") || !strings.Contains(v, "- [2/5] Evaluate: done 12:00:00") {
		t.Errorf("finished and skipped steps not marked:\n%s", v)
	}
	v = send(steps.Event{N: 3, Step: "build", Title: "Build the kexec tree of beta", Status: steps.Started})
	if !strings.Contains(v, "Build the kexec tree of beta") {
		t.Errorf("build view missing:\n%s", v)
	}
	model, _ = model.Update(tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl})
	if stopped != 1 || !strings.Contains(ansi.Strip(model.(*ApplyModel).render()), "stopping") {
		t.Errorf("Ctrl-C: interrupt called %d times", stopped)
	}
	v = send(steps.Event{N: 3, Step: "build", Status: steps.Failed, Message: "context canceled"})
	if !strings.Contains(v, "✗ [3/5] Build the kexec tree of beta: context canceled") {
		t.Errorf("failed step not marked:\n%s", v)
	}
	model, cmd := model.Update(ApplyDoneMsg{Err: nil})
	if done, _ := model.(*ApplyModel).Done(); !done || cmd == nil {
		t.Error("the view did not end with the apply")
	}
}
