package textdiff

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/internal/testutil"
)

// rebuild returns the old and new texts a diff describes.
func rebuild(lines []Line) (a, b []string) {
	for _, l := range lines {
		if l.Kind != Insert {
			a = append(a, l.Text)
		}
		if l.Kind != Delete {
			b = append(b, l.Text)
		}
	}
	return a, b
}

// lcs is the length of the longest common subsequence (the reference for
// a shortest edit script: edits = n + m - 2*lcs).
func lcs(a, b []string) int {
	dp := make([][]int, len(a)+1)
	for i := range dp {
		dp[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	return dp[0][0]
}

func randomText(r *rand.Rand) []string {
	n := r.IntN(12)
	out := make([]string, n)
	for i := range out {
		out[i] = string(rune('a' + r.IntN(4)))
	}
	return out
}

// TestDiffIsShortestAndFaithful: for random texts the diff rebuilds both
// texts exactly and has as few edits as the LCS allows.
func TestDiffIsShortestAndFaithful(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 3000; i++ {
		a, b := randomText(r), randomText(r)
		d := diffLines(a, b)
		ga, gb := rebuild(d)
		if strings.Join(ga, "\n") != strings.Join(a, "\n") || strings.Join(gb, "\n") != strings.Join(b, "\n") {
			t.Fatalf("%q → %q: the diff rebuilds %q → %q", a, b, ga, gb)
		}
		add, del := Counts(d)
		if want := len(a) + len(b) - 2*lcs(a, b); add+del != want {
			t.Fatalf("%q → %q: %d edits, the shortest has %d", a, b, add+del, want)
		}
	}
}

func TestUnified(t *testing.T) {
	a := "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n"
	b := "one\ntwo\nTHREE\nfour\nfive\nsix\nseven\neight\nnine\nten\neleven\n"
	got := Unified("a/x", "b/x", a, b, 2)
	want := "--- a/x\n+++ b/x\n@@ -1,5 +1,5 @@\n one\n two\n-three\n+THREE\n four\n five\n@@ -9,2 +9,3 @@\n nine\n ten\n+eleven\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if Unified("a", "b", a, a, 3) != "" {
		t.Error("same texts give a diff")
	}
	if got := Unified("a", "b", "", "x\n", 3); got != "--- a\n+++ b\n@@ -0,0 +1 @@\n+x\n" {
		t.Errorf("from empty: %q", got)
	}
}

// TestUnifiedAgainstPatch: patch(1), the real tool, applies our diff of
// random texts to the old file and gets the new one.
func TestUnifiedAgainstPatch(t *testing.T) {
	patch := testutil.RequireTool(t, "patch")
	r := rand.New(rand.NewPCG(3, 4))
	dir := t.TempDir()
	for i := 0; i < 200; i++ {
		a := strings.Join(randomText(r), "\n") + "\n"
		b := strings.Join(randomText(r), "\n") + "\n"
		if a == "\n" || b == "\n" {
			continue
		}
		u := Unified("old", "new", a, b, 1+r.IntN(3))
		if u == "" {
			continue
		}
		f := filepath.Join(dir, "f")
		os.WriteFile(f, []byte(a), 0o644)
		cmd := exec.Command(patch, "--quiet", "--force", f)
		cmd.Stdin = strings.NewReader(u)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("patch refuses:\n%s\n%s", u, out)
		}
		got, _ := os.ReadFile(f)
		if string(got) != b {
			t.Fatalf("patched %q, want %q\n%s", got, b, u)
		}
	}
}
