package flake

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// NixString quotes s as a Nix string literal. Every string homestaker puts
// into a Nix file goes through it: backslashes, quotes, "${" and control
// characters are escaped so the value reads back exactly. Nix strings cannot
// hold NUL bytes; they are replaced by U+FFFD (the plan refuses them first).
func NixString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '"':
			b.WriteString(`\"`)
		case c == '$' && i+1 < len(s) && s[i+1] == '{':
			b.WriteString(`\$`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == 0:
			b.WriteString("\uFFFD")
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

var bareAttr = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_'-]*$`)

var nixKeywords = map[string]bool{
	"if": true, "then": true, "else": true, "assert": true, "with": true,
	"let": true, "in": true, "rec": true, "inherit": true, "or": true,
}

// NixAttrName writes an attribute name bare when Nix allows it, quoted
// otherwise ("authrpc.jwtsecret").
func NixAttrName(s string) string {
	if bareAttr.MatchString(s) && !nixKeywords[s] {
		return s
	}
	return NixString(s)
}

// nixExpr is a Nix expression written verbatim (a reference such as
// config.sops.secrets.jwt.path), never user input.
type nixExpr string

// attr is one attribute of an ordered attribute set.
type attr struct {
	name  string
	value any
}

// attrs is an attribute set whose order is kept as written, so generated
// files read in a sensible order and are byte-for-byte reproducible.
type attrs []attr

// writeValue renders v (string, bool, int, []string, nixExpr, attrs,
// map[string]string) at the given indentation.
func writeValue(b *strings.Builder, v any, indent string) {
	switch x := v.(type) {
	case string:
		b.WriteString(NixString(x))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int:
		b.WriteString(strconv.Itoa(x))
	case nixExpr:
		b.WriteString(string(x))
	case []string:
		if len(x) == 0 {
			b.WriteString("[ ]")
			return
		}
		b.WriteString("[\n")
		for _, s := range x {
			b.WriteString(indent + "  " + NixString(s) + "\n")
		}
		b.WriteString(indent + "]")
	case attrs:
		if len(x) == 0 {
			b.WriteString("{ }")
			return
		}
		b.WriteString("{\n")
		for _, a := range x {
			b.WriteString(indent + "  " + NixAttrName(a.name) + " = ")
			writeValue(b, a.value, indent+"  ")
			b.WriteString(";\n")
		}
		b.WriteString(indent + "}")
	case map[string]string:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		as := make(attrs, len(keys))
		for i, k := range keys {
			as[i] = attr{k, x[k]}
		}
		writeValue(b, as, indent)
	default:
		panic(fmt.Sprintf("image: cannot write %T as Nix", v))
	}
}
