package ui

import (
	"reflect"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/huh/v2"
)

// typeAhead runs the model the way a terminal that types faster than the
// model answers does: every key is queued before any command's message,
// so each message a command sends arrives after all the keys. Commands
// that do not answer within 10 ms (cursor blink timers) are dropped.
func typeAhead(t *testing.T, m *Model, keys ...tea.Msg) {
	t.Helper()
	queue := append([]tea.Msg(nil), keys...)
	run := func(cmd tea.Cmd) {
		answers := make(chan tea.Msg, 64)
		outstanding := 0
		launch := func(c tea.Cmd) {
			if c != nil {
				outstanding++
				go func() { answers <- c() }()
			}
		}
		launch(cmd)
		deadline := time.After(10 * time.Millisecond)
		for outstanding > 0 {
			select {
			case <-deadline:
				return
			case msg := <-answers:
				outstanding--
				switch msg := msg.(type) {
				case nil, tea.QuitMsg:
				case tea.BatchMsg:
					for _, c := range msg {
						launch(c)
					}
				default:
					// tea.Sequence: a slice of commands.
					if v := reflect.ValueOf(msg); v.Kind() == reflect.Slice {
						for i := 0; i < v.Len(); i++ {
							if c, ok := v.Index(i).Interface().(tea.Cmd); ok {
								launch(c)
							}
						}
						continue
					}
					queue = append(queue, msg)
				}
			}
		}
	}
	for steps := 0; len(queue) > 0; steps++ {
		if steps > 5000 {
			t.Fatalf("the model never settles")
		}
		msg := queue[0]
		queue = queue[1:]
		_, cmd := m.Update(msg)
		run(cmd)
	}
}

func typed(s string) []tea.Msg {
	var out []tea.Msg
	for _, r := range s {
		out = append(out, tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	return out
}

func keyList(parts ...any) []tea.Msg {
	var out []tea.Msg
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			out = append(out, typed(p)...)
		case tea.KeyPressMsg:
			out = append(out, p)
		}
	}
	return out
}

var ctrlU = tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl}

// TestThreeQuickEntersStopAtTheTimezone is the newcomer's three quick
// Enters: welcome, the hardware choice, the node name; the timezone is
// then focused and a fourth Enter accepts it.
func TestThreeQuickEntersStopAtTheTimezone(t *testing.T) {
	m := newModel(t)
	typeAhead(t, m, enter, enter, enter)
	if m.Screen() != 1 {
		t.Fatalf("three quick Enters: screen %d (%s), want 1 (hardware)\n%s", m.Screen(), m.header(), Plain(m.View()))
	}
	typeAhead(t, m, enter, enter) // the timezone, the network
	if m.Screen() != 2 {
		t.Fatalf("two more Enters: screen %d, want 2 (clients)", m.Screen())
	}
}

// TestTypingAheadReachesTheNextField types a whole screen without waiting:
// every character lands in the field it was meant for.
func TestTypingAheadReachesTheNextField(t *testing.T) {
	m := newModel(t)
	typeAhead(t, m, keyList(enter, enter, ctrlU, "beta", enter, ctrlU, "Europe/Helsinki", enter, enter)...) // the last: the network
	if m.w.A.HostName != "beta" || m.w.A.Timezone != "Europe/Helsinki" {
		t.Errorf("typed ahead: name %q, timezone %q", m.w.A.HostName, m.w.A.Timezone)
	}
	if m.Screen() != 2 {
		t.Errorf("screen %d, want 2 (clients)\n%s", m.Screen(), Plain(m.View()))
	}
}

// TestPageMovesAreRecognised pins what the model relies on in huh and
// bubbletea to perform page moves at once (pagechange.go).
func TestPageMovesAreRecognised(t *testing.T) {
	s := newPageMoves()
	if len(s.moves) != 4 {
		t.Errorf("found %d of huh's 4 move commands (next/previous field and group)", len(s.moves))
	}
	noop := func() tea.Msg { return nil }
	if !s.isBatch(tea.Batch(noop, noop)) || !s.isBatch(tea.Sequence(noop, noop)) {
		t.Errorf("tea.Batch or tea.Sequence not recognised")
	}
	if s.isBatch(noop) || s.isBatch(huh.NextField) {
		t.Errorf("a plain command taken for a batch")
	}
	// huh's own batches (compiled into huh) are recognised too.
	v := "a"
	f := huh.NewForm(huh.NewGroup(huh.NewSelect[string]().Title("a").Options(huh.NewOptions("a", "b")...).Value(&v).
		DescriptionFunc(func() string { return v }, &v)))
	f.Init()
	_, cmd := f.Update(enter)
	if cmd == nil || !s.isBatch(cmd) {
		t.Errorf("huh's answer to Enter is not recognised as a batch")
	}
}

// TestQuickKeysRepeatedly types the first screens at full speed many
// times: no run may lose or misplace a key.
func TestQuickKeysRepeatedly(t *testing.T) {
	for i := 0; i < 5; i++ {
		m := newModel(t)
		typeAhead(t, m, keyList(enter, enter, ctrlU, "beta", enter, ctrlU, "Europe/Helsinki", enter, down, enter)...)
		if m.w.A.HostName != "beta" || m.w.A.Timezone != "Europe/Helsinki" || m.w.A.Network != "hoodi" || m.Screen() != 2 {
			t.Fatalf("run %d: name %q, timezone %q, network %q, screen %d", i, m.w.A.HostName, m.w.A.Timezone, m.w.A.Network, m.Screen())
		}
	}
}
