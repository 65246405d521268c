package disk

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LoopDevices lists the loop devices of sys whose backing file is
// backingFile, with the same checks as Discover (mounted, swap, held,
// read-only). Discover leaves every loop device out, so that no command
// offers one as a disk; a caller that names the file behind a loop device
// knows what it is writing to. Tests and bench/flash.sh use this to flash a
// loop device standing in for a USB stick.
func LoopDevices(sys System, backingFile string) ([]BlockDevice, error) {
	want, err := canonicalFile(backingFile)
	if err != nil {
		return nil, fmt.Errorf("loop backing file %s: %w", backingFile, err)
	}
	entries, err := os.ReadDir(sys.path("/sys/block"))
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "loop") {
			continue
		}
		b := strings.TrimSuffix(readTrim(sys.path("/sys/block/"+e.Name()+"/loop/backing_file")), " (deleted)")
		if b == "" {
			continue // not attached
		}
		if got, err := canonicalFile(b); err == nil && got == want {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	return readDevices(sys, names)
}

func canonicalFile(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(abs)
}
