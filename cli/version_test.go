package cli

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, stdout, _ := runCLI(t, args...)
		if code != exitOK || !strings.HasPrefix(stdout, "homestaker ") {
			t.Errorf("%v: exit %d: %q", args, code, stdout)
		}
	}
	info := &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261202101010-abc1234def56+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc1234def5678"}, {Key: "vcs.time", Value: "2026-12-02T10:10:10Z"}, {Key: "vcs.modified", Value: "true"}}}
	if got, want := versionText(info, true), "homestaker v0.0.0-20261202101010-abc1234def56+dirty (commit abc1234 with local changes, 2026-12-02)"; got != want {
		t.Errorf("versionText = %q, want %q", got, want)
	}
	if got := versionText(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true); got != "homestaker devel" {
		t.Errorf("no VCS: %q", got)
	}
	if got := versionText(nil, false); got != "homestaker devel" {
		t.Errorf("no build info: %q", got)
	}
}
