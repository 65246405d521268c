package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/secrets"
)

// runDiskCLI runs homestaker disk with the recorded machine root and a
// state folder holding an SSH host key for node1 (the host of writeAnswers).
func runDiskCLI(t *testing.T, root, stdin string, args ...string) (int, string, string) {
	t.Helper()
	state := t.TempDir()
	if _, _, err := secrets.EnsureHostKey(filepath.Join(state, "homestaker"), "node1"); err != nil {
		t.Fatal(err)
	}
	return runDiskCLIEnv(t, map[string]string{systemRootEnv: root, "XDG_STATE_HOME": state}, stdin, args...)
}

// runDiskCLIEnv runs homestaker disk with exactly the environment vars.
func runDiskCLIEnv(t *testing.T, vars map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut, getenv: func(k string) string { return vars[k] }}
	code := run(context.Background(), env, append([]string{"disk"}, args...))
	return code, out.String(), errOut.String()
}

func writeAnswers(t *testing.T, device string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "homestaker.json")
	a := `{"version":1,"host":{"name":"node1"},"ethereum":{"execution":"geth","consensus":"lighthouse","validator":{"enable":true,"feeRecipient":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"},"mevBoost":{"enable":false}},"disk":{"device":"` + device + `","filesystem":"ext4"},"ssh":{"authorizedKeys":["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIrAWAe8Eu8oR0nqj8sN7aHINtNpPHK2dZ4dS1IZqosR staker@laptop"]},"secrets":{}}`
	if err := os.WriteFile(p, []byte(a), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDiskListJSON(t *testing.T) {
	code, out, errOut := runDiskCLI(t, "disk/testdata/rescue", "", "list", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var devs []map[string]any
	if err := json.Unmarshal([]byte(out), &devs); err != nil || len(devs) != 3 {
		t.Fatalf("%v: %s", err, out)
	}
}

func TestDiskFormatRefusesAndConfirms(t *testing.T) {
	const server = "disk/testdata/server-2nvme"
	root := writeAnswers(t, "/dev/disk/by-id/nvme-SAMSUNG_MZQL23T8HCLS-00A07_S64HNE0R600001")
	code, _, errOut := runDiskCLI(t, server, "", "format", "--answers", root, "--yes", "--confirm-device", "/dev/nvme0n1")
	if code != exitRefused || !strings.Contains(errOut, "holds /") {
		t.Errorf("disk holding /: exit %d: %s", code, errOut)
	}
	part := writeAnswers(t, "/dev/disk/by-id/nvme-SAMSUNG_MZQL23T8HCLS-00A07_S64HNE0R600001-part1")
	if code, _, errOut := runDiskCLI(t, server, "", "format", "--answers", part, "--dry-run"); code != exitRefused || !strings.Contains(errOut, "whole disk") {
		t.Errorf("partition: exit %d: %s", code, errOut)
	}
	free := writeAnswers(t, "/dev/disk/by-id/nvme-SAMSUNG_MZQL23T8HCLS-00A07_S64HNE0R600002")
	if code, _, errOut := runDiskCLI(t, server, "", "format", "--answers", free, "--yes"); code != exitUsage {
		t.Errorf("--yes alone: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runDiskCLI(t, server, "", "format", "--answers", free, "--yes", "--confirm-device", "/dev/nvme0n1"); code != exitRefused || !strings.Contains(errOut, "does not name") {
		t.Errorf("wrong --confirm-device: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runDiskCLI(t, server, "/dev/sda\n", "format", "--answers", free); code != exitRefused || !strings.Contains(errOut, "nothing was written") {
		t.Errorf("wrong typed path: exit %d: %s", code, errOut)
	}
	code, out, errOut := runDiskCLI(t, server, "", "format", "--answers", free, "--dry-run")
	if code != exitOK || !strings.Contains(out, "would run: mkfs.ext4") || !strings.Contains(out, "disk-data-data") {
		t.Errorf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"disk":{"device":"/dev/sda","filesytem":"ext4"}}`), 0o644)
	if code, _, errOut := runDiskCLI(t, server, "", "format", "--answers", bad); code != exitInvalid || !strings.Contains(errOut, "filesytem") {
		t.Errorf("unknown field: exit %d: %s", code, errOut)
	}
}

func TestDiskFormatImage(t *testing.T) {
	testutil.RequireTool(t, "mkfs.ext4")
	img := filepath.Join(t.TempDir(), "data.img")
	a := writeAnswers(t, "/dev/disk/by-id/whatever")
	if code, _, errOut := runDiskCLI(t, "", "", "format", "--answers", a, "--image", img); code != exitUsage || !strings.Contains(errOut, "--size") {
		t.Errorf("missing image without --size: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runDiskCLI(t, "", "", "format", "--answers", a, "--image", img, "--size", "4G"); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	// An existing image is only replaced when named again.
	if code, _, _ := runDiskCLI(t, "", "\n", "format", "--answers", a, "--image", img); code != exitRefused {
		t.Errorf("existing image without confirmation: exit %d", code)
	}
	if code, _, errOut := runDiskCLI(t, "", img+"\n", "format", "--answers", a, "--image", img, "--sector-size", "4096"); code != exitOK {
		t.Errorf("existing image, typed path: exit %d: %s", code, errOut)
	}
}
