// Package report carries progress from the code that does the work (disk,
// secrets, image, steps) to whoever shows it (the wizard's apply view, or
// plain lines on a dumb terminal). It holds only data types, so every
// package can import it without pulling in a user interface.
package report

// Level says how an event should be shown.
type Level int

// Levels of an event.
const (
	Info Level = iota
	Warning
	Error
)

// Event is one thing a running step wants the user to see.
type Event struct {
	// Step names the step ("disk", "keys", "build", ...).
	Step string
	// Message is a sentence for the user.
	Message string
	// Command is set when the event announces an external command being run.
	Command []string
	// Done and Total measure progress in the step's unit (bytes, items);
	// Total is 0 when unknown.
	Done, Total int64
	Level       Level
}

// Reporter receives events. Implementations must be safe for use by one
// goroutine at a time; the step runner serialises calls.
type Reporter interface {
	Report(Event)
}

// Func adapts a function to a Reporter.
type Func func(Event)

// Report calls f(e).
func (f Func) Report(e Event) { f(e) }

// Discard is a Reporter that drops every event.
var Discard Reporter = Func(func(Event) {})
