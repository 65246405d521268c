package nixinstall

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/internal/fakenix"
)

const (
	testVersion = fakenix.Version
	testNix     = fakenix.NixPath
	testCACert  = fakenix.CACert
	testReginfo = fakenix.Reginfo
)

func fakeTarball(t *testing.T, extra ...tar.Header) []byte {
	t.Helper()
	b, err := fakenix.Tarball(extra...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sum(b []byte) string { return fakenix.SHA256(b) }

// serve serves body on 127.0.0.1 at /nix.tar.xz.
func serve(t *testing.T, h http.HandlerFunc) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server at %s, want 127.0.0.1", srv.URL)
	}
	return srv.URL + "/nix-" + testVersion + "-x86_64-linux.tar.xz"
}

// fakeRun stands in for nix-store --load-db and nix-env -i, which would
// write this machine's /nix/var/nix/db: it records each command (with
// its stdin) and, for nix-env, points the default profile at the store
// path under the prefix, so the test can run the installed bin/nix.
type fakeRun struct {
	root  string
	cmds  []string
	stdin []string
}

func (f *fakeRun) run(_ context.Context, c Cmd) error {
	f.cmds = append(f.cmds, c.String())
	in := ""
	if c.Stdin != nil {
		b, err := io.ReadAll(c.Stdin)
		if err != nil {
			return err
		}
		in = string(b)
	}
	f.stdin = append(f.stdin, in)
	if _, err := os.Stat(filepath.Join(f.root, c.Path)); err != nil {
		return err // the program is in the new store
	}
	if strings.HasSuffix(c.Path, "/nix-env") && c.Args[len(c.Args)-1] == testNix {
		prof := filepath.Join(f.root, DefaultProfile)
		os.MkdirAll(filepath.Dir(prof), 0o755)
		os.Remove(prof)
		return os.Symlink(filepath.Join(f.root, testNix), prof)
	}
	return nil
}

func newInstaller(t *testing.T, url, sha string) (*Installer, *fakeRun, string, string) {
	root, tmp := t.TempDir(), t.TempDir()
	f := &fakeRun{root: root}
	in := &Installer{
		Root:    root,
		Release: Release{Version: testVersion, System: "x86_64-linux", URL: url, SHA256: sha, Source: "test"},
		TempDir: tmp,
		Run:     f.run,
	}
	return in, f, root, tmp
}

func mode(t *testing.T, p string) fs.FileMode {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode()
}

func empty(t *testing.T, dir, what string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		t.Errorf("%s: %s left behind", what, e.Name())
	}
}

func TestInstallFromTarball(t *testing.T) {
	body := fakeTarball(t)
	url := serve(t, func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	in, f, root, tmp := newInstaller(t, url, sum(body))
	var phases []string
	in.Progress = func(p Progress) {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	}
	res, err := in.Install(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.NixPath != testNix || res.CACertPath != testCACert || res.StorePaths != 2 || !res.CreatedNix {
		t.Errorf("result %+v", res)
	}
	if got, want := strings.Join(phases, " "), "download verify unpack copy register profile"; got != want {
		t.Errorf("progress phases %q, want %q", got, want)
	}
	for p, want := range map[string]fs.FileMode{
		"nix":                             fs.ModeDir | 0o755,
		"nix/store":                       fs.ModeDir | 0o755,
		"nix/var/nix":                     fs.ModeDir | 0o755,
		testNix[1:]:                       fs.ModeDir | 0o555,
		testNix[1:] + "/bin":              fs.ModeDir | 0o555,
		testNix[1:] + "/bin/nix":          0o555,
		testNix[1:] + "/share/README":     0o444,
		testCACert[1:] + "/ca-bundle.crt": 0o444,
		testNix[1:] + "/bin/nix-store":    fs.ModeSymlink | 0o777,
		"root/.nix-profile":               fs.ModeSymlink | 0o777,
	} {
		if got := mode(t, filepath.Join(root, p)); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
	if l, _ := os.Readlink(filepath.Join(root, "root/.nix-profile")); l != DefaultProfile {
		t.Errorf(".nix-profile -> %q, want %s", l, DefaultProfile)
	}
	want := []string{
		testNix + "/bin/nix-store --load-db",
		testNix + "/bin/nix-env -p " + DefaultProfile + " -i " + testNix,
		testNix + "/bin/nix-env -p " + DefaultProfile + " -i " + testCACert,
	}
	if strings.Join(f.cmds, "\n") != strings.Join(want, "\n") {
		t.Errorf("ran\n%s\nwant\n%s", strings.Join(f.cmds, "\n"), strings.Join(want, "\n"))
	}
	if f.stdin[0] != testReginfo {
		t.Errorf("nix-store --load-db read %q, want the tarball's .reginfo", f.stdin[0])
	}
	out, err := exec.Command(filepath.Join(root, DefaultProfile, "bin/nix"), "--version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "nix (Nix) "+testVersion {
		t.Errorf("installed nix --version: %q, %v", out, err)
	}
	// Only the store and var are in /nix (no unpack folder), and the
	// download is gone.
	es, _ := os.ReadDir(filepath.Join(root, "nix"))
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "store var" {
		t.Errorf("/nix holds %v, want store var", names)
	}
	empty(t, tmp, "temp folder")

	// A second run keeps the store paths that are there.
	res, err = in.Install(context.Background())
	if err != nil || res.StorePaths != 0 || res.CreatedNix {
		t.Errorf("second install: %+v, %v", res, err)
	}
}

func TestInstallRefusesChecksumMismatch(t *testing.T) {
	body := fakeTarball(t)
	url := serve(t, func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	pinned := strings.Repeat("0", 64)
	in, f, root, tmp := newInstaller(t, url, pinned)
	_, err := in.Install(context.Background())
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Got != sum(body) || ce.Want != pinned {
		t.Fatalf("err = %v, want a ChecksumError", err)
	}
	for _, s := range []string{"refused", "nothing was unpacked or installed", "homestaker nix install", ".sha256"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("refusal %q does not say %q", err, s)
		}
	}
	empty(t, root, "target root")
	empty(t, tmp, "temp folder")
	if len(f.cmds) != 0 {
		t.Errorf("ran %v after a mismatch", f.cmds)
	}
}

func TestInstallInterruptedDownloadLeavesNothing(t *testing.T) {
	body := fakeTarball(t)
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection drops
	})
	in, _, root, tmp := newInstaller(t, url, sum(body))
	if _, err := in.Install(context.Background()); err == nil || !strings.Contains(err.Error(), "nothing was installed") {
		t.Fatalf("err = %v, want a failed download", err)
	}
	empty(t, root, "target root")
	empty(t, tmp, "temp folder")
}

func TestInstallCancelledDownloadLeavesNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	url := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		w.Write(make([]byte, 4096))
		w.(http.Flusher).Flush()
		cancel() // as Ctrl-C does
		<-r.Context().Done()
	})
	in, _, root, tmp := newInstaller(t, url, strings.Repeat("0", 64))
	if _, err := in.Install(ctx); err == nil {
		t.Fatal("a cancelled download succeeded")
	}
	empty(t, root, "target root")
	empty(t, tmp, "temp folder")
}

func TestInstallRefusesEntryOutsideTopFolder(t *testing.T) {
	body := fakeTarball(t, tar.Header{Name: "nix-" + testVersion + "-x86_64-linux/../../evil", Typeflag: tar.TypeReg, Mode: 0o644})
	url := serve(t, func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	in, f, root, tmp := newInstaller(t, url, sum(body))
	if _, err := in.Install(context.Background()); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("err = %v, want an entry outside the top folder refused", err)
	}
	empty(t, root, "target root") // the /nix it created is gone again
	empty(t, tmp, "temp folder")
	if len(f.cmds) != 0 {
		t.Errorf("ran %v", f.cmds)
	}
}

func TestInstallWithoutRunRefusesPrefix(t *testing.T) {
	body := fakeTarball(t)
	url := serve(t, func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	in, _, root, _ := newInstaller(t, url, sum(body))
	in.Run = nil
	if _, err := in.Install(context.Background()); err == nil || !strings.Contains(err.Error(), "target root") {
		t.Fatalf("err = %v, want the real nix-store refused for a prefix", err)
	}
	empty(t, root, "target root")
}

func TestPinnedReleases(t *testing.T) {
	rs, err := Releases()
	if err != nil {
		t.Fatal(err)
	}
	for _, sys := range []string{"x86_64-linux", "aarch64-linux"} {
		r, err := ForSystem(sys)
		if err != nil {
			t.Fatal(err)
		}
		want := "https://releases.nixos.org/nix/nix-" + r.Version + "/" + r.Dir() + ".tar.xz"
		if r.URL != want || r.Source == "" || r.Date == "" {
			t.Errorf("%s: %+v, want URL %s with a source and a date", sys, r, want)
		}
	}
	if len(rs) != 2 {
		t.Errorf("%d releases pinned, want 2", len(rs))
	}
}
