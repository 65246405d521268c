package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/internal/testutil"
)

func runBootCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	code := run(context.Background(), env, append([]string{"boot"}, args...))
	return code, out.String(), errOut.String()
}

// TestBootInstallCLI: the flags, a disk without homestaker's layout
// refused, and an install on a formatted image, then a second one with a
// fallback.
func TestBootInstallCLI(t *testing.T) {
	for _, tool := range []string{"mkfs.ext4", "mkfs.vfat", "mcopy"} {
		testutil.RequireTool(t, tool)
	}
	dir := t.TempDir()
	kernel, initrd, loader := filepath.Join(dir, "bzImage"), filepath.Join(dir, "initrd"), filepath.Join(dir, "loader")
	os.WriteFile(kernel, []byte("kernel"), 0o644)
	os.WriteFile(initrd, []byte("initrd"), 0o644)
	os.Mkdir(loader, 0o755)
	os.WriteFile(filepath.Join(loader, "systemd-bootx64.efi"), []byte("MZ"), 0o644)
	img := filepath.Join(dir, "data.img")
	gen := []string{"--kernel", kernel, "--initrd", initrd, "--cmdline", "init=/nix/store/x/init", "--loader", loader, "--firmware", "uefi"}

	if code, _, errOut := runBootCLI(t, append([]string{"install"}, gen...)...); code != exitUsage || !strings.Contains(errOut, "exactly one of --device DEV and --image IMG") {
		t.Errorf("no target: exit %d: %s", code, errOut)
	}
	os.WriteFile(img, make([]byte, 1<<20), 0o644)
	if code, _, errOut := runBootCLI(t, append([]string{"install", "--image", img}, gen...)...); code != exitRefused || !strings.Contains(errOut, "no readable GPT") {
		t.Errorf("blank image: exit %d: %s", code, errOut)
	}
	os.Remove(img)
	if code, _, errOut := runDiskCLI(t, "", "", "format", "--answers", writeAnswers(t, "/dev/vda"), "--image", img, "--size", "4G"); code != exitOK {
		t.Fatalf("disk format: exit %d: %s", code, errOut)
	}
	if code, out, errOut := runBootCLI(t, append([]string{"install", "--image", img, "--device", img}, gen...)...); code != exitUsage {
		t.Errorf("both targets: exit %d: %s %s", code, out, errOut)
	}
	if code, out, errOut := runBootCLI(t, append([]string{"install", "--image", img, "--dry-run"}, gen...)...); code != exitOK || !strings.Contains(out, "would switch the default boot entry to generation 1") {
		t.Errorf("dry run: exit %d: %s %s", code, out, errOut)
	}
	if code, out, errOut := runBootCLI(t, append([]string{"install", "--image", img}, gen...)...); code != exitOK || !strings.Contains(out, "boots generation 1 with systemd-boot") {
		t.Errorf("install: exit %d: %s %s", code, out, errOut)
	}
	if code, out, errOut := runBootCLI(t, append([]string{"install", "--image", img}, gen...)...); code != exitOK || !strings.Contains(out, "boots generation 1 with systemd-boot (unchanged") {
		t.Errorf("the same generation again: exit %d: %s %s", code, out, errOut)
	}
	os.WriteFile(initrd, []byte("initrd 2"), 0o644)
	if code, out, errOut := runBootCLI(t, append([]string{"install", "--image", img}, gen...)...); code != exitOK || !strings.Contains(out, "boots generation 2 with systemd-boot; generation 1 is the fallback") {
		t.Errorf("second install: exit %d: %s %s", code, out, errOut)
	}
}
