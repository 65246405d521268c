package flake

import (
	"fmt"
	"strings"
)

// SystemdExecArg quotes s so that systemd reads it back from an ExecStart=
// line as exactly one argument holding s.
//
// ethereum.nix turns a service's settings into ExecStart by joining the
// flags and their values with spaces, quoting nothing, and systemd splits
// that line at white space, removes quotes, resolves backslash escapes,
// expands %-specifiers and $VARIABLES. A graffiti such as `home staked`
// would reach the client as two arguments, and `100%` or `$HOME` would be
// changed on the way. Values made only of characters none of these rules
// touch are returned as they are, so flags and URLs stay readable in
// default.nix; anything else is put in double quotes with `\`, `"` and
// control characters escaped, `%` doubled (systemd's specifier escape) and
// `$` doubled (its variable escape). systemd honours quotes anywhere in a
// word, so `--graffiti="home staked"` (Nimbus' `--flag=value` form) is one
// argument too.
func SystemdExecArg(s string) string {
	if s != "" && !strings.ContainsFunc(s, needsExecQuote) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '"':
			b.WriteString(`\"`)
		case r == '%':
			b.WriteString("%%")
		case r == '$':
			b.WriteString("$$")
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// needsExecQuote reports whether r means something to systemd's command
// line parser (or might, in some version): everything but letters, digits
// and the punctuation of flags, URLs and addresses.
func needsExecQuote(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	}
	return !strings.ContainsRune("._:/@,+=-", r)
}
