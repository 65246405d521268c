package flake

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// tree is every entry under dir (files with mode and content, folders and
// links with mode): two equal trees are byte-identical.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == dir {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		v := info.Mode().String()
		if info.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += "|" + string(data)
		}
		m[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func diffTrees(a, b map[string]string) []string {
	var d []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			d = append(d, "gone: "+k)
		} else if w != v {
			d = append(d, "changed: "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, "new: "+k)
		}
	}
	return d
}

// failingFS fails its n-th operation (counting from 1) with ENOSPC.
type failingFS struct {
	n, calls int
	op       string
}

func (f *failingFS) fail(op, name string) error {
	f.calls++
	if f.calls == f.n {
		f.op = op + " " + name
		return &os.PathError{Op: op, Path: name, Err: syscall.ENOSPC}
	}
	return nil
}

func (f *failingFS) Mkdir(name string, perm os.FileMode) error {
	if err := f.fail("mkdir", name); err != nil {
		return err
	}
	return OSFS{}.Mkdir(name, perm)
}

func (f *failingFS) WriteFile(name string, data []byte, perm os.FileMode) error {
	if err := f.fail("write", name); err != nil {
		// Like a full disk: part of the file is there.
		os.WriteFile(name, data[:len(data)/2], perm)
		return err
	}
	return OSFS{}.WriteFile(name, data, perm)
}

func (f *failingFS) Rename(o, n string) error {
	if err := f.fail("rename", o); err != nil {
		return err
	}
	return os.Rename(o, n)
}

func (f *failingFS) SyncDir(name string) error {
	if err := f.fail("sync", name); err != nil {
		return err
	}
	return OSFS{}.SyncDir(name)
}

// TestWriteFailureLeavesFolderAsItWas fails every filesystem operation of a
// render in turn, up to the commit point: into an empty folder, into a flake
// with another host (adding a host and changing shared files), the folder
// must be byte-identical to before after each failure. Past the commit point
// a failed move is finished by the next render.
func TestWriteFailureLeavesFolderAsItWas(t *testing.T) {
	beta, err := Files(input(examplePlan(t, "mainnet-erigon-lighthouse")))
	if err != nil {
		t.Fatal(err)
	}
	pi, err := Files(input(examplePlan(t, "rpi4-hoodi-geth-nimbus")))
	if err != nil {
		t.Fatal(err)
	}
	// A newer homestaker changes a shared file too.
	for i := range pi {
		if pi[i].Path == "modules/base.nix" {
			pi[i].Content = append(append([]byte{}, pi[i].Content...), "# changed\n"...)
		}
	}
	for _, start := range []string{"empty", "with beta"} {
		t.Run(start, func(t *testing.T) {
			committedFailures := 0
			for n := 1; ; n++ {
				dir := filepath.Join(t.TempDir(), "flake")
				if start == "with beta" {
					if _, err := Write(context.Background(), dir, beta, WriteOptions{}); err != nil {
						t.Fatal(err)
					}
				}
				before := tree(t, dir)
				fsys := &failingFS{n: n}
				_, err := Write(context.Background(), dir, pi, WriteOptions{FS: fsys})
				if fsys.calls < n {
					if err != nil {
						t.Fatalf("render with no failure: %v", err)
					}
					if n < 10 {
						t.Fatalf("only %d filesystem operations: the failure injection does not reach the render", fsys.calls)
					}
					t.Logf("%s: failed each of %d operations in turn; %d of them after the commit point", start, n-1, committedFailures)
					return
				}
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("failing %s: err = %v, want ENOSPC", fsys.op, err)
				}
				commits, _ := filepath.Glob(filepath.Join(dir, StateDir, "commit-*"))
				if len(commits) > 0 {
					// Past the commit point: the next render finishes the moves.
					committedFailures++
					if _, err := Write(context.Background(), dir, pi, WriteOptions{}); err != nil {
						t.Fatalf("failing %s, then rendering again: %v", fsys.op, err)
					}
					want := filepath.Join(t.TempDir(), "flake")
					if start == "with beta" {
						Write(context.Background(), want, beta, WriteOptions{})
					}
					Write(context.Background(), want, pi, WriteOptions{})
					if d := diffTrees(tree(t, want), tree(t, dir)); len(d) > 0 {
						t.Errorf("failing %s after the commit point, the next render left: %s", fsys.op, strings.Join(d, ", "))
					}
					continue
				}
				if d := diffTrees(before, tree(t, dir)); len(d) > 0 {
					t.Errorf("failing %s (operation %d) changed the folder: %s", fsys.op, n, strings.Join(d, ", "))
				}
			}
		})
	}
}

// TestWriteCancelledChangesNothing: a context that ends while staging
// leaves the folder as it was.
func TestWriteCancelledChangesNothing(t *testing.T) {
	files, _ := Files(input(examplePlan(t, "mainnet-erigon-lighthouse")))
	dir := filepath.Join(t.TempDir(), "flake")
	ctx, cancel := context.WithCancel(context.Background())
	fsys := &cancelFS{after: 5, cancel: cancel}
	if _, err := Write(ctx, dir, files, WriteOptions{FS: fsys}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a cancelled render into a new folder left it: %v", tree(t, dir))
	}
}

type cancelFS struct {
	OSFS
	n, after int
	cancel   func()
}

func (c *cancelFS) WriteFile(name string, data []byte, perm os.FileMode) error {
	if c.n++; c.n == c.after {
		c.cancel()
	}
	return c.OSFS.WriteFile(name, data, perm)
}

// TestWriteOwnership: a file homestaker did not write, or one it wrote and
// the user edited, is refused by name; forced, it is overwritten; local.nix
// is never overwritten; stale temporary files are removed.
func TestWriteOwnership(t *testing.T) {
	files, _ := Files(input(examplePlan(t, "mainnet-erigon-lighthouse")))
	dir := t.TempDir()
	own := filepath.Join(dir, "flake.nix")
	os.WriteFile(own, []byte("{ outputs = _: { }; }\n"), 0o644)
	_, err := Write(context.Background(), dir, files, WriteOptions{})
	var fe *ForeignError
	if !errors.As(err, &fe) || len(fe.Files) != 1 || fe.Files[0].Path != "flake.nix" || fe.Files[0].Edited {
		t.Fatalf("err = %v, want a refusal naming flake.nix", err)
	}
	if got := tree(t, dir); len(got) != 2 { // "." and flake.nix
		t.Errorf("the refusal wrote files: %v", got)
	}
	if _, err := Write(context.Background(), dir, files, WriteOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	// Edited since homestaker wrote it.
	def := filepath.Join(dir, "hosts", "beta", "default.nix")
	os.WriteFile(def, []byte("# mine\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "hosts", "beta", "local.nix"), []byte("{ ... }: { }\n"), 0o644)
	stale := []string{".flake.nix.tmp-123", "modules/.base.nix.tmp-4", "hosts/beta/.default.nix.tmp-99", StateDir + "/stage-7/tree/flake.nix"}
	for _, s := range stale {
		p := filepath.Join(dir, filepath.FromSlash(s))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("half"), 0o644)
	}
	userTemp := filepath.Join(dir, ".notes.tmp-1")
	os.WriteFile(userTemp, []byte("mine"), 0o644)
	_, err = Write(context.Background(), dir, files, WriteOptions{})
	if !errors.As(err, &fe) || len(fe.Files) != 1 || !fe.Files[0].Edited || !strings.Contains(err.Error(), "hosts/beta/default.nix was edited since homestaker wrote it") {
		t.Fatalf("err = %v, want the edited default.nix refused", err)
	}
	// The user's copy moved away: the render goes on and cleans up.
	os.Rename(def, def+".mine")
	changes, err := Write(context.Background(), dir, files, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	removed := 0
	for _, c := range changes {
		if c.Action == Remove {
			removed++
		}
	}
	for _, s := range stale {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(s))); !os.IsNotExist(err) {
			t.Errorf("stale %s was not removed", s)
		}
	}
	if removed != 3 {
		t.Errorf("%d removals reported, want 3 (the staging folder goes silently): %v", removed, changes)
	}
	if _, err := os.Stat(userTemp); err != nil {
		t.Errorf("a file that is not homestaker's temporary file was removed: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "hosts", "beta", "local.nix")); string(got) != "{ ... }: { }\n" {
		t.Errorf("local.nix was overwritten: %q", got)
	}
}
