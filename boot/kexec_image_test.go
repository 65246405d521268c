package boot

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homestaker/homestaker/nixbuild"
	"github.com/homestaker/homestaker/plan"
)

// nixpkgsKexecBoot is the kexec-boot script as nixpkgs' netboot module
// writes it.
const nixpkgsKexecBoot = `#!/usr/bin/env bash
if ! kexec -v >/dev/null 2>&1; then
  echo "kexec not found: please install kexec-tools" 2>&1
  exit 1
fi
SCRIPT_DIR=$( cd -- "$( dirname -- "${BASH_SOURCE[0]}" )" &> /dev/null && pwd )
kexec --load ${SCRIPT_DIR}/bzImage \
  --initrd=${SCRIPT_DIR}/initrd.zst \
  --command-line "init=/nix/store/0a1b2c3d-nixos-system-node-26.05/init console=ttyS0,115200 loglevel=4"
kexec -e
`

func TestParseKexecBootCmdline(t *testing.T) {
	got, err := ParseKexecBootCmdline(nixpkgsKexecBoot)
	if want := "init=/nix/store/0a1b2c3d-nixos-system-node-26.05/init console=ttyS0,115200 loglevel=4"; err != nil || got != want {
		t.Fatalf("got %q %v, want %q", got, err, want)
	}
	for _, tc := range []struct{ script, want, err string }{
		{`kexec -l k --command-line='init=/x/init  a=b'`, "init=/x/init a=b", ""},
		{`kexec -l k --append "init=/x/init quiet \"q\"" # comment`, `init=/x/init quiet "q"`, ""},
		{`kexec -l k --command-line="init=/x/init \$HOME"`, "init=/x/init $HOME", ""},
		{`kexec -l k --command-line "init=$TOPLEVEL/init"`, "", "shell variables"},
		{`kexec -l k --command-line "$(cat cmdline)"`, "", "shell variables"},
		{"echo hi\n", "", "no kexec call"},
		{`kexec -l k --command-line "console=ttyS0"`, "", "no init="},
		{"kexec -l k --command-line \"init=/a/init\"\nkexec -l k --command-line \"init=/b/init\"", "", "several"},
	} {
		got, err := ParseKexecBootCmdline(tc.script)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: got %q %v, want error with %q", tc.script, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q %v, want %q", tc.script, got, err, tc.want)
		}
	}
}

// fakeFlake writes a flake folder with one built host "node" whose kexec
// tree is in out/; it returns the flake folder and the tree.
func fakeFlake(t *testing.T, format plan.Format) (string, string) {
	t.Helper()
	dir := t.TempDir()
	flake := filepath.Join(dir, "flake")
	tree := filepath.Join(dir, "out")
	os.MkdirAll(filepath.Join(flake, "hosts", "node"), 0o755)
	os.MkdirAll(tree, 0o755)
	os.WriteFile(filepath.Join(flake, "flake.nix"), []byte("{}\n"), 0o644)
	os.WriteFile(filepath.Join(flake, "hosts", "node", "homestaker.json"),
		[]byte(`{"version":1,"host":{"name":"node","arch":"x86_64","format":"`+string(format)+`"}}`), 0o644)
	os.WriteFile(filepath.Join(tree, "bzImage"), fakeBzImage(0x020f, xlfKernel64|xlfAbove4G, 1<<20), 0o644)
	os.WriteFile(filepath.Join(tree, "initrd.zst"), []byte("070701"), 0o644)
	os.WriteFile(filepath.Join(tree, "kexec-boot"), []byte(nixpkgsKexecBoot), 0o755)
	arts, err := nixbuild.CollectArtifacts(context.Background(), tree, plan.FormatKexec)
	if err != nil {
		t.Fatal(err)
	}
	target := nixbuild.BuildTarget{FlakeDir: flake, Host: "node", Format: format}
	m := nixbuild.NewBuildManifest(nixbuild.BuildResult{Target: target, OutPath: tree, Finished: time.Now()}, arts, "2.24.0")
	if err := nixbuild.WriteBuildManifest(nixbuild.BuildManifestPath(target), m); err != nil {
		t.Fatal(err)
	}
	return flake, tree
}

func TestFindKexecImage(t *testing.T) {
	ctx := context.Background()
	flake, tree := fakeFlake(t, plan.FormatKexec)
	os.WriteFile(filepath.Join(flake, "hosts", "node", "known_hosts"), []byte("node ssh-ed25519 AAAA\n"), 0o644)
	img, err := FindKexecImage(ctx, flake, "")
	if err != nil {
		t.Fatal(err)
	}
	if img.Kernel != filepath.Join(tree, "bzImage") || img.Initrd != filepath.Join(tree, "initrd.zst") ||
		!strings.HasPrefix(img.Cmdline, "init=/nix/store/") || img.Target.Host != "node" ||
		img.KnownHostsPath != filepath.Join(flake, "hosts", "node", "known_hosts") {
		t.Errorf("%+v", img)
	}

	// A changed file is refused.
	os.WriteFile(filepath.Join(tree, "initrd.zst"), []byte("070702"), 0o644)
	if _, err := FindKexecImage(ctx, flake, "node"); err == nil || !strings.Contains(err.Error(), "changed since the build") {
		t.Errorf("changed initrd: %v", err)
	}
	// A collected file is refused.
	os.Remove(filepath.Join(tree, "initrd.zst"))
	if _, err := FindKexecImage(ctx, flake, "node"); err == nil || !strings.Contains(err.Error(), "is gone") {
		t.Errorf("missing initrd: %v", err)
	}
	// No build yet.
	os.Remove(filepath.Join(flake, "hosts", "node", "build-manifest.json"))
	if _, err := FindKexecImage(ctx, flake, "node"); err == nil || !strings.Contains(err.Error(), "homestaker build") {
		t.Errorf("no manifest: %v", err)
	}
	// An ISO host.
	iso, _ := fakeFlake(t, plan.FormatISO)
	if _, err := FindKexecImage(ctx, iso, ""); err == nil || !strings.Contains(err.Error(), "homestaker flash") {
		t.Errorf("ISO host: %v", err)
	}
}
