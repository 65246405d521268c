package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/homestaker/homestaker/internal/fakenix"
	"github.com/homestaker/homestaker/nixinstall"
)

// nixInstallEnv is a machine without Nix whose root is a temp prefix, a
// download server on 127.0.0.1 serving body, and the installer pointed at
// it with sha pinned (""pins body's own hash). nix-store --load-db and
// nix-env cannot run for a prefix (they write this machine's
// /nix/var/nix/db), so a stand-in checks the program is in the new store
// and links the profile.
func nixInstallEnv(t *testing.T, body []byte, sha, stdin string) (env *cliEnv, out, errOut *bytes.Buffer, root string, hits *atomic.Int32, ran *[]string) {
	t.Helper()
	root, tmp := t.TempDir(), t.TempDir()
	hits = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	if sha == "" {
		sha = fakenix.SHA256(body)
	}
	ran = new([]string)
	nixInstallHook = func(in *nixinstall.Installer) {
		in.Release = nixinstall.Release{Version: fakenix.Version, System: fakenix.System, URL: srv.URL + "/nix.tar.xz", SHA256: sha, Source: "test"}
		in.TempDir = tmp
		in.Run = func(_ context.Context, c nixinstall.Cmd) error {
			*ran = append(*ran, c.String())
			if _, err := os.Stat(filepath.Join(root, c.Path)); err != nil {
				return err
			}
			if strings.HasSuffix(c.Path, "/nix-env") && c.Args[len(c.Args)-1] == fakenix.NixPath {
				prof := filepath.Join(root, nixinstall.DefaultProfile)
				os.MkdirAll(filepath.Dir(prof), 0o755)
				return os.Symlink(filepath.Join(root, fakenix.NixPath), prof)
			}
			return nil
		}
	}
	t.Cleanup(func() { nixInstallHook = nil; os.RemoveAll(tmp) })
	out, errOut = new(bytes.Buffer), new(bytes.Buffer)
	env = &cliEnv{stdin: strings.NewReader(stdin), stdout: out, stderr: errOut,
		getenv: func(k string) string {
			if k == systemRootEnv {
				return root
			}
			return ""
		},
		build: &buildDeps{lookPath: func(string) (string, error) { return "", exec.ErrNotFound }},
	}
	return env, out, errOut, root, hits, ran
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestNixInstallYes(t *testing.T) {
	body, err := fakenix.Tarball()
	if err != nil {
		t.Fatal(err)
	}
	env, out, errOut, root, _, ran := nixInstallEnv(t, body, "", "")
	if code := run(context.Background(), env, []string{"nix", "install", "--yes"}); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, s := range []string{"No Nix found", "SHA-256", "no script from the download is run", "Nix " + fakenix.Version + " is installed"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	for _, s := range []string{"download 100%", "verify", "unpack", "copy", "register", "profile"} {
		if !strings.Contains(errOut.String(), s) {
			t.Errorf("progress lacks %q:\n%s", s, errOut)
		}
	}
	bin := filepath.Join(root, fakenix.NixPath, "bin/nix")
	if st, err := os.Stat(bin); err != nil || st.Mode().Perm() != 0o555 {
		t.Errorf("%s: %v %v, want mode 0555", bin, st, err)
	}
	if len(*ran) != 3 || !strings.HasSuffix((*ran)[0], "/bin/nix-store --load-db") {
		t.Errorf("ran %q", *ran)
	}
	v, err := exec.Command(filepath.Join(root, nixinstall.DefaultProfile, "bin/nix"), "--version").Output()
	if err != nil || !strings.Contains(string(v), fakenix.Version) {
		t.Errorf("profile's nix --version: %q %v", v, err)
	}
}

func TestNixInstallDryRunChangesNothing(t *testing.T) {
	env, out, errOut, root, hits, ran := nixInstallEnv(t, []byte("unused"), "", "")
	if code := run(context.Background(), env, []string{"nix", "install", "--dry-run"}); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out.String(), "dry run: nothing was downloaded or changed") || !strings.Contains(out.String(), "create "+filepath.Join(root, "nix")) {
		t.Errorf("output:\n%s", out)
	}
	if n := entries(t, root); len(n) != 0 || hits.Load() != 0 || len(*ran) != 0 {
		t.Errorf("dry run: root holds %v, %d downloads, ran %v", n, hits.Load(), *ran)
	}
}

func TestNixInstallChecksumMismatchRefused(t *testing.T) {
	body, err := fakenix.Tarball()
	if err != nil {
		t.Fatal(err)
	}
	env, _, errOut, root, hits, ran := nixInstallEnv(t, body, strings.Repeat("ab", 32), "")
	if code := run(context.Background(), env, []string{"nix", "install", "--yes"}); code != exitRefused {
		t.Fatalf("exit %d, want %d (refused): %s", code, exitRefused, errOut)
	}
	if !strings.Contains(errOut.String(), "refused:") || !strings.Contains(errOut.String(), "no /nix was created") {
		t.Errorf("stderr:\n%s", errOut)
	}
	if n := entries(t, root); len(n) != 0 || hits.Load() != 1 || len(*ran) != 0 {
		t.Errorf("after a mismatch: root holds %v, %d downloads, ran %v", n, hits.Load(), *ran)
	}
}

func TestNixInstallAsksFirst(t *testing.T) {
	env, _, errOut, root, hits, _ := nixInstallEnv(t, []byte("unused"), "", "no\n")
	if code := run(context.Background(), env, []string{"nix", "install"}); code != exitRefused {
		t.Fatalf("exit %d, want refused: %s", code, errOut)
	}
	if !strings.Contains(errOut.String(), "Type yes") || !strings.Contains(errOut.String(), "--yes") {
		t.Errorf("stderr:\n%s", errOut)
	}
	if n := entries(t, root); len(n) != 0 || hits.Load() != 0 {
		t.Errorf("not confirmed: root holds %v, %d downloads", n, hits.Load())
	}
}

func TestInstallReviewNamesNixInstall(t *testing.T) {
	env, _, _, _, _, _ := nixInstallEnv(t, nil, "", "")
	if msg := nixProblem(env); !strings.Contains(msg, "homestaker nix install") {
		t.Errorf("the no-Nix blocker does not name the command: %q", msg)
	}
}
