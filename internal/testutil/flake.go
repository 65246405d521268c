package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// NixSystem is the Nix system of this machine ("x86_64-linux").
func NixSystem() string {
	if runtime.GOARCH == "arm64" {
		return "aarch64-linux"
	}
	return "x86_64-linux"
}

// CopyFlake copies the offline test flake in src into a new temporary
// folder, with @SYSTEM@ replaced by this machine's Nix system and @NONCE@
// by a value unique to this run (so Nix builds its derivations afresh),
// and returns the folder.
func CopyFlake(t testing.TB, src string) string {
	t.Helper()
	dir := t.TempDir()
	nonce := fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		dst := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		text := strings.ReplaceAll(strings.ReplaceAll(string(data), "@NONCE@", nonce), "@SYSTEM@", NixSystem())
		return os.WriteFile(dst, []byte(text), 0o644)
	})
	if err != nil {
		t.Fatalf("copy test flake %s: %v", src, err)
	}
	return dir
}
