package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/internal/testutil"
	"github.com/homestaker/homestaker/media"
	"github.com/homestaker/homestaker/nixbuild"
)

// TestBuildSDWithRealNix builds an sd host of a stand-in flake offline with
// Nix 2.26 and checks that build assembles the card from the parts it
// built: the image in the cache folder, in the manifest with its checksum,
// the same bytes as `homestaker image sd` makes of the same parts.
func TestBuildSDWithRealNix(t *testing.T) {
	nixPath, _ := testutil.RequireTestNix(t)
	testutil.RequireRoot(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, ".cache"))
	offline := []string{"--nix-option", "substituters=", "--nix-option", "sandbox=false", "--nix-option", "build-users-group="}

	dir := copyTestFlake(t, "sd")
	env, stdout, stderr := testEnv(map[string]string{"HOME": home, "XDG_CACHE_HOME": filepath.Join(home, ".cache"), "TERM": "dumb"})
	if code := runBuildWith(context.Background(), env, append([]string{dir}, offline...), withNix(nixPath)); code != exitOK {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	want := filepath.Join(home, ".cache", "homestaker", "images", "pi-sd.img")
	if !strings.Contains(stderr.String(), "Assembled the SD card "+want) || !strings.Contains(stdout.String(), "Built the SD card for pi") {
		t.Errorf("no assembly reported:\n%s\n%s", stderr, stdout)
	}
	m, err := nixbuild.ReadBuildManifest(filepath.Join(dir, "hosts", "pi", "build-manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	card, ok := m.Artifact(nixbuild.RoleSDImage)
	if !ok || card.Path != want || m.Attribute != "nixosConfigurations.pi.config.system.build.sdParts" {
		t.Fatalf("manifest %+v", m)
	}
	if _, ok := m.Artifact(nixbuild.RoleKernel); !ok {
		t.Errorf("the manifest lists no kernel: %+v", m.Artifacts)
	}
	// The same parts through `homestaker image sd`: the same bytes.
	again := filepath.Join(t.TempDir(), "again.img")
	parts, err := media.ReadParts(m.OutPath)
	if err != nil {
		t.Fatal(err)
	}
	img, err := media.Assemble(context.Background(), parts, again)
	if err != nil {
		t.Fatal(err)
	}
	if img.SHA256 != card.SHA256 {
		t.Errorf("build made %s, image sd %s of the same parts", card.SHA256, img.SHA256)
	}
	if st, err := os.Stat(want); err != nil || st.Size() != card.Size {
		t.Errorf("the card image: %v", err)
	}
}
