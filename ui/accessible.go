package ui

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// ErrInputEnded means the input closed before every question was answered.
var ErrInputEnded = errors.New("the input ended before every question was answered")

// ErrQuit means the user chose to quit.
var ErrQuit = errors.New("quit")

// backWord, typed at any prompt, returns to the previous screen.
const backWord = ":back"

var errBack = errors.New("back")

// Lines asks questions as plain lines of text: for dumb terminals, screen
// readers and sessions without a TTY (ssh host homestaker). It reads its
// input through one buffered reader for the whole session, so piped answers
// are never lost between prompts.
type Lines struct {
	in  *bufio.Reader
	out io.Writer
}

// NewLines returns a line prompter reading r and writing w.
func NewLines(r io.Reader, w io.Writer) *Lines {
	return &Lines{in: bufio.NewReader(r), out: w}
}

func (l *Lines) printf(format string, args ...any) { fmt.Fprintf(l.out, format, args...) }

// readLine reads one line without its line ending.
func (l *Lines) readLine() (string, error) {
	s, err := l.in.ReadString('\n')
	if err != nil && (s == "" || !errors.Is(err, io.EOF)) {
		if errors.Is(err, io.EOF) {
			return "", ErrInputEnded
		}
		return "", err
	}
	return strings.TrimRight(s, "\r\n"), nil
}

// answer prints a prompt and reads the trimmed reply; errBack when the
// user asks to go back.
func (l *Lines) answer(format string, args ...any) (string, error) {
	l.printf(format, args...)
	v, err := l.readLine()
	if err != nil {
		return "", err
	}
	v = strings.TrimSpace(v)
	if v == backWord {
		return "", errBack
	}
	return v, nil
}

// RunScreens asks the screens from start on, going back on ":back", and
// returns when the last screen is answered.
func (l *Lines) RunScreens(w *Wizard, start int) error {
	i := start
	for i < len(screenIDs) {
		screens := w.Screens()
		s := screens[i]
		err := l.screen(s, i, len(screens))
		switch {
		case errors.Is(err, errBack):
			if i > 0 {
				i--
			}
			continue
		case err != nil:
			return err
		}
		if s.Check != nil {
			if err := s.Check(); err != nil {
				l.printf("✗ %v\n\n", err)
				continue
			}
		}
		if s.Done != nil {
			s.Done()
		}
		i++
	}
	return nil
}

func (l *Lines) screen(s Screen, i, n int) error {
	l.printf("\n== Step %d of %d: %s ==\n", i+1, n+2, s.Title)
	if s.Intro != "" {
		l.printf("%s\n", s.Intro)
	}
	if i > 0 {
		l.printf("(type %s at any prompt to return to the previous step)\n", backWord)
	}
	if len(s.Groups) == 0 {
		_, err := l.answer("Press Enter to go on. ")
		return err
	}
	for _, g := range s.Groups {
		if !g.visible() {
			continue
		}
		for _, q := range g.Questions {
			if err := l.Ask(q); err != nil {
				return err
			}
		}
	}
	return nil
}

// Ask asks one question until it has a valid answer.
func (l *Lines) Ask(q Question) error {
	l.printf("\n%s\n", q.Title)
	if q.Help != "" {
		l.printf("  %s\n", q.Help)
	}
	for {
		err := l.askOnce(q)
		if err == nil {
			return nil
		}
		var bad invalidAnswer
		if errors.As(err, &bad) {
			l.printf("✗ %s\n", bad.msg)
			continue
		}
		return err
	}
}

type invalidAnswer struct{ msg string }

func (e invalidAnswer) Error() string { return e.msg }

func (l *Lines) check(q Question, v string) error {
	if q.Validate != nil {
		if err := q.Validate(v); err != nil {
			return invalidAnswer{err.Error()}
		}
	}
	return nil
}

func (l *Lines) askOnce(q Question) error {
	switch q.Kind {
	case Note:
		return nil
	case Select:
		def := 1
		for i, o := range q.Options {
			if o.Value == *q.Str {
				def = i + 1
			}
			l.printf("  %d. %s\n", i+1, o.Label)
		}
		v, err := l.answer("Enter a number [%d]: ", def)
		if err != nil {
			return err
		}
		n := def
		if v != "" {
			n, err = strconv.Atoi(v)
			if err != nil || n < 1 || n > len(q.Options) {
				return invalidAnswer{fmt.Sprintf("enter a number from 1 to %d", len(q.Options))}
			}
		}
		choice := q.Options[n-1].Value
		if err := l.check(q, choice); err != nil {
			return err
		}
		*q.Str = choice
		if q.Feedback != nil {
			if f := q.Feedback(choice); f != "" {
				l.printf("  %s\n", f)
			}
		}
		return nil
	case MultiSelect:
		var defs []string
		for i, o := range q.Options {
			mark := " "
			if slices.Contains(*q.Multi, o.Value) {
				mark = "x"
				defs = append(defs, strconv.Itoa(i+1))
			}
			l.printf("  %d. [%s] %s\n", i+1, mark, o.Label)
		}
		v, err := l.answer("Enter numbers separated by spaces [%s]: ", strings.Join(defs, " "))
		if err != nil {
			return err
		}
		chosen := append([]string(nil), *q.Multi...)
		if v != "" {
			chosen = nil
			for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' }) {
				n, err := strconv.Atoi(f)
				if err != nil || n < 1 || n > len(q.Options) {
					return invalidAnswer{fmt.Sprintf("%q: enter numbers from 1 to %d", f, len(q.Options))}
				}
				if !slices.Contains(chosen, q.Options[n-1].Value) {
					chosen = append(chosen, q.Options[n-1].Value)
				}
			}
		}
		old := *q.Multi
		*q.Multi = chosen
		if err := l.check(q, ""); err != nil {
			*q.Multi = old
			return err
		}
		return nil
	case Confirm:
		def := "y/N"
		if *q.Bool {
			def = "Y/n"
		}
		v, err := l.answer("[%s]: ", def)
		if err != nil {
			return err
		}
		switch strings.ToLower(v) {
		case "":
		case "y", "yes":
			*q.Bool = true
		case "n", "no":
			*q.Bool = false
		default:
			return invalidAnswer{"answer y or n"}
		}
		return nil
	case Input:
		prompt := ": "
		if *q.Str != "" {
			prompt = "[" + *q.Str + "]: "
		}
		v, err := l.answer("%s", prompt)
		if err != nil {
			return err
		}
		if v == "" {
			v = *q.Str
		}
		if err := l.check(q, v); err != nil {
			return err
		}
		*q.Str = v
		if q.Feedback != nil {
			if f := q.Feedback(v); f != "" && !strings.HasPrefix(f, "✗") {
				l.printf("  %s\n", f)
			}
		}
		return nil
	case Text:
		if cur := lines(*q.Str); len(cur) > 0 {
			l.printf("Currently:\n")
			for _, c := range cur {
				l.printf("  %s\n", c)
			}
			l.printf("Enter lines, then an empty line (just an empty line keeps these):\n")
		} else {
			l.printf("Enter lines, then an empty line:\n")
		}
		var got []string
		for {
			v, err := l.readLine()
			if err != nil {
				return err
			}
			v = strings.TrimSpace(v)
			if v == backWord && len(got) == 0 {
				return errBack
			}
			if v == "" {
				break
			}
			got = append(got, v)
		}
		text := strings.Join(got, "\n")
		if len(got) == 0 {
			text = *q.Str
		}
		if err := l.check(q, text); err != nil {
			return err
		}
		*q.Str = text
		return nil
	}
	return fmt.Errorf("question %q has an unknown kind", q.Title)
}

// Confirm asks for the device to be typed back; it returns ErrQuit when the
// user types nothing.
func (l *Lines) Confirm(prompt string, accept []string) error {
	for {
		l.printf("%s: ", prompt)
		v, err := l.readLine()
		if err != nil {
			return err
		}
		v = strings.TrimSpace(v)
		if v == "" {
			return ErrQuit
		}
		if slices.Contains(accept, v) {
			return nil
		}
		l.printf("✗ %q is not the device to erase; type it exactly, or just Enter to stop.\n", v)
	}
}

// Choose asks to pick one of options (labels) and returns its index.
func (l *Lines) Choose(title string, options []string) (int, error) {
	val := "1"
	q := Question{Title: title, Kind: Select, Str: &val}
	for i, o := range options {
		q.Options = append(q.Options, Option{o, strconv.Itoa(i + 1)})
	}
	if err := l.Ask(q); err != nil {
		return 0, err
	}
	n, _ := strconv.Atoi(val)
	return n - 1, nil
}
