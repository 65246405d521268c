package nodeeval

import (
	"slices"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/flake"
)

func TestSplitExec(t *testing.T) {
	cases := []struct {
		line string
		want []string
	}{
		{"/bin/x --a b", []string{"/bin/x", "--a", "b"}},
		{"/bin/x \\\n  --a \\\n  b", []string{"/bin/x", "--a", "b"}},
		{`/bin/x --graffiti "home staked"`, []string{"/bin/x", "--graffiti", "home staked"}},
		{`/bin/x --graffiti="home staked"`, []string{"/bin/x", "--graffiti=home staked"}},
		{`/bin/x 'a "b"' "c 'd'"`, []string{"/bin/x", `a "b"`, `c 'd'`}},
		{`/bin/x "a\"b\\c" a\x41`, []string{"/bin/x", `a"b\c`, "aA"}},
		{`/bin/x 100%% $$HOME %d/jwt %S/geth`, []string{"/bin/x", "100%", "$HOME", "%d/jwt", "%S/geth"}},
		{`/bin/x "Grüße ⚡"`, []string{"/bin/x", "Grüße ⚡"}},
		{"/bin/x   a\t b", []string{"/bin/x", "a", "b"}},
	}
	for _, c := range cases {
		got, err := SplitExec(c.line)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("SplitExec(%q) = %q, %v; want %q", c.line, got, err, c.want)
		}
	}
	for _, bad := range []string{`/bin/x "open`, `/bin/x $HOME`, `/bin/x ${USER}`, `/bin/x a\q`, `/bin/x a\`} {
		if got, err := SplitExec(bad); err == nil {
			t.Errorf("SplitExec(%q) = %q, want an error", bad, got)
		}
	}
}

// FuzzSystemdExecArg checks the renderer's quoting against systemd's
// splitting rules: whatever the value, systemd reads back one argument
// holding exactly that value, in both the `--flag value` form and Nimbus'
// `--flag=value` form, and a value that needs no quoting is left alone.
func FuzzSystemdExecArg(f *testing.F) {
	for _, s := range []string{"home staked", `say "gm"`, "$HOME ${USER} 100%", "Grüße ⚡", "a;b #c", `back\slash`, "", "plain", "'", "%%", "$$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8Valid(s) || strings.ContainsRune(s, 0) {
			return
		}
		q := flake.SystemdExecArg(s)
		got, err := SplitExec("/bin/x \\\n  --flag \\\n  " + q + " \\\n  --next")
		if err != nil || len(got) != 4 || got[2] != s || got[3] != "--next" {
			t.Fatalf("%q quoted as %q reads back as %q (%v)", s, q, got, err)
		}
		got, err = SplitExec("/bin/x --flag=" + q)
		if err != nil || len(got) != 2 || got[1] != "--flag="+s {
			t.Fatalf("%q quoted as %q reads back as %q in the --flag= form (%v)", s, q, got, err)
		}
		plain := s != "" && !strings.ContainsFunc(s, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._:/@,+=-", r))
		})
		if plain && q != s {
			t.Fatalf("%q is plain but was quoted as %q", s, q)
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }
