package nixbuild

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/internal/testutil"
)

func TestEvalMessage(t *testing.T) {
	for _, c := range []struct{ name, stderr, want string }{
		{"nix 2.8, two lines, warnings and hint",
			"warning: the group 'nixbld' specified in 'build-users-group' does not exist\n" +
				"\x1b[31;1merror:\x1b[0m The option `services.ethereum.lighthouse-beacon' does not exist. Definition values:\n" +
				"       - In `/nix/store/x-source/hosts/beta/default.nix'\n" +
				"(use '--show-trace' to show detailed location information)\n",
			"error: The option `services.ethereum.lighthouse-beacon' does not exist. Definition values:\n- In `/nix/store/x-source/hosts/beta/default.nix'"},
		{"nix 2.8, download retries",
			"warning: error: unable to download 'https://api.github.com/repos/nix-community/disko/commits/HEAD': Couldn't resolve host name (6); retrying in 520 ms\n" +
				"error: unable to download 'https://api.github.com/repos/nix-community/disko/commits/HEAD': Couldn't resolve host name (6)\n" +
				"(use '--show-trace' to show detailed location information)\n",
			"error: unable to download 'https://api.github.com/repos/nix-community/disko/commits/HEAD': Couldn't resolve host name (6)"},
		{"nix 2.26, trace with code excerpts",
			"error:\n" +
				"       … while evaluating the attribute 'drvPath'\n" +
				"         at /nix/store/abc-source/flake.nix:8:9:\n" +
				"            7|       nixosConfigurations.node1.config.system.build = {\n" +
				"            8|         inherit toplevel;\n" +
				"             |         ^\n" +
				"\n" +
				"       … while calling the 'throw' builtin\n" +
				"         at /nix/store/abc-source/flake.nix:6:18:\n" +
				"            5|       system = \"x86_64-linux\";\n" +
				"            6|       toplevel = throw \"The option ...\";\n" +
				"             |                  ^\n" +
				"\n" +
				"       error: The option `services.ethereum.lighthouse-beacon' does not exist. Definition values:\n" +
				"       - In `/nix/store/x-source/hosts/node1/default.nix'\n",
			"error: The option `services.ethereum.lighthouse-beacon' does not exist. Definition values:\n- In `/nix/store/x-source/hosts/node1/default.nix'\nat /nix/store/abc-source/flake.nix:6:18"},
		{"no error line", "warning: x\nSegmentation fault\n", "Segmentation fault"},
		{"nothing", "", "error: nix printed no message"},
	} {
		if got := EvalMessage(c.stderr); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
	long := "error: first\n" + strings.Repeat("  line\n", 100)
	if got := strings.Split(EvalMessage(long), "\n"); len(got) != maxEvalMessageLines+1 || !strings.Contains(got[len(got)-1], "more lines") {
		t.Errorf("long message: %d lines, last %q", len(got), got[len(got)-1])
	}
}

func TestEvaluateWithFakeNix(t *testing.T) {
	target := BuildTarget{FlakeDir: "/flake", Host: "node1"}
	var args []string
	fail := func(ctx context.Context, c NixCommand) error {
		args = c.Args
		c.Stderr.Write([]byte("error: boom\n"))
		return errors.New("exit status 1")
	}
	_, err := Evaluate(context.Background(), EvalOptions{Target: target, NixPath: "/usr/bin/nix", Run: fail, NixArgs: []string{"--option", "substituters", ""}})
	var ee *EvalError
	if !errors.As(err, &ee) || ee.Message != "error: boom" || !strings.Contains(err.Error(), "host node1 does not evaluate: boom") {
		t.Fatalf("err = %v", err)
	}
	want := "eval --raw --extra-experimental-features nix-command flakes --accept-flake-config --option substituters  /flake#nixosConfigurations.node1.config.system.build.kexecTree.drvPath"
	if strings.Join(args, " ") != want {
		t.Errorf("args %q\nwant %q", strings.Join(args, " "), want)
	}
	if !strings.Contains(ee.ShowTraceCommand(), "nix eval --show-trace --raw") {
		t.Errorf("show-trace command %q", ee.ShowTraceCommand())
	}
	notDrv := func(ctx context.Context, c NixCommand) error { c.Stdout.Write([]byte("hello")); return nil }
	if _, err := Evaluate(context.Background(), EvalOptions{Target: target, NixPath: "/usr/bin/nix", Run: notDrv}); !errors.As(err, &ee) {
		t.Errorf("non-derivation output: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Evaluate(ctx, EvalOptions{Target: target, NixPath: "/usr/bin/nix", Run: fail}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// evalTestFlake copies testdata/eval/<name> like testFlake does.
func evalTestFlake(t *testing.T, name string) BuildTarget {
	t.Helper()
	target, err := ReadBuildTarget(testutil.CopyFlake(t, filepath.Join("testdata", "eval", name)), "")
	if err != nil {
		t.Fatal(err)
	}
	return target
}

func TestEvaluateWithRealNix(t *testing.T) {
	nixPath, _ := testutil.RequireTestNix(t)
	testutil.RequireRoot(t)
	home := t.TempDir()
	env := append(os.Environ(), "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, ".cache"))
	args := []string{"--option", "substituters", ""}

	drv, err := Evaluate(context.Background(), EvalOptions{Target: evalTestFlake(t, "ok"), NixPath: nixPath, NixArgs: args, Env: env})
	if err != nil || !strings.HasPrefix(drv, "/nix/store/") || !strings.HasSuffix(drv, "-kexec-tree.drv") {
		t.Fatalf("ok flake: %q, %v", drv, err)
	}
	for name, want := range map[string]string{
		"throw":   "error: The option `services.ethereum.lighthouse-beacon' does not exist. Definition values:",
		"missing": "attribute 'toplevel' missing",
	} {
		_, err := Evaluate(context.Background(), EvalOptions{Target: evalTestFlake(t, name), NixPath: nixPath, NixArgs: args, Env: env})
		var ee *EvalError
		if !errors.As(err, &ee) {
			t.Fatalf("%s flake: %v", name, err)
		}
		t.Logf("%s flake: %s", name, ee.Message)
		if !strings.Contains(ee.Message, want) || strings.Contains(ee.Message, "\x1b") || strings.Contains(ee.Message, "warning:") || strings.Contains(ee.Message, "--show-trace") {
			t.Errorf("%s flake: message %q, want it to contain %q, without colours, warnings or hints", name, ee.Message, want)
		}
	}
}
