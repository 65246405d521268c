// Package image builds and handles the images a homestaker node boots: the
// flake renderer, `nix build` with a progress view, artifact discovery and
// manifests, and the checks that keep a RAM-resident system bootable.
package nixbuild

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Activity and result type numbers of Nix's structured log, as declared in
// NixOS/nix src/libutil/logging.hh (ActivityType, ResultType; the same
// numbers in Nix 2.8 and in current releases, checked November 2026).
const (
	actCopyPath      = 100
	actFileTransfer  = 101
	actRealise       = 102
	actCopyPaths     = 103
	actBuilds        = 104
	actBuild         = 105
	actSubstitute    = 108
	actQueryPathInfo = 109
	actBuildWaiting  = 111

	resBuildLogLine     = 101
	resSetPhase         = 104
	resProgress         = 105
	resSetExpected      = 106
	resPostBuildLogLine = 107
)

// DefaultMaxLogLine is the longest stderr line NixLogReader keeps; the rest
// of a longer line is read and dropped. Compiler command lines in build logs
// reach a few hundred kilobytes, so this is generous but bounded.
const DefaultMaxLogLine = 1 << 20

// NixLogKind says what one stderr line of `nix build --log-format
// internal-json` was.
type NixLogKind int

// Kinds of log lines.
const (
	// NixLogPlain is a line that is not structured JSON (kept as text).
	NixLogPlain NixLogKind = iota
	// NixLogStart starts an activity (ID, Type, Text, Fields, Parent).
	NixLogStart
	// NixLogStop stops the activity ID.
	NixLogStop
	// NixLogResult reports a result of type Type for activity ID.
	NixLogResult
	// NixLogMsg is a message at Level (0 error, 1 warn, 2 notice, 3 info, …).
	NixLogMsg
)

// NixLogField is one element of a structured log line's "fields": Nix mixes
// unsigned numbers and strings.
type NixLogField struct {
	Int   uint64
	Str   string
	IsStr bool
}

// NixLogEvent is one parsed line of Nix's stderr.
type NixLogEvent struct {
	Kind   NixLogKind
	ID     uint64
	Parent uint64
	// Type is the activity type of a start, the result type of a result.
	Type  int
	Level int
	// Text is the activity's description, the message (without ANSI
	// escapes), or the plain line.
	Text   string
	Fields []NixLogField
	// Truncated is set when the line was longer than the reader's limit.
	Truncated bool
}

// Str returns field i as a string, or "" when it is missing or a number.
func (e NixLogEvent) Str(i int) string {
	if i < 0 || i >= len(e.Fields) || !e.Fields[i].IsStr {
		return ""
	}
	return e.Fields[i].Str
}

// Int returns field i as a number, and false when it is missing or a string.
func (e NixLogEvent) Int(i int) (uint64, bool) {
	if i < 0 || i >= len(e.Fields) || e.Fields[i].IsStr {
		return 0, false
	}
	return e.Fields[i].Int, true
}

// NixLogReader reads Nix's stderr one event at a time with bounded memory:
// a line longer than the limit is cut and the rest of it discarded.
type NixLogReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewNixLogReader returns a reader of r that keeps at most maxLine bytes of
// a line (DefaultMaxLogLine when maxLine <= 0).
func NewNixLogReader(r io.Reader, maxLine int) *NixLogReader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLogLine
	}
	// The buffer need not hold a whole line: readLine gathers chunks.
	size := min(maxLine, 64<<10)
	if size < 16 {
		size = 16 // bufio's minimum
	}
	return &NixLogReader{r: bufio.NewReaderSize(r, size), max: maxLine}
}

// Next returns the next non-empty line as an event, or io.EOF at the end.
func (lr *NixLogReader) Next() (NixLogEvent, error) {
	for {
		line, truncated, err := lr.readLine()
		if len(line) > 0 {
			ev := ParseNixLogLine(line)
			ev.Truncated = ev.Truncated || truncated
			return ev, nil
		}
		if err != nil {
			return NixLogEvent{}, err
		}
	}
}

// readLine returns one line without its newline, cut to the limit.
func (lr *NixLogReader) readLine() (line []byte, truncated bool, err error) {
	lr.buf = lr.buf[:0]
	for {
		chunk, err := lr.r.ReadSlice('\n')
		if room := lr.max - len(lr.buf); room > 0 {
			if len(chunk) > room {
				lr.buf = append(lr.buf, chunk[:room]...)
				truncated = true
			} else {
				lr.buf = append(lr.buf, chunk...)
			}
		} else if len(chunk) > 0 && !(len(chunk) == 1 && chunk[0] == '\n') {
			truncated = true
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line = bytes.TrimRight(lr.buf, "\r\n")
		if err != nil && err != io.EOF {
			return line, truncated, err
		}
		if err == io.EOF && len(lr.buf) == 0 {
			return nil, false, io.EOF
		}
		return line, truncated, nil
	}
}

// rawNixLog is the JSON object after "@nix ".
type rawNixLog struct {
	Action string            `json:"action"`
	ID     uint64            `json:"id"`
	Parent uint64            `json:"parent"`
	Type   int               `json:"type"`
	Level  int               `json:"level"`
	Text   string            `json:"text"`
	Msg    string            `json:"msg"`
	Fields []json.RawMessage `json:"fields"`
}

var nixLogPrefix = []byte("@nix ")

// ParseNixLogLine parses one stderr line of Nix. A line that is not a valid
// "@nix {…}" object comes back as NixLogPlain with its text cleaned of
// terminal escapes; it never fails.
func ParseNixLogLine(line []byte) NixLogEvent {
	if !bytes.HasPrefix(line, nixLogPrefix) {
		return NixLogEvent{Kind: NixLogPlain, Text: CleanLogText(string(line))}
	}
	var raw rawNixLog
	if err := json.Unmarshal(line[len(nixLogPrefix):], &raw); err != nil {
		return NixLogEvent{Kind: NixLogPlain, Text: CleanLogText(string(line))}
	}
	ev := NixLogEvent{ID: raw.ID, Parent: raw.Parent, Type: raw.Type, Level: raw.Level}
	switch raw.Action {
	case "start":
		ev.Kind = NixLogStart
		ev.Text = CleanLogText(raw.Text)
	case "stop":
		ev.Kind = NixLogStop
	case "result":
		ev.Kind = NixLogResult
	case "msg":
		ev.Kind = NixLogMsg
		ev.Text = cleanLogLines(raw.Msg)
	default:
		return NixLogEvent{Kind: NixLogPlain, Text: CleanLogText(string(line))}
	}
	if len(raw.Fields) > 0 {
		ev.Fields = make([]NixLogField, 0, len(raw.Fields))
		for _, f := range raw.Fields {
			ev.Fields = append(ev.Fields, parseNixLogField(f))
		}
	}
	return ev
}

func parseNixLogField(f json.RawMessage) NixLogField {
	f = bytes.TrimSpace(f)
	if len(f) > 0 && f[0] == '"' {
		var s string
		if json.Unmarshal(f, &s) == nil {
			return NixLogField{Str: CleanLogText(s), IsStr: true}
		}
		return NixLogField{IsStr: true}
	}
	n, err := strconv.ParseUint(string(f), 10, 64)
	if err != nil {
		// A float, negative number, null or object: not something Nix
		// sends in fields; keep the position with a zero.
		return NixLogField{}
	}
	return NixLogField{Int: n}
}

// CleanLogText makes a log line safe to show: terminal escape sequences and
// control characters are removed, a carriage return keeps only what was
// drawn last, trailing blanks are trimmed and invalid UTF-8 is replaced.
func CleanLogText(s string) string {
	if i := strings.LastIndexByte(strings.TrimRight(s, "\r\n"), '\r'); i >= 0 {
		s = s[i+1:]
	}
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			clean = false
			break
		}
	}
	if clean && utf8.ValidString(s) {
		return strings.TrimRight(s, " ")
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == 0x1b:
			i = skipEscape(s, i)
		case c == '\t':
			b.WriteByte(' ')
			i++
		case c < 0x20 || c == 0x7f:
			i++
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b.WriteRune(utf8.RuneError)
			} else if r >= 0x80 && r < 0xa0 { // C1 controls
				// dropped
			} else {
				b.WriteString(s[i : i+size])
			}
			i += size
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// cleanLogLines cleans each line of a multi-line message (Nix's errors
// show the failing expression below the first line) and drops blank ones
// at either end.
func cleanLogLines(s string) string {
	if !strings.Contains(s, "\n") {
		return CleanLogText(s)
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = CleanLogText(l)
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}

// skipEscape returns the index after the escape sequence starting at s[i].
func skipEscape(s string, i int) int {
	i++ // ESC
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '[': // CSI: parameters and intermediates, then a final byte 0x40–0x7e
		i++
		for i < len(s) && (s[i] < 0x40 || s[i] > 0x7e) {
			i++
		}
		return min(i+1, len(s))
	case ']', 'P', '_', '^', 'X': // OSC, DCS, …: until BEL or ESC \
		i++
		for i < len(s) {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
			i++
		}
		return i
	default: // two-byte sequence
		return i + 1
	}
}
