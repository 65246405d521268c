package boot

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"unicode"

	"github.com/homestaker/homestaker/disk"
)

// Runner runs an external command and returns its combined output
// (disk.Runner's contract); tests record or fake it.
type Runner interface {
	Run(ctx context.Context, argv []string) ([]byte, error)
}

// MtoolsRunner runs mtools commands with os/exec. MTOOLS_SKIP_CHECK stops
// mtools from refusing a FAT whose geometry fields do not match a floppy's,
// and MTOOLSRC=/dev/null keeps a user's drive letters out of the way.
type MtoolsRunner struct{}

// Run runs argv and wraps a failure with the command line and its output.
func (MtoolsRunner) Run(ctx context.Context, argv []string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("run: empty command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), mtoolsEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.Error
		if errors.As(err, &ee) {
			return out, fmt.Errorf("%s is not installed (Debian: apt install mtools): %w", argv[0], err)
		}
		return out, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

var mtoolsEnv = []string{"MTOOLS_SKIP_CHECK=1", "MTOOLSRC=/dev/null"}

// espFS is the FAT filesystem of an EFI system partition as an install
// reads and writes it, by absolute paths on the partition ("/loader/entries"):
// with mtools at the partition's byte offset on the raw disk or image (esp),
// or through the folder where the running system has it mounted
// (folderESP, on the node: /boot). Writing through the raw disk while the
// kernel has the FAT mounted would corrupt it, so an install uses exactly one.
type espFS interface {
	// check says why the partition holds no homestaker FAT ("": it does).
	check() string
	list(dir string) ([]string, error)
	// mkdir creates folder p, whose parent exists.
	mkdir(p string) error
	put(src, p string) error
	// putAll copies the local files srcs into folder dir.
	putAll(srcs []string, dir string) error
	rename(p, newName string) error
	remove(p string, tree bool) error
	read(p string) ([]byte, error)
	freeBytes() (uint64, error)
	sum(p string) (string, error)
}

// esp is the FAT filesystem of an EFI system partition, reached by mtools
// at byte offset on the whole disk or image at path.
type esp struct {
	ctx    context.Context
	run    Runner
	path   string
	offset uint64
}

// spec is mtools' "-i file@@offset" image argument.
func (e *esp) spec() string { return e.path + "@@" + strconv.FormatUint(e.offset, 10) }

func (e *esp) mtools(cmd string, args ...string) ([]byte, error) {
	return e.run.Run(e.ctx, append([]string{cmd, "-i", e.spec()}, args...))
}

// check reads the FAT's label: homestaker disk format labels it
// disk.BootFilesystemLabel.
func (e *esp) check() string {
	out, err := e.mtools("mlabel", "-s", "::")
	if err != nil || !strings.Contains(string(out), disk.BootFilesystemLabel) {
		return fmt.Sprintf("%v %s", err, strings.TrimSpace(string(out)))
	}
	return ""
}

// putAll copies the local files srcs into folder dir in one mcopy.
func (e *esp) putAll(srcs []string, dir string) error {
	args := append([]string{"-o", "-D", "o"}, srcs...)
	if _, err := e.mtools("mcopy", append(args, "::"+dir+"/")...); err != nil {
		return fmt.Errorf("copy %d files to %s on the EFI system partition: %w", len(srcs), dir, err)
	}
	return nil
}

// notFound reports whether an mtools failure says the file is missing.
func notFound(out []byte) bool {
	s := string(out)
	return strings.Contains(s, "not found") || strings.Contains(s, "no match")
}

// list returns the names in folder dir ("/loader/entries"), or nil when the
// folder does not exist.
func (e *esp) list(dir string) ([]string, error) {
	out, err := e.mtools("mdir", "-b", "::"+dir)
	if err != nil {
		if notFound(out) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s on the EFI system partition: %w", dir, err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name := path.Base(strings.TrimPrefix(line, "::"))
		if name != "." && name != ".." {
			names = append(names, name)
		}
	}
	return names, nil
}

// espExists reports whether the file or folder p exists, comparing names
// case-insensitively as FAT does (both backends).
func espExists(e espFS, p string) (bool, error) {
	names, err := e.list(path.Dir(p))
	if err != nil {
		return false, err
	}
	for _, n := range names {
		if strings.EqualFold(n, path.Base(p)) {
			return true, nil
		}
	}
	return false, nil
}

// espMkdirAll creates folder p and its parents (both backends).
func espMkdirAll(e espFS, p string) error {
	if p == "/" || p == "" || p == "." {
		return nil
	}
	ok, err := espExists(e, p)
	if err != nil || ok {
		return err
	}
	if err := espMkdirAll(e, path.Dir(p)); err != nil {
		return err
	}
	return e.mkdir(p)
}

// mkdir creates folder p.
func (e *esp) mkdir(p string) error {
	if _, err := e.mtools("mmd", "::"+p); err != nil {
		return fmt.Errorf("create %s on the EFI system partition: %w", p, err)
	}
	return nil
}

// put copies the local file src to p, replacing p.
func (e *esp) put(src, p string) error {
	if _, err := e.mtools("mcopy", "-o", "-D", "o", src, "::"+p); err != nil {
		return fmt.Errorf("copy %s to %s on the EFI system partition: %w", src, p, err)
	}
	return nil
}

// rename renames p to the file name newName in the same folder, replacing a
// file of that name: mtools rewrites the folder's entries in one go, the
// nearest FAT has to an atomic rename.
func (e *esp) rename(p, newName string) error {
	if _, err := e.mtools("mren", "-D", "o", "::"+p, "::"+path.Join(path.Dir(p), newName)); err != nil {
		return fmt.Errorf("rename %s to %s on the EFI system partition: %w", p, newName, err)
	}
	return nil
}

// remove deletes the file or folder tree p; a missing p is no error.
func (e *esp) remove(p string, tree bool) error {
	cmd := "mdel"
	if tree {
		cmd = "mdeltree"
	}
	if out, err := e.mtools(cmd, "::"+p); err != nil && !notFound(out) {
		return fmt.Errorf("remove %s from the EFI system partition: %w", p, err)
	}
	return nil
}

// read returns the content of the small file p.
func (e *esp) read(p string) ([]byte, error) {
	out, err := e.mtools("mtype", "::"+p)
	if err != nil {
		return nil, fmt.Errorf("read %s on the EFI system partition: %w", p, err)
	}
	return out, nil
}

// freeBytes is the free space mdir reports ("  1 234 567 bytes free").
func (e *esp) freeBytes() (uint64, error) {
	out, err := e.mtools("mdir", "::/")
	if err != nil {
		return 0, fmt.Errorf("read the EFI system partition: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if num, ok := strings.CutSuffix(strings.TrimSpace(line), "bytes free"); ok {
			digits := strings.Map(func(r rune) rune {
				if unicode.IsDigit(r) {
					return r
				}
				return -1
			}, num)
			return strconv.ParseUint(digits, 10, 64)
		}
	}
	return 0, fmt.Errorf("mdir of the EFI system partition did not say how much space is free:\n%s", out)
}

// sum is the SHA-256 of file p, streamed out of the partition by mtype
// (not through Runner: kernels and initrds are too big to hold in memory).
func (e *esp) sum(p string) (string, error) {
	cmd := exec.CommandContext(e.ctx, "mtype", "-i", e.spec(), "::"+p)
	cmd.Env = append(os.Environ(), mtoolsEnv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("read back %s: %w", p, err)
	}
	h := sha256.New()
	_, cerr := io.Copy(h, out)
	if err := cmd.Wait(); err != nil || cerr != nil {
		return "", fmt.Errorf("read back %s from the EFI system partition: %v %v %s", p, err, cerr, strings.TrimSpace(stderr.String()))
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

// fileSum is the SHA-256 of a local file.
func fileSum(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}
