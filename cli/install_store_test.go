package cli

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/nixbuild"
)

// TestInstallStoreOnDataDiskDryRun: install --store-on-data-disk --dry-run
// shows the explicit order (the disk erased before the build, the store
// bind-mounted from it), the BEFORE warning, where the store lives and what
// the build needs, and changes nothing.
func TestInstallStoreOnDataDiskDryRun(t *testing.T) {
	f := newFakeInstall(t, func(c nixbuild.NixCommand) error { return errors.New("no evaluation in a dry run") })
	before := firstMiB(t, f.diskFile)
	code, stdout, stderr := f.run("", "install", "--answers", f.answers, "--out", filepath.Join(f.home, "flake"), "--store-on-data-disk", "--dry-run")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	order := []string{"Keys and flake of node1", "Erase and format the data disk " + f.device, "Put the build's Nix store on the data disk",
		"Evaluate the configuration of node1", "Build the kexec tree of node1", "Write the boot entry on", "Boot node1 from RAM (kexec)"}
	at := 0
	for _, want := range order {
		i := strings.Index(stdout[at:], want)
		if i < 0 {
			t.Fatalf("the review lacks %q after position %d (the order is flake, disk, store, evaluate, build, boot entry, kexec):\n%s", want, at, stdout)
		}
		at += i + len(want)
	}
	for _, want := range []string{
		"is erased BEFORE the build (--store-on-data-disk): a failed build leaves it erased",
		"No chain data is lost on a fresh disk",
		"mount the new data partition /dev/nvme1n1p3 at /run/homestaker/data, create .homestaker-nix on it and bind-mount it at /nix",
		"Nix store: the data disk is erased BEFORE the build; then /nix is bind-mounted from the folder .homestaker-nix on the data partition /dev/nvme1n1p3",
		"the build needs about", "the store takes no RAM", "The kexec step unmounts the store before it loads the node",
		"dry run: nothing was changed",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the review lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "Only the flake can be written here") {
		t.Errorf("the review has a blocker:\n%s", stdout)
	}
	if firstMiB(t, f.diskFile) != before {
		t.Error("the dry run changed the data disk")
	}
}

// TestInstallStoreOnDataDiskFlags: --install-nix goes with
// --store-on-data-disk, which does not go with --flake-only.
func TestInstallStoreOnDataDiskFlags(t *testing.T) {
	f := newFakeInstall(t, func(c nixbuild.NixCommand) error { return nil })
	if code, _, stderr := f.run("", "install", "--answers", f.answers, "--install-nix", "--dry-run"); code != exitUsage || !strings.Contains(stderr, "--install-nix goes with --store-on-data-disk") {
		t.Errorf("--install-nix alone: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := f.run("", "install", "--answers", f.answers, "--store-on-data-disk", "--flake-only"); code != exitUsage || !strings.Contains(stderr, "choose one") {
		t.Errorf("--store-on-data-disk --flake-only: exit %d\n%s", code, stderr)
	}
}

// TestInstallStoreOnDataDiskWithoutNix: with no Nix, the store on the data
// disk needs --install-nix (a Nix installed into /nix in RAM would hide the
// store on the disk); with it, the nix step comes right after the store.
func TestInstallStoreOnDataDiskWithoutNix(t *testing.T) {
	f := newFakeInstall(t, func(c nixbuild.NixCommand) error { return nil })
	f.deps.lookPath = func(string) (string, error) { return "", errors.New("not found") }
	f.deps.run = func(ctx context.Context, c nixbuild.NixCommand) error {
		io.WriteString(c.Stderr, "no nix")
		return errors.New("no nix")
	}
	out := filepath.Join(f.home, "flake")
	code, stdout, stderr := f.run("", "install", "--answers", f.answers, "--out", out, "--store-on-data-disk", "--yes", "--confirm-device", f.device)
	if code != exitRefused || !strings.Contains(stderr, "add --install-nix") {
		t.Errorf("no Nix, no --install-nix: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = f.run("", "install", "--answers", f.answers, "--out", out, "--store-on-data-disk", "--install-nix", "--dry-run")
	if code != exitOK {
		t.Fatalf("--install-nix --dry-run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	store := strings.Index(stdout, "Put the build's Nix store on the data disk")
	nix := strings.Index(stdout, "Install Nix (verified, single-user, for root)")
	eval := strings.Index(stdout, "Evaluate the configuration of node1")
	if store < 0 || nix < store || eval < nix || !strings.Contains(stdout, "with the Nix the nix step installs") || strings.Contains(stdout, "Only the flake can be written here") {
		t.Errorf("the order store → nix → evaluate, with no blocker:\n%s", stdout)
	}
	if firstMiB(t, f.diskFile) != firstMiB(t, writeOldData(t)) {
		t.Error("the data disk changed")
	}
}
