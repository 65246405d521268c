package nixbuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/flake"
	"github.com/homestaker/homestaker/plan"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCollectArtifactsFollowsLinks(t *testing.T) {
	store := t.TempDir()
	writeFiles(t, store, map[string]string{"kernel/Image": "arm64 kernel", "initrd/initrd.zst": "initrd"})
	tree := t.TempDir()
	must(t, os.Symlink(filepath.Join(store, "kernel/Image"), filepath.Join(tree, "Image")))
	must(t, os.Symlink(filepath.Join(store, "initrd/initrd.zst"), filepath.Join(tree, "initrd.zst")))
	writeFiles(t, tree, map[string]string{"kexec-boot": "#!/bin/sh\n", "variables.ipxe": "x", "README": "not an artifact"})
	got, err := CollectArtifacts(context.Background(), tree, plan.FormatKexec)
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]ArtifactRole{}
	for _, a := range got {
		roles[a.Name] = a.Role
	}
	want := map[string]ArtifactRole{"Image": RoleKernel, "initrd.zst": RoleInitrd, "kexec-boot": RoleKexecScript, "variables.ipxe": RoleIPXE}
	if len(roles) != len(want) {
		t.Fatalf("artifacts %+v", got)
	}
	for name, role := range want {
		if roles[name] != role {
			t.Errorf("%s: role %q, want %q", name, roles[name], role)
		}
	}
	sum := sha256.Sum256([]byte("arm64 kernel"))
	for _, a := range got {
		if a.Name == "Image" && (a.Size != int64(len("arm64 kernel")) || a.SHA256 != hex.EncodeToString(sum[:])) {
			t.Errorf("Image: %+v (the link's target is hashed, not the link)", a)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCollectArtifactsRefusesIncompleteOutput(t *testing.T) {
	tree := t.TempDir()
	writeFiles(t, tree, map[string]string{"bzImage": "k"})
	_, err := CollectArtifacts(context.Background(), tree, plan.FormatKexec)
	if err == nil || !strings.Contains(err.Error(), "no initrd") {
		t.Errorf("tree without initrd: %v", err)
	}
	iso := t.TempDir()
	writeFiles(t, iso, map[string]string{"iso/README": "x"})
	_, err = CollectArtifacts(context.Background(), iso, plan.FormatISO)
	if err == nil || !strings.Contains(err.Error(), "no .iso") {
		t.Errorf("ISO build without .iso: %v", err)
	}
	tree2 := t.TempDir()
	writeFiles(t, tree2, map[string]string{"bzImage": "k"})
	must(t, os.Symlink(filepath.Join(tree2, "missing"), filepath.Join(tree2, "initrd")))
	if _, err := CollectArtifacts(context.Background(), tree2, plan.FormatKexec); err == nil {
		t.Error("a dangling initrd link was accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	writeFiles(t, tree, map[string]string{"initrd": "i"})
	if _, err := CollectArtifacts(ctx, tree, plan.FormatKexec); err == nil {
		t.Error("hashing went on after cancel")
	}
}

func TestBuildManifestRoundTripAndErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hosts", "n", "build-manifest.json")
	m := BuildManifest{Version: BuildManifestVersion, Host: "n", Format: plan.FormatISO,
		Artifacts: []Artifact{{Role: RoleISO, Name: "iso/nixos.iso", Size: 3, SHA256: "ab"}}}
	must(t, WriteBuildManifest(path, m))
	must(t, WriteBuildManifest(path, m)) // overwrite in place
	back, err := ReadBuildManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := back.Artifact(RoleISO); !ok || a.Name != "iso/nixos.iso" {
		t.Errorf("read back %+v", back)
	}
	if _, ok := back.Artifact(RoleKernel); ok {
		t.Error("found a kernel in an ISO manifest")
	}
	writeFiles(t, dir, map[string]string{"bad.json": "{", "old.json": `{"version":99}`})
	if _, err := ReadBuildManifest(filepath.Join(dir, "bad.json")); err == nil {
		t.Error("broken manifest accepted")
	}
	if _, err := ReadBuildManifest(filepath.Join(dir, "old.json")); err == nil || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("unknown version: %v", err)
	}
}

func TestReadBuildTarget(t *testing.T) {
	one := t.TempDir()
	writeFiles(t, one, map[string]string{
		"flake.nix":                    "{}",
		"hosts/node1/homestaker.json":  `{"host":{"name":"node1","arch":"aarch64","format":"iso","memoryBytes":8589934592}}`,
		"hosts/notahost/default.nix":   "{}",
		"hosts/README":                 "",
		"modules/kexec-tree/x.nix":     "{}",
		"hosts/node1/local.nix":        "{}",
		"hosts/node1/build-manifest.x": "",
	})
	got, err := ReadBuildTarget(one, "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Host != "node1" || got.Format != plan.FormatISO || got.Arch != plan.ArchAarch64 || got.MemoryBytes != 8<<30 {
		t.Errorf("target %+v", got)
	}
	if got.Installable() != one+"#nixosConfigurations.node1.config.system.build.isoImage" {
		t.Errorf("installable %s", got.Installable())
	}

	two := t.TempDir()
	writeFiles(t, two, map[string]string{
		"flake.nix":                 "{}",
		"hosts/a/homestaker.json":   `{"host":{"name":"a"}}`,
		"hosts/b/homestaker.json":   `{"host":{"name":"b","format":"floppy"}}`,
		"hosts/c/homestaker.json":   `{`,
		"hosts/d-1/homestaker.json": `{}`,
	})
	if _, err := ReadBuildTarget(two, ""); err == nil || !strings.Contains(err.Error(), "a, b, c, d-1") || !strings.Contains(err.Error(), "--host") {
		t.Errorf("several hosts: %v", err)
	}
	if a, err := ReadBuildTarget(two, "a"); err != nil || a.Format != plan.FormatKexec {
		t.Errorf("host a: %+v, %v", a, err)
	}
	for host, want := range map[string]string{
		"b":        `"floppy"`,
		"c":        "fix the file",
		"zz":       "hosts here: a, b, c, d-1",
		"../a":     "not a valid host name",
		"a.b":      "not a valid host name",
		"-rf":      "not a valid host name",
		"x y\"$()": "not a valid host name",
	} {
		if _, err := ReadBuildTarget(two, host); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("host %q: %v, want it to say %s", host, err, want)
		}
	}
	if _, err := ReadBuildTarget(t.TempDir(), ""); err == nil || !strings.Contains(err.Error(), "no flake.nix") {
		t.Errorf("empty folder: %v", err)
	}
	empty := t.TempDir()
	writeFiles(t, empty, map[string]string{"flake.nix": "{}"})
	if _, err := ReadBuildTarget(empty, ""); err == nil || !strings.Contains(err.Error(), "render the flake") {
		t.Errorf("flake without hosts: %v", err)
	}
}

func TestRAMWarning(t *testing.T) {
	tests := []struct {
		name                 string
		initrd, ram, clients uint64
		wantEmpty            bool
		wantContains         string
	}{
		{"unknown RAM", 600 * mib, 0, 16 * gib, true, ""},
		{"plenty", 600 * mib, 64 * gib, 24 * gib, true, ""},
		{"clients squeezed", 1500 * mib, 16 * gib, 16 * gib, false, "leaving about 14 GiB for the Ethereum clients, which need about 16 GiB"},
		{"cannot boot", 3 * gib, 4 * gib, 0, false, "cannot boot"},
		{"huge initrd", 2500 * mib, 64 * gib, 8 * gib, false, "corrupted"},
		{"nothing left", 500 * mib, 1400 * mib, 8 * gib, false, "leaving nothing"},
	}
	for _, tt := range tests {
		got := RAMWarning(tt.initrd, tt.ram, tt.clients)
		if (got == "") != tt.wantEmpty || !strings.Contains(got, tt.wantContains) {
			t.Errorf("%s: RAMWarning = %q, want empty=%v containing %q", tt.name, got, tt.wantEmpty, tt.wantContains)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		50000: "49 KiB", 16 * gib: "16 GiB", 1<<64 - 1: "16 EiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestBinaryCaches(t *testing.T) {
	caches := flake.BinaryCaches()
	if len(caches) < 2 {
		t.Fatalf("caches %+v", caches)
	}
	for _, c := range caches {
		name, _, ok := strings.Cut(c.PublicKey, ":")
		if !strings.HasPrefix(c.URL, "https://") || !ok || !strings.Contains(c.URL, strings.TrimSuffix(name, "-1")) || c.Source == "" {
			t.Errorf("cache %+v: URL and key do not match, or no source", c)
		}
	}
	if !strings.Contains(flake.BinaryCacheNote(), "nix-community.cachix.org") {
		t.Error(flake.BinaryCacheNote())
	}
}
