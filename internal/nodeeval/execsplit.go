package nodeeval

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// SplitExec splits the value of a unit's ExecStart= (or ExecStartPre=) the
// way systemd does when it loads the unit file NixOS writes, and returns the
// program and its arguments:
//
//   - a line ending in a backslash continues on the next line;
//   - `%%` is a literal `%`; other specifiers (`%d`, `%S`, …) are kept as
//     written, since they name folders the tests compare as they are;
//   - words are split at white space; double or single quotes anywhere in a
//     word quote the text up to the matching quote; a backslash starts a C
//     escape (`\\`, `\"`, `\n`, `\xNN`, …) inside and outside quotes;
//   - `$$` is a literal `$`; any other `$` would be replaced by an
//     environment variable when the service starts, which is an error here.
//
// These are the rules of systemd.service(5), "Command lines", and of
// extract_first_word() with EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE, which
// config_parse_exec() uses.
func SplitExec(line string) ([]string, error) {
	line = strings.ReplaceAll(line, "\\\n", " ")
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for i := 0; i < len(line); {
		r, size := utf8.DecodeRuneInString(line[i:])
		switch {
		case quote == 0 && strings.ContainsRune(" \t\n\r", r):
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
			i += size
			continue
		case r == '\\':
			out, n, err := unescape(line[i+1:])
			if err != nil {
				return nil, fmt.Errorf("at byte %d of %q: %w", i, line, err)
			}
			w.WriteString(out)
			inWord = true
			i += 1 + n
			continue
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '"' || r == '\''):
			quote = r
			inWord = true
		case r == '%':
			if i+1 >= len(line) {
				return nil, fmt.Errorf("a lone %% ends %q", line)
			}
			if line[i+1] == '%' {
				w.WriteByte('%')
			} else {
				w.WriteString(line[i : i+2])
			}
			inWord = true
			i += 2
			continue
		case r == '$':
			if i+1 < len(line) && line[i+1] == '$' {
				w.WriteByte('$')
				inWord = true
				i += 2
				continue
			}
			if i+1 < len(line) && (line[i+1] == '{' || isVarByte(line[i+1])) {
				return nil, fmt.Errorf("%q refers to an environment variable at byte %d; a literal $ is written $$", line, i)
			}
			w.WriteByte('$')
			inWord = true
		default:
			w.WriteRune(r)
			inWord = true
		}
		i += size
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, line)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

func isVarByte(c byte) bool {
	return c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// unescape reads one C escape after a backslash, as systemd's cunescape_one
// does, and returns what it stands for and how many bytes it took.
func unescape(s string) (string, int, error) {
	if s == "" {
		return "", 0, fmt.Errorf("a backslash ends the line")
	}
	simple := map[byte]string{'a': "\a", 'b': "\b", 'f': "\f", 'n': "\n", 'r': "\r", 't': "\t", 'v': "\v",
		'\\': "\\", '"': "\"", '\'': "'", 's': " "}
	if v, ok := simple[s[0]]; ok {
		return v, 1, nil
	}
	number := func(digits, base int, prefix int) (string, int, error) {
		if len(s) < prefix+digits {
			return "", 0, fmt.Errorf("short escape \\%s", s)
		}
		n, err := strconv.ParseUint(s[prefix:prefix+digits], base, 32)
		if err != nil || n == 0 {
			return "", 0, fmt.Errorf("bad escape \\%s", s[:prefix+digits])
		}
		if base == 16 && digits == 2 || base == 8 {
			return string([]byte{byte(n)}), prefix + digits, nil
		}
		return string(rune(n)), prefix + digits, nil
	}
	switch s[0] {
	case 'x':
		return number(2, 16, 1)
	case 'u':
		return number(4, 16, 1)
	case 'U':
		return number(8, 16, 1)
	case '0', '1', '2', '3', '4', '5', '6', '7':
		return number(3, 8, 0)
	}
	return "", 0, fmt.Errorf("unknown escape \\%c", s[0])
}
