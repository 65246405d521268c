package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// workPrefix names the work folders of a format run.
const workPrefix = "homestaker-disk-"

// ensurePrivateDir makes dir exist; private (it is to hold a key copy)
// makes it 0700 as well.
func ensurePrivateDir(dir string, private bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if !private {
		return nil
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("restrict %s to mode 0700: %w", dir, err)
	}
	return nil
}

// lockWork holds an flock on a work folder for the run, so another run's
// cleanup (RemoveStaleWork) leaves it alone.
func lockWork(dir string) (func(), error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		d.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { d.Close() }, nil
}

// RemoveStaleWork removes the work folders a killed format left in parent
// ("" is the system's temporary folder, where older versions put them, with
// the key copy). A folder still locked by a running format is left alone,
// and so is one with a filesystem still mounted in it (a btrfs being
// populated when the run was killed): removing through it would delete the
// data disk's files. It returns what it did or could not do, as sentences.
func RemoveStaleWork(parent string) []string {
	dirs := []string{parent}
	if parent == "" || parent != os.TempDir() {
		dirs = append(dirs, os.TempDir())
	}
	var msgs []string
	for _, p := range dirs {
		if p == "" {
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.IsDir() || !strings.HasPrefix(e.Name(), workPrefix) {
				continue
			}
			dir := filepath.Join(p, e.Name())
			unlock, err := lockWork(dir)
			if err != nil {
				continue // a format still running, or not ours to open
			}
			err = removeWork(dir)
			unlock()
			if err != nil {
				msgs = append(msgs, fmt.Sprintf("left the stale work folder %s of a killed format: %v", dir, err))
				continue
			}
			msgs = append(msgs, "removed the stale work folder "+dir+" of a killed format")
		}
	}
	return msgs
}

// removeWork removes a work folder without crossing into another
// filesystem: a mount point still mounted in it is an error, and nothing
// under it is touched.
func removeWork(dir string) error {
	root, err := os.Lstat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	dev := root.Sys().(*syscall.Stat_t).Dev
	var mounted []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil && info.Sys().(*syscall.Stat_t).Dev != dev {
			mounted = append(mounted, p)
			return filepath.SkipDir
		}
		return nil
	})
	if len(mounted) > 0 {
		return fmt.Errorf("%s is still mounted: unmount it (umount %s), then run again", strings.Join(mounted, ", "), mounted[0])
	}
	return os.RemoveAll(dir)
}
