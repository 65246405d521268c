package secrets

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Leak is private material found where it must not be. It names the place
// and the kind of material, never the material itself.
type Leak struct {
	// Where is the file path (or the stream name) and byte offset.
	Where string
	// What is "an age secret key", "a PEM private key" or "secret value #N"
	// (N counts from 1 in the order the values were given).
	What string
}

// String formats the leak for a test failure.
func (l Leak) String() string { return l.Where + ": " + l.What }

// privateMarkers are what every private key homestaker handles contains.
var privateMarkers = []struct {
	marker []byte
	what   string
}{
	{[]byte("AGE-SECRET-KEY-"), "an age secret key"},
	{[]byte("PRIVATE KEY"), "a PEM private key"},
}

// ScanBytes looks for private keys (AGE-SECRET-KEY-, PRIVATE KEY, matched
// without regard to case) and for each of values in data, named name in the
// result. Empty values are ignored. Tests use it on captured output.
func ScanBytes(name string, data []byte, values ...string) []Leak {
	var leaks []Leak
	upper := bytes.ToUpper(data)
	for _, m := range privateMarkers {
		if i := bytes.Index(upper, m.marker); i >= 0 {
			leaks = append(leaks, Leak{Where: fmt.Sprintf("%s at byte %d", name, i), What: m.what})
		}
	}
	for n, v := range values {
		if v == "" {
			continue
		}
		if i := bytes.Index(data, []byte(v)); i >= 0 {
			leaks = append(leaks, Leak{Where: fmt.Sprintf("%s at byte %d", name, i), What: fmt.Sprintf("secret value #%d", n+1)})
		}
	}
	return leaks
}

// ScanDir runs ScanBytes over every regular file under root (symbolic links
// are not followed), for tests that prove a rendered flake can be published.
func ScanDir(root string, values ...string) ([]Leak, error) {
	var leaks []Leak
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		leaks = append(leaks, ScanBytes(path, data, values...)...)
		return nil
	})
	if err != nil {
		return leaks, fmt.Errorf("scan %s for leaks: %w", root, err)
	}
	return leaks, nil
}
