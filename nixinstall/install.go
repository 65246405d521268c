package nixinstall

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/ulikunitz/xz"
)

// DefaultProfile is root's profile, where Nix goes (and where homestaker
// looks for it: image.FindNix knows /nix/var/nix/profiles/default/bin/nix).
const DefaultProfile = "/nix/var/nix/profiles/default"

// Progress is one report of an install: the phase and, for the download
// (bytes) and the copy (store paths), how far it is. Total is -1 when
// unknown.
type Progress struct {
	Phase       string // "download", "verify", "unpack", "copy", "register", "profile"
	Done, Total int64
}

// Cmd is a program the install runs from the new store: Path is as on the
// target (/nix/store/…/bin/nix-store), not under Installer.Root.
type Cmd struct {
	Path  string
	Args  []string
	Stdin io.Reader
	Env   []string // added to the environment
}

// String is the command as a shell would show it.
func (c Cmd) String() string { return strings.Join(append([]string{c.Path}, c.Args...), " ") }

// Installer installs Release under Root.
type Installer struct {
	// Root is the target's root folder: "/" on a real machine, a prefix in
	// tests. /nix is created under it.
	Root    string
	Release Release
	// URL is where the tarball is downloaded from; "" is Release.URL. The
	// SHA-256 checked is Release.SHA256 whatever the URL (a mirror must
	// serve the same bytes).
	URL    string
	Client *http.Client
	// TempDir holds the download; "" is os.TempDir().
	TempDir string
	// Home is root's home folder on the target ("" is /root): .nix-profile
	// goes there.
	Home string
	// Run runs nix-store and nix-env from the new store. nil runs them for
	// real, which only works with Root "/" (the programs register
	// /nix/store paths in /nix/var/nix/db); tests with a prefix set it.
	Run      func(ctx context.Context, c Cmd) error
	Progress func(Progress)
}

// Result is what an install did.
type Result struct {
	NixPath    string // /nix/store/…-nix-<version>
	CACertPath string // /nix/store/…-nss-cacert-…, "" when the tarball has none
	StorePaths int    // store paths copied (those already present are kept)
	CreatedNix bool   // /nix did not exist before
	Profile    string // DefaultProfile
}

// ChecksumError is a download whose SHA-256 is not the pinned one.
type ChecksumError struct {
	URL, Want, Got string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("refused: %s has SHA-256 %s, but assets/nix-release.json pins %s; nothing was unpacked or installed (no /nix was created). "+
		"The download was altered or corrupted (a proxy, a captive portal, a broken mirror): run `homestaker nix install` again on a network you trust, "+
		"or compare the pin with the .sha256 file published next to the tarball on releases.nixos.org", e.URL, e.Got, e.Want)
}

func (in *Installer) url() string {
	if in.URL != "" {
		return in.URL
	}
	return in.Release.URL
}

func (in *Installer) root() string {
	if in.Root == "" {
		return "/"
	}
	return in.Root
}

func (in *Installer) at(p string) string { return filepath.Join(in.root(), p) }

func (in *Installer) home() string {
	if in.Home == "" {
		return "/root"
	}
	return in.Home
}

func (in *Installer) report(p Progress) {
	if in.Progress != nil {
		in.Progress(p)
	}
}

// Describe says, without side effects, what Install would do.
func (in *Installer) Describe() []string {
	r := in.Release
	tmp := in.TempDir
	if tmp == "" {
		tmp = os.TempDir()
	}
	nixDir := in.at("/nix")
	create := "create " + nixDir + " (mode 0755) and copy"
	if st, err := os.Stat(nixDir); err == nil && st.IsDir() {
		create = nixDir + " exists: add"
	}
	return []string{
		fmt.Sprintf("download Nix %s for %s from %s into a temporary file in %s", r.Version, r.System, in.url(), tmp),
		fmt.Sprintf("check its SHA-256 is %s (pinned in assets/nix-release.json; %s) before unpacking anything", r.SHA256, r.Source),
		fmt.Sprintf("unpack it (xz, tar) and %s the store paths of its store/ folder into %s, read-only", create, in.at("/nix/store")),
		"register them with the new Nix: nix-store --load-db < .reginfo",
		fmt.Sprintf("install that Nix (and its CA certificates) into root's profile: nix-env -p %s -i /nix/store/…-nix-%s; %s/.nix-profile points to it", DefaultProfile, r.Version, in.home()),
		fmt.Sprintf("nothing else: no script from the download is run, no daemon, build users, channel or shell profile; nix is then %s/bin/nix", DefaultProfile),
	}
}

// Preflight refuses a target where the install cannot go.
func (in *Installer) Preflight() error {
	if in.Release.SHA256 == "" || in.Release.Version == "" {
		return errors.New("no pinned Nix release to install")
	}
	nixDir := in.at("/nix")
	st, err := os.Lstat(nixDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !st.IsDir():
		return fmt.Errorf("%s exists and is not a folder: move it away, then run `homestaker nix install` again", nixDir)
	}
	return nil
}

// Install downloads, verifies and installs the release. On a checksum
// mismatch it returns a *ChecksumError and has touched nothing under Root.
// On any other failure it removes what it added (all of /nix when it
// created it).
func (in *Installer) Install(ctx context.Context) (_ *Result, err error) {
	if err := in.Preflight(); err != nil {
		return nil, err
	}
	tarball, err := in.download(ctx)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tarball)

	res := &Result{Profile: DefaultProfile}
	nixDir := in.at("/nix")
	if _, err := os.Lstat(nixDir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(nixDir, 0o755); err != nil {
			return nil, err
		}
		res.CreatedNix = true
	}
	var added []string
	registered := false
	defer func() {
		if err == nil {
			return
		}
		if res.CreatedNix {
			removeAll(nixDir)
		} else if !registered {
			for _, p := range added {
				removeAll(p)
			}
		}
	}()
	if err := os.Chmod(nixDir, 0o755); err != nil && res.CreatedNix {
		return nil, err
	}
	staging, err := os.MkdirTemp(nixDir, ".homestaker-unpack-")
	if err != nil {
		return nil, err
	}
	defer removeAll(staging)

	in.report(Progress{Phase: "unpack", Total: -1})
	if err := in.unpack(ctx, tarball, staging); err != nil {
		return nil, fmt.Errorf("unpacking %s: %w", filepath.Base(in.url()), err)
	}
	top := filepath.Join(staging, in.Release.Dir())
	res.NixPath, res.CACertPath, err = in.storePaths(top)
	if err != nil {
		return nil, err
	}

	// What install-nix-from-tarball.sh does for a single-user install,
	// without running it: the store paths into /nix/store, read-only...
	for _, d := range []string{"/nix/store", "/nix/var/nix"} {
		if err := os.MkdirAll(in.at(d), 0o755); err != nil {
			return nil, err
		}
	}
	entries, err := os.ReadDir(filepath.Join(top, "store"))
	if err != nil {
		return nil, err
	}
	for i, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		in.report(Progress{Phase: "copy", Done: int64(i), Total: int64(len(entries))})
		dst := in.at(path.Join("/nix/store", e.Name()))
		if _, err := os.Lstat(dst); err == nil {
			continue // already there, as the script leaves it
		}
		src := filepath.Join(top, "store", e.Name())
		if err := readOnly(src); err != nil {
			return nil, err
		}
		// A folder moved to another parent must be writable (its ".."
		// changes); the script does the same chmod +w, mv, chmod -w.
		if e.IsDir() {
			if err := os.Chmod(src, 0o755); err != nil {
				return nil, err
			}
		}
		if err := os.Rename(src, dst); err != nil {
			return nil, err
		}
		added = append(added, dst)
		if e.IsDir() {
			if err := os.Chmod(dst, 0o555); err != nil {
				return nil, err
			}
		}
		res.StorePaths++
	}
	in.report(Progress{Phase: "copy", Done: int64(len(entries)), Total: int64(len(entries))})

	// ...registered with the new nix-store...
	in.report(Progress{Phase: "register", Total: -1})
	reginfo, err := os.Open(filepath.Join(top, ".reginfo"))
	if err != nil {
		return nil, err
	}
	defer reginfo.Close()
	env := []string{"HOME=" + in.home(), "USER=root"}
	if err := in.run(ctx, Cmd{Path: res.NixPath + "/bin/nix-store", Args: []string{"--load-db"}, Stdin: reginfo, Env: env}); err != nil {
		return nil, fmt.Errorf("registering the store paths (nix-store --load-db): %w", err)
	}
	registered = true

	// ...and Nix (with the CA bundle it downloads with) in root's profile.
	in.report(Progress{Phase: "profile", Total: -1})
	for _, p := range []string{res.NixPath, res.CACertPath} {
		if p == "" {
			continue
		}
		if err := in.run(ctx, Cmd{Path: res.NixPath + "/bin/nix-env", Args: []string{"-p", DefaultProfile, "-i", p}, Env: env}); err != nil {
			return nil, fmt.Errorf("installing %s into %s (nix-env -i): %w", p, DefaultProfile, err)
		}
	}
	link := in.at(path.Join(in.home(), ".nix-profile"))
	if _, err := os.Lstat(link); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(link), 0o700); err != nil {
			return nil, err
		}
		if err := os.Symlink(DefaultProfile, link); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func (in *Installer) run(ctx context.Context, c Cmd) error {
	if in.Run != nil {
		return in.Run(ctx, c)
	}
	if filepath.Clean(in.root()) != "/" {
		return fmt.Errorf("cannot run %s for the target root %s: it registers /nix/store paths in /nix/var/nix/db of this machine", c.Path, in.root())
	}
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Stdin = c.Stdin
	cmd.Env = append(os.Environ(), c.Env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// download streams the tarball into a temporary file (constant memory),
// hashing it on the way, and returns the file's path once the SHA-256 is
// the pinned one. On any failure the file is gone.
func (in *Installer) download(ctx context.Context) (name string, err error) {
	url := in.url()
	client := in.Client
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("downloading %s: %s", url, resp.Status)
	}
	f, err := os.CreateTemp(in.TempDir, "homestaker-"+in.Release.Dir()+"-*.tar.xz")
	if err != nil {
		return "", err
	}
	defer func() {
		f.Close()
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	pw := &progressWriter{in: in, total: resp.ContentLength}
	n, err := io.Copy(io.MultiWriter(f, h, pw), resp.Body)
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w after %d bytes; nothing was installed", url, err, n)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return "", fmt.Errorf("downloading %s: got %d of %d bytes; nothing was installed", url, n, resp.ContentLength)
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	in.report(Progress{Phase: "verify", Done: n, Total: n})
	if got := hex.EncodeToString(h.Sum(nil)); got != in.Release.SHA256 {
		return "", &ChecksumError{URL: url, Want: in.Release.SHA256, Got: got}
	}
	return f.Name(), nil
}

type progressWriter struct {
	in    *Installer
	total int64
	done  int64
	last  int64
}

func (w *progressWriter) Write(p []byte) (int, error) {
	w.done += int64(len(p))
	if w.done-w.last >= 1<<20 || w.done == w.total {
		w.last = w.done
		w.in.report(Progress{Phase: "download", Done: w.done, Total: w.total})
	}
	return len(p), nil
}

// unpack extracts the verified tarball into dst. Every entry must lie in
// the release's top folder; links may point anywhere (store paths link to
// /nix/store/…), but hard links only inside the tarball.
func (in *Installer) unpack(ctx context.Context, tarball, dst string) error {
	f, err := os.Open(tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	xr, err := xz.NewReader(bufio.NewReader(f))
	if err != nil {
		return err
	}
	tr := tar.NewReader(xr)
	top := in.Release.Dir()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := entryPath(hdr.Name, top)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			mode := fs.FileMode(0o644)
			if hdr.Mode&0o111 != 0 {
				mode = 0o755
			}
			out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			old, err := entryPath(hdr.Linkname, top)
			if err != nil {
				return err
			}
			if err := os.Link(filepath.Join(dst, old), target); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unexpected entry type %q in a Nix release tarball", hdr.Name, hdr.Typeflag)
		}
	}
}

// entryPath checks a tar entry name lies under top and returns it cleaned
// ("top/../x" cleans to "x", outside top, and is refused).
func entryPath(name, top string) (string, error) {
	clean := path.Clean("/" + name)[1:]
	if clean != top && !strings.HasPrefix(clean, top+"/") {
		return "", fmt.Errorf("%q lies outside %s/: not a Nix release tarball", name, top)
	}
	return filepath.FromSlash(clean), nil
}

var (
	storePathRe = regexp.MustCompile(`^/nix/store/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+._?=-]+$`)
	assignRe    = regexp.MustCompile(`(?m)^(nix|cacert)="([^"]*)"`)
)

// storePaths finds the Nix (and CA bundle) store paths the tarball's
// install script names in its nix="…" and cacert="…" lines — read as
// data, never run — and checks they are in its store/ folder.
func (in *Installer) storePaths(top string) (nix, cacert string, err error) {
	for _, f := range []string{".reginfo", "install", "store"} {
		if _, err := os.Lstat(filepath.Join(top, f)); err != nil {
			return "", "", fmt.Errorf("not a Nix release tarball: %s/%s is missing", in.Release.Dir(), f)
		}
	}
	script, err := os.ReadFile(filepath.Join(top, "install"))
	if err != nil {
		return "", "", err
	}
	for _, m := range assignRe.FindAllStringSubmatch(string(script), -1) {
		p := m[2]
		if !storePathRe.MatchString(p) {
			return "", "", fmt.Errorf("the tarball's install script names %s=%q, not a store path", m[1], p)
		}
		if _, err := os.Lstat(filepath.Join(top, "store", path.Base(p))); err != nil {
			return "", "", fmt.Errorf("the tarball's install script names %s, which its store/ folder lacks", p)
		}
		if m[1] == "nix" {
			nix = p
		} else {
			cacert = p
		}
	}
	if nix == "" {
		return "", "", errors.New("the tarball's install script names no nix store path (nix=\"/nix/store/…\")")
	}
	if !strings.HasSuffix(nix, "-nix-"+in.Release.Version) {
		return "", "", fmt.Errorf("the tarball holds %s, not Nix %s", nix, in.Release.Version)
	}
	return nix, cacert, nil
}

// readOnly removes the write bits below p (the store is read-only).
func readOnly(p string) error {
	return filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(q, info.Mode().Perm()&^0o222)
	})
}

// removeAll removes p even where the store made it read-only.
func removeAll(p string) {
	filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(q, 0o700)
		}
		return nil
	})
	os.RemoveAll(p)
}
