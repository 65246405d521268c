package detect

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadRunning(t *testing.T) {
	root := t.TempDir()
	if r := ReadRunning(root); r.IsNode("beta") || r.OSID != "" {
		t.Errorf("an empty root is %+v", r)
	}
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.MkdirAll(filepath.Join(root, "proc/sys/kernel"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("NAME=NixOS\nID=nixos\nVERSION_ID=\"25.05\"\n"), 0o644)
	os.WriteFile(filepath.Join(root, "proc/sys/kernel/hostname"), []byte("beta\n"), 0o644)
	r := ReadRunning(root)
	if !r.IsNode("beta") || r.IsNode("gamma") || r.IsNode("") {
		t.Errorf("%+v", r)
	}
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=debian\n"), 0o644)
	if ReadRunning(root).IsNode("beta") {
		t.Error("Debian named beta is taken for the node")
	}
}
