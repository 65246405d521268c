package cli

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeSDParts makes a parts folder with stand-in files: enough for the
// assembly, not for a Pi.
func writeSDParts(t *testing.T, dir string) {
	t.Helper()
	kernel := make([]byte, 4096)
	binary.LittleEndian.PutUint64(kernel[0x10:], 4096)
	copy(kernel[0x38:], "ARM\x64")
	files := map[string]string{
		"Image":                    string(kernel),
		"initrd":                   "\x28\xb5\x2f\xfd stand-in",
		"cmdline.txt":              "init=/nix/store/00000000000000000000000000000000-nixos-system-pi/init console=ttyS0,115200\n",
		"start4.elf":               "firmware",
		"fixup4.dat":               "fixup",
		"bcm2711-rpi-4-b.dtb":      "dtb",
		"overlays/disable-bt.dtbo": "overlay",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestImageSD(t *testing.T) {
	parts := t.TempDir()
	writeSDParts(t, parts)
	out := filepath.Join(t.TempDir(), "pi.img")
	env, stdout, stderr := testEnv(nil)
	if code := run(context.Background(), env, []string{"image", "sd", "--parts", parts, "--out", out}); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"Wrote " + out, "type 0x0c, label FIRMWARE", "config.txt", "overlays/disable-bt.dtbo", "Image sha256:", "homestaker flash --image " + out} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if st, err := os.Stat(out); err != nil || st.Size() != 76<<20 {
		t.Errorf("the image: %v (%d bytes, want 76 MiB)", err, st.Size())
	}
}

func TestImageSDRefuses(t *testing.T) {
	parts := t.TempDir()
	writeSDParts(t, parts)
	os.WriteFile(filepath.Join(parts, "config.txt"), []byte("arm_64bit=1\n"), 0o644)
	out := filepath.Join(t.TempDir(), "pi.img")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"image"}, exitUsage, "usage: homestaker image sd"},
		{[]string{"image", "iso"}, exitUsage, "usage: homestaker image sd"},
		{[]string{"image", "sd", "--parts", parts}, exitUsage, "--parts DIR and --out FILE are both required"},
		{[]string{"image", "sd", "--parts", parts, "--out", out}, exitInvalid, "config.txt: homestaker writes config.txt itself"},
		{[]string{"image", "sd", "--parts", filepath.Join(parts, "nope"), "--out", out}, exitFailure, "read the parts folder"},
	} {
		env, _, stderr := testEnv(nil)
		if code := run(context.Background(), env, c.args); code != c.code || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, want %d with %q; stderr:\n%s", c.args, code, c.code, c.want, stderr)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused image was written")
	}
	env, _, stderr := testEnv(nil)
	if code := run(context.Background(), env, []string{"image", "--help"}); code != exitOK || !strings.Contains(stderr.String(), "-parts") {
		t.Errorf("image --help: exit %d:\n%s", code, stderr)
	}
}
