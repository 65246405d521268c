// Package textdiff computes line diffs (Myers' O(ND) algorithm) and prints
// them as unified diffs, for the review of a reconfiguration: what each
// rewritten file of the flake gains and loses.
package textdiff

import (
	"fmt"
	"strings"
)

// Kind says whether a line is in both texts, only the old or only the new.
type Kind byte

// Kinds of a diff line, as a unified diff marks them.
const (
	Same   Kind = ' '
	Delete Kind = '-'
	Insert Kind = '+'
)

// Line is one line of a diff.
type Line struct {
	Kind Kind
	Text string
}

// splitLines splits text into lines without their newlines; a final line
// without a newline is still a line.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// Diff is the shortest edit script from a to b, line by line: every line
// of a and b in order, each marked Same, Delete or Insert.
func Diff(a, b string) []Line {
	return diffLines(splitLines(a), splitLines(b))
}

func diffLines(a, b []string) []Line {
	n, m := len(a), len(b)
	max := n + m
	off := max + 1
	v := make([]int, 2*max+3)
	// trace[d] is v after step d, for walking the path back.
	var trace [][]int
	var dEnd int
outer:
	for d := 0; d <= max; d++ {
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1] // down: an insertion
			} else {
				x = v[off+k-1] + 1 // right: a deletion
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x, y = x+1, y+1
			}
			v[off+k] = x
			if x >= n && y >= m {
				trace = append(trace, append([]int(nil), v...))
				dEnd = d
				break outer
			}
		}
		trace = append(trace, append([]int(nil), v...))
	}
	// Walk back from (n, m) to (0, 0).
	var rev []Line
	x, y := n, m
	for d := dEnd; d > 0; d-- {
		vp := trace[d-1]
		k := x - y
		var pk int
		if k == -d || (k != d && vp[off+k-1] < vp[off+k+1]) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := vp[off+pk]
		py := px - pk
		for x > px && y > py {
			x, y = x-1, y-1
			rev = append(rev, Line{Same, a[x]})
		}
		if x == px {
			y--
			rev = append(rev, Line{Insert, b[y]})
		} else {
			x--
			rev = append(rev, Line{Delete, a[x]})
		}
	}
	for x > 0 && y > 0 {
		x, y = x-1, y-1
		rev = append(rev, Line{Same, a[x]})
	}
	out := make([]Line, len(rev))
	for i, l := range rev {
		out[len(rev)-1-i] = l
	}
	return out
}

// Counts are the lines a diff adds and removes.
func Counts(lines []Line) (added, removed int) {
	for _, l := range lines {
		switch l.Kind {
		case Insert:
			added++
		case Delete:
			removed++
		}
	}
	return added, removed
}

// Unified prints the diff from a to b as a unified diff with context lines
// around each change ("" when the texts are the same). oldName and newName
// head it (--- and +++).
func Unified(oldName, newName, a, b string, context int) string {
	lines := Diff(a, b)
	var changes []int
	for i, l := range lines {
		if l.Kind != Same {
			changes = append(changes, i)
		}
	}
	if len(changes) == 0 {
		return ""
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", oldName, newName)
	// Group changes whose context overlaps into hunks.
	for i := 0; i < len(changes); {
		start := max(0, changes[i]-context)
		end := changes[i]
		j := i
		for j+1 < len(changes) && changes[j+1]-end <= 2*context+1 {
			j++
			end = changes[j]
		}
		end = min(len(lines)-1, end+context)
		// Line numbers of the hunk's first line in a and b.
		oldLine, newLine := 1, 1
		for _, l := range lines[:start] {
			if l.Kind != Insert {
				oldLine++
			}
			if l.Kind != Delete {
				newLine++
			}
		}
		oldCount, newCount := 0, 0
		for _, l := range lines[start : end+1] {
			if l.Kind != Insert {
				oldCount++
			}
			if l.Kind != Delete {
				newCount++
			}
		}
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", hunkRange(oldLine, oldCount), hunkRange(newLine, newCount))
		for _, l := range lines[start : end+1] {
			sb.WriteByte(byte(l.Kind))
			sb.WriteString(l.Text)
			sb.WriteByte('\n')
		}
		i = j + 1
	}
	return sb.String()
}

// hunkRange is a hunk header's "start,count", as diff -u writes it (an
// empty range starts at the line before it).
func hunkRange(start, count int) string {
	if count == 0 {
		start--
	}
	if count == 1 {
		return fmt.Sprint(start)
	}
	return fmt.Sprintf("%d,%d", start, count)
}
