package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Decode reads an answers file strictly: malformed JSON is refused with its
// line and column, and every unknown field or value of the wrong type with
// its field path. The result has no defaults applied.
func Decode(data []byte) (Plan, error) {
	var p Plan
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return p, Problems{{Message: syntaxMessage(data, err)}}
	}
	if off := int(dec.InputOffset()); len(bytes.TrimSpace(data[off:])) > 0 {
		off += len(data[off:]) - len(bytes.TrimLeft(data[off:], " \t\r\n"))
		line, col := lineCol(data, off)
		return p, Problems{{Message: fmt.Sprintf("line %d, column %d: unexpected data after the answers object; a file holds one JSON object", line, col)}}
	}
	var probs Problems
	checkShape(&probs, "", tree, reflect.TypeOf(p))
	if len(probs) > 0 {
		return p, probs
	}
	if err := json.Unmarshal(data, &p); err != nil {
		// checkShape covers every case Unmarshal refuses; this is a backstop.
		return p, Problems{{Message: "cannot read the answers file: " + err.Error()}}
	}
	return p, nil
}

// Encode writes the plan as an indented answers file ending in a newline.
// The output is deterministic: the same plan always gives the same bytes.
func Encode(p Plan) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(p); err != nil {
		// A Plan holds only strings, numbers, booleans and lists.
		panic(fmt.Sprintf("plan: encoding a Plan cannot fail: %v", err))
	}
	return buf.Bytes()
}

func syntaxMessage(data []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := lineCol(data, int(se.Offset)-1)
		msg := strings.TrimPrefix(se.Error(), "invalid character ")
		return fmt.Sprintf("line %d, column %d: this is not valid JSON (invalid character %s)", line, col, msg)
	}
	if errors.Is(err, io.EOF) || strings.Contains(err.Error(), "unexpected EOF") {
		if len(bytes.TrimSpace(data)) == 0 {
			return "the answers file is empty; it holds one JSON object (see `homestaker schema`)"
		}
		line, col := lineCol(data, len(data))
		return fmt.Sprintf("line %d, column %d: the JSON ends too early (a missing } or ]?)", line, col)
	}
	return "this is not valid JSON: " + err.Error()
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(data []byte, off int) (int, int) {
	if off > len(data) {
		off = len(data)
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := off - bytes.LastIndexByte(before, '\n')
	return line, col
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func describe(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Uint:
		return "a whole number"
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(describe(t.Elem()), "a "), "an ") + "s"
	case reflect.Struct:
		return "an object"
	}
	return t.String()
}

func describeValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "the number " + x.String()
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// checkShape compares a decoded JSON tree with the Go type it must fill and
// records every unknown field and wrong type with its path.
func checkShape(probs *Problems, path string, v any, t reflect.Type) {
	wrong := func() {
		probs.add(path, "expected %s, found %s", describe(t), describeValue(v))
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			wrong()
			return
		}
		fields := map[string]reflect.StructField{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			if name != "" && name != "-" {
				fields[name] = f
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := fields[k]
			if !ok {
				probs.add(joinPath(path, k), "unknown field%s; %s accepts %s", suggest(k, fields), orFile(path), quoteList(sortedKeys(fields)))
				continue
			}
			checkShape(probs, joinPath(path, k), obj[k], f.Type)
		}
	case reflect.Slice:
		if v == nil {
			return
		}
		list, ok := v.([]any)
		if !ok {
			wrong()
			return
		}
		for i, e := range list {
			checkShape(probs, fmt.Sprintf("%s[%d]", path, i), e, t.Elem())
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			wrong()
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			wrong()
		}
	case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Uint:
		n, ok := v.(json.Number)
		if !ok {
			wrong()
			return
		}
		var err error
		if t.Kind() == reflect.Uint64 || t.Kind() == reflect.Uint {
			_, err = strconv.ParseUint(n.String(), 10, 64)
		} else {
			_, err = strconv.ParseInt(n.String(), 10, 64)
		}
		if err != nil {
			probs.add(path, "expected a whole number of at least 0, found %s", n)
		}
	}
}

func orFile(path string) string {
	if path == "" {
		return "the answers file"
	}
	return "\"" + path + "\""
}

func sortedKeys(m map[string]reflect.StructField) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func suggest(k string, fields map[string]reflect.StructField) string {
	for name := range fields {
		if strings.EqualFold(name, k) {
			return fmt.Sprintf(" (did you mean %q? names are case-sensitive)", name)
		}
	}
	return ""
}
