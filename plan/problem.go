package plan

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong (or worth a warning) in a plan, addressed by
// the dotted path of the answers-file field ("ssh.authorizedKeys[1]").
type Problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Problems is a list of problems; as an error it reads as one per line.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Has reports whether a problem names path.
func (ps Problems) Has(path string) bool {
	for _, p := range ps {
		if p.Path == path {
			return true
		}
	}
	return false
}

func (ps *Problems) add(path, format string, args ...any) {
	*ps = append(*ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (ps *Problems) check(path string, err error) {
	if err != nil {
		*ps = append(*ps, Problem{Path: path, Message: err.Error()})
	}
}

// Result is the outcome of Validate: errors stop homestaker, warnings are
// shown and let the user go on.
type Result struct {
	Errors   Problems `json:"errors"`
	Warnings Problems `json:"warnings"`
}

// OK reports whether the plan has no errors.
func (r Result) OK() bool { return len(r.Errors) == 0 }
