// Package secrets owns homestaker's key material and encrypted files: the
// host's SSH key, age identities and recipients (including the ssh-to-age
// conversion sops-nix relies on), sops-format secret files, the .sops.yaml
// creation rules, private file modes and atomic writes, and a scanner that
// proves no private material leaked into public output. It never prints a
// private key.
package secrets

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Modes of the private directory tree.
const (
	PrivateDirMode  fs.FileMode = 0o700
	PrivateFileMode fs.FileMode = 0o600
)

// EnsurePrivateDir creates dir and its missing parents with mode 0700. An
// existing dir whose mode lets others in is tightened to 0700, because it is
// about to hold private keys.
func EnsurePrivateDir(dir string) error {
	if dir == "" {
		return errors.New("private directory: empty path")
	}
	if err := os.MkdirAll(dir, PrivateDirMode); err != nil {
		return fmt.Errorf("create private directory %s: %w", dir, err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("private directory %s: %w", dir, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("private directory %s is not a directory", dir)
	}
	if info.Mode().Perm() != PrivateDirMode {
		// MkdirAll honours the umask; set the mode explicitly.
		if err := os.Chmod(dir, PrivateDirMode); err != nil {
			return fmt.Errorf("restrict private directory %s to mode 0700: %w", dir, err)
		}
	}
	return nil
}

// WriteFileAtomic replaces path with data: it writes a temporary file in the
// same directory with mode perm (regardless of the umask), syncs it, renames
// it over path and syncs the directory. A reader sees the old or the new
// content, never a part.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// CreateFileAtomic is WriteFileAtomic for files that must never be
// overwritten, such as private keys: when path already exists it returns an
// error matching fs.ErrExist and leaves the file alone.
func CreateFileAtomic(path string, data []byte, perm fs.FileMode) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("create %s: %w", path, fs.ErrExist)
	}
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	// A hard link fails when the target exists, which closes the race
	// between the check above and the rename a plain write would do.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", path, fs.ErrExist)
		}
		// Filesystems without hard links: the check above has to do.
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
	}
	return syncDir(filepath.Dir(path))
}

func writeTemp(path string, data []byte, perm fs.FileMode) (string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	// CreateTemp makes the file 0600; set the wanted mode before any
	// content is written so a private file is never readable by others.
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return tmp, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
