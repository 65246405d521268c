package flake

// How a render lands in the flake folder.
//
// The flake folder is shared: other hosts, the user's local.nix, flake.lock,
// a .git, result links, perhaps an editor or shell sitting in it. Swapping
// the whole folder for a staged copy would have to copy all of that, breaks
// whoever has the folder open, and is no atomic operation either (two
// renames), so the folder stays and only what changes is staged:
//
//  1. Every changed file is written into .homestaker/stage-XXXX/tree/ inside
//     the flake folder (the same filesystem, so a rename moves it into
//     place), mirroring its path, and fsynced. A folder that does not exist
//     yet (hosts/<new host>/, or modules/ on a first render) is staged whole.
//     The context is checked before each file. Any failure here (ENOSPC,
//     EIO, Ctrl-C) removes the staging folder, and the flake folder is as it
//     was, byte for byte.
//  2. The list of moves is written (moves.json, fsynced) and the staging
//     folder is renamed to .homestaker/commit-XXXX. That rename is the
//     commit point; the context is checked for the last time before it.
//  3. The moves run in order, each one rename(2): shared files first, then
//     the manifest, then whatever holds a host's homestaker.json. A new
//     host's folder arrives in one rename, so hosts/ never holds a host
//     without its homestaker.json (flake.nix reads one per folder: a half
//     host would break the evaluation of every host), and an existing host's
//     homestaker.json, which reconfigure reads, is replaced last.
//
// A run killed before the commit point leaves a stage-* folder, which the
// next run removes (roll back). One killed after it leaves a commit-*
// folder, whose remaining moves the next run finishes before it looks at
// anything else (roll forward, a redo log). Runs on one folder are
// serialised with flock(2) on the folder itself, so cleaning up never
// touches the staging folder of a run still going.
//
// Which files are homestaker's: .homestaker/files.json (the manifest) holds
// the SHA-256 of every file homestaker wrote. A file that exists with other
// content than it should have is overwritten only when the manifest says
// homestaker wrote exactly what is there now; otherwise it is the user's
// (never written by homestaker, or edited since) and Write refuses, naming
// it, unless forced. local.nix (Once) is never overwritten, and
// secrets.yaml (Merged) is made from the file that is there, keeping every
// value, so neither is ever refused.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Paths of homestaker's own bookkeeping inside the flake folder.
const (
	// StateDir holds the manifest and, during a render, the staging folder.
	StateDir = ".homestaker"
	// ManifestPath lists the files homestaker wrote with their SHA-256; it
	// belongs to the flake (commit it with the rest).
	ManifestPath = StateDir + "/files.json"
)

// More actions of Diff and Write.
const (
	// Overwrite is a Foreign file that Write replaces because it was forced.
	Overwrite Action = "overwrite"
	// Remove is a stale temporary file of an interrupted render.
	Remove Action = "remove"
)

// WriteOptions are the choices of Diff and Write.
type WriteOptions struct {
	// Force overwrites files homestaker did not write or that were edited
	// since (local.nix is still never overwritten).
	Force bool
	// Input is the flake-relative path of the answers file the render reads
	// (hosts/<name>/homestaker.json given as --answers): edited by hand, it
	// is the input of this render, not a file to protect from it.
	Input string
	// FS is the filesystem the render writes through; nil is the real one.
	// Tests inject failures with it.
	FS FS
	// StageDelay is waited before each staged file (tests slow a render down
	// to interrupt it).
	StageDelay time.Duration
}

// FS is what Write does to the filesystem while staging and moving.
// Cleaning up after a failure uses the os package directly.
type FS interface {
	Mkdir(name string, perm os.FileMode) error
	// WriteFile creates name (which must not exist) with data and perm,
	// and fsyncs it.
	WriteFile(name string, data []byte, perm os.FileMode) error
	Rename(oldpath, newpath string) error
	// SyncDir fsyncs a folder, so the names in it are durable.
	SyncDir(name string) error
}

// OSFS is the real filesystem.
type OSFS struct{}

// Mkdir is os.Mkdir with the mode set exactly (the umask does not apply).
func (OSFS) Mkdir(name string, perm os.FileMode) error {
	if err := os.Mkdir(name, perm); err != nil {
		return err
	}
	return os.Chmod(name, perm)
}

// WriteFile creates, writes, chmods and fsyncs name.
func (OSFS) WriteFile(name string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Rename is os.Rename.
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// SyncDir opens and fsyncs a folder.
func (OSFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ForeignFile is a file Write refused to overwrite.
type ForeignFile struct {
	Path string
	// Edited: homestaker wrote the file, and it was changed since.
	Edited bool
}

// ForeignError is Write's refusal to overwrite files that are not
// homestaker's. Nothing in the flake folder was changed.
type ForeignError struct {
	Dir   string
	Files []ForeignFile
}

func (e *ForeignError) Error() string {
	var theirs, edited []string
	for _, f := range e.Files {
		if f.Edited {
			edited = append(edited, f.Path)
		} else {
			theirs = append(theirs, f.Path)
		}
	}
	var parts []string
	if len(theirs) > 0 {
		parts = append(parts, fmt.Sprintf("%s %s not written by homestaker", joinNames(theirs), isAre(len(theirs))))
	}
	if len(edited) > 0 {
		parts = append(parts, fmt.Sprintf("%s %s edited since homestaker wrote %s", joinNames(edited), wasWere(len(edited)), itThem(len(edited))))
	}
	return fmt.Sprintf("refusing to write the flake in %s: %s; nothing was changed. "+
		"Move %s out of the way (your own NixOS options belong in hosts/<name>/local.nix, which homestaker never overwrites), "+
		"or run again with --force to overwrite %s",
		e.Dir, strings.Join(parts, ", and "), itThem(len(e.Files)), itThem(len(e.Files)))
}

func joinNames(names []string) string {
	switch len(names) {
	case 1:
		return names[0]
	case 2:
		return names[0] + " and " + names[1]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func isAre(n int) string   { return map[bool]string{true: "is", false: "are"}[n == 1] }
func wasWere(n int) string { return map[bool]string{true: "was", false: "were"}[n == 1] }
func itThem(n int) string  { return map[bool]string{true: "it", false: "them"}[n == 1] }

// manifest is .homestaker/files.json.
type manifest struct {
	Version int `json:"version"`
	// Files maps a flake-relative path to the SHA-256 (hex) of the content
	// homestaker last wrote there.
	Files map[string]string `json:"files"`
}

func readManifest(dir string) (manifest, error) {
	m := manifest{Version: 1, Files: map[string]string{}}
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(ManifestPath)))
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, fmt.Errorf("read %s: %w", ManifestPath, err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%s in %s is not homestaker's manifest (%v): remove it and render with --force", ManifestPath, dir, err)
	}
	if m.Files == nil {
		m.Files = map[string]string{}
	}
	return m, nil
}

func (m manifest) encode() []byte {
	data, _ := json.MarshalIndent(m, "", "  ")
	return append(data, '\n')
}

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// Diff says what writing files into dir would do, without writing: Foreign
// (Overwrite when forced) for files that are not homestaker's, Remove for
// stale temporary files the write would clear away.
func Diff(dir string, files []File, opts WriteOptions) ([]Change, error) {
	m, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	changes := make([]Change, 0, len(files))
	for _, f := range files {
		a, err := action(dir, f, m, opts)
		if err != nil {
			return nil, err
		}
		changes = append(changes, Change{Path: f.Path, Action: a})
	}
	stale, err := staleTemps(dir, files)
	if err != nil {
		return nil, err
	}
	for _, s := range stale {
		changes = append(changes, Change{Path: s, Action: Remove})
	}
	return changes, nil
}

func action(dir string, f File, m manifest, opts WriteOptions) (Action, error) {
	old, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Create, nil
	case err != nil:
		return "", fmt.Errorf("read %s: %w", f.Path, err)
	case f.Once:
		return Keep, nil
	case bytes.Equal(old, f.Content):
		return Unchanged, nil
	case f.Merged || f.Path == opts.Input || m.Files[f.Path] == sum(old):
		return Update, nil
	case opts.Force:
		return Overwrite, nil
	}
	return Foreign, nil
}

// foreign lists the refused files of changes.
func foreign(dir string, changes []Change) *ForeignError {
	m, _ := readManifest(dir)
	var e ForeignError
	for _, c := range changes {
		if c.Action == Foreign {
			_, edited := m.Files[c.Path]
			e.Files = append(e.Files, ForeignFile{Path: c.Path, Edited: edited})
		}
	}
	if len(e.Files) == 0 {
		return nil
	}
	e.Dir = dir
	return &e
}

// ForeignOf is the refusal a Write of these changes (from Diff) would give,
// nil when there is none: the review shows it before anything is written.
func ForeignOf(dir string, changes []Change) error {
	if e := foreign(dir, changes); e != nil {
		return e
	}
	return nil
}

// Write puts files into dir (created if missing) through a staging folder
// (see the top of this file): on any error, and when ctx ends before the
// commit point, dir is left as it was. A file whose content is already
// right is not touched, so rendering twice changes nothing. Files that are
// not homestaker's give a *ForeignError unless opts.Force. Stale staging
// folders and temporary files of an interrupted render are removed first,
// and an interrupted move is finished.
func Write(ctx context.Context, dir string, files []File, opts WriteOptions) (changes []Change, err error) {
	fsys := opts.FS
	if fsys == nil {
		fsys = OSFS{}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Folders this run creates go again when it fails.
	created, err := mkdirAllTracked(dir)
	if err != nil {
		return nil, fmt.Errorf("create the flake folder %s: %w", dir, err)
	}
	stateExisted := exists(filepath.Join(dir, StateDir))
	defer func() {
		if err == nil {
			return
		}
		if !stateExisted {
			os.Remove(filepath.Join(dir, StateDir)) // only when empty
		}
		for i := len(created) - 1; i >= 0; i-- {
			os.Remove(created[i])
		}
	}()
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if err := recoverDir(dir, fsys); err != nil {
		return nil, err
	}
	changes, err = Diff(dir, files, opts)
	if err != nil {
		return nil, err
	}
	if e := foreign(dir, changes); e != nil {
		return changes, e
	}
	for _, c := range changes {
		if c.Action == Remove {
			if err := os.Remove(filepath.Join(dir, filepath.FromSlash(c.Path))); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("remove the stale temporary file %s: %w", c.Path, err)
			}
		}
	}

	// The manifest: every file homestaker owns, with what it holds after
	// this render (entries of other hosts are kept).
	m, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	oldManifest := string(m.encode())
	var write []File
	for i, f := range files {
		switch changes[i].Action {
		case Create, Update, Overwrite:
			write = append(write, f)
		}
		if f.Once || f.Merged {
			continue
		}
		if a := changes[i].Action; a == Create || a == Update || a == Overwrite || a == Unchanged {
			m.Files[f.Path] = sum(f.Content)
		}
	}
	newManifest := m.encode()
	if len(write) == 0 && string(newManifest) == oldManifest {
		return changes, nil
	}
	write = append(write, File{Path: ManifestPath, Content: newManifest})
	if err := commit(ctx, dir, write, fsys, opts.StageDelay); err != nil {
		return nil, err
	}
	return changes, nil
}

// moves is the journal of a commit: the flake-relative paths staged under
// tree/, in the order they are moved into place.
type moves struct {
	Moves []string `json:"moves"`
}

// commit stages write under a new staging folder, commits and moves it.
func commit(ctx context.Context, dir string, write []File, fsys FS, delay time.Duration) error {
	state := filepath.Join(dir, StateDir)
	if !exists(state) {
		if err := fsys.Mkdir(state, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", state, err)
		}
	}
	stage, err := os.MkdirTemp(state, "stage-")
	if err != nil {
		return fmt.Errorf("create a staging folder in %s: %w", state, err)
	}
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(stage)
		}
	}()
	tree := filepath.Join(stage, "tree")
	if err := fsys.Mkdir(tree, 0o755); err != nil {
		return fmt.Errorf("stage: %w", err)
	}

	// The unit of a file is its own path, or the first of its folders that
	// does not exist yet in dir: that folder is staged and moved whole.
	units := map[string]bool{}
	madeDirs := map[string]bool{}
	for _, f := range write {
		if err := ctx.Err(); err != nil {
			return err
		}
		if delay > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(delay):
			}
		}
		units[unitOf(dir, f.Path)] = true
		parts := strings.Split(f.Path, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/")
			if madeDirs[d] {
				continue
			}
			p := filepath.Join(tree, filepath.FromSlash(d))
			if err := fsys.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("stage %s: %w", d, err)
			}
			madeDirs[d] = true
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := fsys.WriteFile(filepath.Join(tree, filepath.FromSlash(f.Path)), f.Content, mode); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, err)
		}
	}
	// Folders deepest first, so every name is durable before the move.
	var dirs []string
	for d := range madeDirs {
		dirs = append(dirs, d)
	}
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	for _, d := range append(dirs, ".") {
		if err := fsys.SyncDir(filepath.Join(tree, filepath.FromSlash(d))); err != nil {
			return fmt.Errorf("stage: sync %s: %w", d, err)
		}
	}
	journal, _ := json.Marshal(moves{Moves: order(units)})
	if err := fsys.WriteFile(filepath.Join(stage, "moves.json"), journal, 0o644); err != nil {
		return fmt.Errorf("stage: %w", err)
	}
	if err := fsys.SyncDir(stage); err != nil {
		return fmt.Errorf("stage: %w", err)
	}
	// The last moment to stop with nothing changed.
	if err := ctx.Err(); err != nil {
		return err
	}
	done := filepath.Join(state, "commit-"+strings.TrimPrefix(filepath.Base(stage), "stage-"))
	if err := fsys.Rename(stage, done); err != nil {
		return fmt.Errorf("commit the render: %w", err)
	}
	committed = true
	if err := fsys.SyncDir(state); err != nil {
		return fmt.Errorf("commit the render: %w", err)
	}
	// Past the commit point the moves are finished even if ctx ends: a
	// rename is quick, and half the moves would be the mess this avoids.
	return finish(dir, done, fsys)
}

// unitOf is what moves file p into dir: p, or its first missing folder.
func unitOf(dir, p string) string {
	parts := strings.Split(p, "/")
	for i := 1; i < len(parts); i++ {
		d := strings.Join(parts[:i], "/")
		if !exists(filepath.Join(dir, filepath.FromSlash(d))) {
			return d
		}
	}
	return p
}

// order sorts the moves: shared files first, then the manifest, then the
// units holding a host's homestaker.json (a new host's folder, or an
// existing host's answers file).
func order(units map[string]bool) []string {
	rank := func(u string) int {
		switch {
		case u == ManifestPath:
			return 1
		case u == "hosts" || path.Base(u) == "homestaker.json" || strings.HasPrefix(u, "hosts/") && !strings.Contains(strings.TrimPrefix(u, "hosts/"), "/"):
			return 2
		}
		return 0
	}
	out := make([]string, 0, len(units))
	for u := range units {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool {
		if ri, rj := rank(out[i]), rank(out[j]); ri != rj {
			return ri < rj
		}
		return out[i] < out[j]
	})
	return out
}

// finish runs the moves of a committed folder that are not done yet, then
// removes it.
func finish(dir, done string, fsys FS) error {
	data, err := os.ReadFile(filepath.Join(done, "moves.json"))
	if err != nil {
		return fmt.Errorf("finish the render in %s: %w", done, err)
	}
	var mv moves
	if err := json.Unmarshal(data, &mv); err != nil {
		return fmt.Errorf("finish the render in %s: moves.json: %w", done, err)
	}
	parents := map[string]bool{}
	for _, u := range mv.Moves {
		src := filepath.Join(done, "tree", filepath.FromSlash(u))
		if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
			continue // moved before the run was interrupted
		}
		dst := filepath.Join(dir, filepath.FromSlash(u))
		if err := fsys.Rename(src, dst); err != nil {
			return fmt.Errorf("move %s into place (the next render finishes it): %w", u, err)
		}
		parents[filepath.Dir(dst)] = true
	}
	for p := range parents {
		if err := fsys.SyncDir(p); err != nil {
			return fmt.Errorf("sync %s: %w", p, err)
		}
	}
	return os.RemoveAll(done)
}

// recoverDir cleans up after interrupted renders: committed ones are
// finished, uncommitted staging folders removed.
func recoverDir(dir string, fsys FS) error {
	state := filepath.Join(dir, StateDir)
	entries, err := os.ReadDir(state)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(state, e.Name())
		switch {
		case !e.IsDir():
		case strings.HasPrefix(e.Name(), "commit-"):
			if err := finish(dir, p, fsys); err != nil {
				return err
			}
		case strings.HasPrefix(e.Name(), "stage-"):
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("remove the stale staging folder %s: %w", p, err)
			}
		}
	}
	return nil
}

// tempName is how os.CreateTemp names the temporary files of an atomic
// write: ".<name>.tmp-<digits>".
var tempName = regexp.MustCompile(`^\.(.+)\.tmp-[0-9]+$`)

// staleTemps finds the temporary files an interrupted render (of this or an
// older homestaker) left next to the files it writes: only names of files
// homestaker writes, only in the folders it writes them to.
func staleTemps(dir string, files []File) ([]string, error) {
	ours := map[string]bool{"homestaker.json": true, "default.nix": true, "disko.nix": true, "local.nix": true,
		"secrets.yaml": true, "known_hosts": true, "files.json": true, "flake.nix": true, ".gitignore": true, ".sops.yaml": true}
	for _, f := range files {
		ours[path.Base(f.Path)] = true
	}
	folders := []string{".", "modules", StateDir}
	hosts, _ := os.ReadDir(filepath.Join(dir, "hosts"))
	for _, h := range hosts {
		if h.IsDir() {
			folders = append(folders, "hosts/"+h.Name())
		}
	}
	var out []string
	for _, folder := range folders {
		entries, err := os.ReadDir(filepath.Join(dir, filepath.FromSlash(folder)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			m := tempName.FindStringSubmatch(e.Name())
			if m == nil || !ours[m[1]] || !e.Type().IsRegular() {
				continue
			}
			out = append(out, path.Join(folder, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// lockDir takes an exclusive flock on dir for the run.
func lockDir(dir string) (func(), error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		d.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another homestaker is writing the flake in %s: wait for it to finish", dir)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { d.Close() }, nil
}

// mkdirAllTracked is os.MkdirAll that returns the folders it created,
// outermost first.
func mkdirAllTracked(dir string) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); !exists(d); d = filepath.Dir(d) {
		missing = append([]string{d}, missing...)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return missing, nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
