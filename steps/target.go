package steps

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/nixbuild"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/validator"
)

// Target is everything an apply works on, resolved once before the first
// step (plan, catalogue, folders, the data disk as found on this machine,
// Nix) and passed down to every step. Steps add what they produce (the
// flake's result, the build's manifest) for the steps after them.
type Target struct {
	Plan      plan.Plan
	Catalogue *plan.Catalogue
	// FlakeDir is the flake folder; Private the private folder (keys,
	// the journal, logs).
	FlakeDir, Private string
	// Keys are the validator's keys, checked.
	Keys validator.Keys

	// System is where block devices are read (sysfs/procfs root).
	System disk.System
	// Disk is the plan's data disk as found on this machine; DiskErr says
	// why it is not usable (not here, in use). Exactly one is set when
	// the plan has a data disk.
	Disk    *disk.BlockDevice
	DiskErr error
	// Layout is the data disk's layout placed on Disk.
	Layout *disk.Layout
	// Confirmed is the data disk as the user named it at the review (or
	// with --confirm-device): the disk step erases only a disk it names.
	Confirmed string
	// ConfirmedByID and ConfirmedSize are that disk's by-id name and size
	// as the review showed it: the disk step erases only a disk that still
	// has them, whatever its kernel name ("" and 0: not recorded).
	ConfirmedByID string
	ConfirmedSize uint64

	// Nix is the nix binary found on this machine; NixErr why there is
	// none that is new enough.
	Nix    NixInfo
	NixErr error
	// NixArgs are extra arguments for every nix command.
	NixArgs []string
	// NixByStep: a nix step before the build installs Nix when it is
	// missing (install --store-on-data-disk --install-nix), so a missing
	// Nix does not stop the review.
	NixByStep bool

	// Caps are the capabilities the steps use; zero values are the real
	// ones.
	Caps Caps

	// Filled in by the steps as they run.
	Flake FlakeResult
	Built *nixbuild.BuildManifest
	// Store is the build's store on the data disk as the store step
	// mounted it (nil: the store is where it was); the kexec step
	// unmounts it before it loads the node.
	Store *StoreMount
}

// NixInfo is the nix binary the build steps run.
type NixInfo struct {
	Path    string
	Version nixbuild.NixVersion
}

// Caps are the injected capabilities of the steps.
type Caps struct {
	// Nix runs nix (nil: nixbuild.ExecRunner).
	Nix nixbuild.CommandRunner
	// Disk runs the disk tools (nil: disk.ExecRunner).
	Disk disk.Runner
	// LookPath finds programs (nil: exec.LookPath).
	LookPath func(string) (string, error)
	// Getenv reads the environment (nil: os.Getenv).
	Getenv func(string) string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

func (c Caps) nix() nixbuild.CommandRunner {
	if c.Nix != nil {
		return c.Nix
	}
	return nixbuild.ExecRunner(nixbuild.DefaultStopGrace)
}

func (c Caps) getenv() func(string) string {
	if c.Getenv != nil {
		return c.Getenv
	}
	return os.Getenv
}

func (c Caps) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// AnswersPath is where the host's answers live in the flake.
func (t *Target) AnswersPath() string {
	return filepath.Join(t.FlakeDir, "hosts", t.Plan.Host.Name, "homestaker.json")
}

// ResolveDisk finds the plan's data disk on this machine and places the
// layout on it; the result is in Disk and Layout, or DiskErr.
func (t *Target) ResolveDisk() {
	t.Disk, t.Layout, t.DiskErr = nil, nil, nil
	layout, err := disk.New(t.Plan)
	if err != nil {
		t.DiskErr = err
		return
	}
	devs, err := disk.Discover(t.System)
	if err != nil {
		t.DiskErr = err
		return
	}
	dev, err := disk.Lookup(t.System, devs, t.Plan.Disk.Device)
	if err != nil {
		// Lookup's error starts with the path the refusal names already.
		reason := strings.TrimPrefix(err.Error(), t.Plan.Disk.Device+": ")
		t.DiskErr = &disk.RefusedError{Target: t.Plan.Disk.Device, Reason: reason}
		return
	}
	if dev.InUse {
		t.Disk = &dev
		t.DiskErr = &disk.RefusedError{Target: t.Plan.Disk.Device, Reason: dev.InUseReason}
		return
	}
	placed, err := layout.Place(dev.SizeBytes, dev.SectorSize)
	if err != nil {
		t.Disk = &dev
		t.DiskErr = fmt.Errorf("disk %s: %w", t.Plan.Disk.Device, err)
		return
	}
	t.Disk, t.Layout = &dev, &placed
}

// ResolveNix finds nix and asks its version; a nix older than Nix 2.18
// (or none) is kept in NixErr.
func (t *Target) ResolveNix(ctx context.Context) {
	t.Nix, t.NixErr = NixInfo{}, nil
	lookPath, getenv := t.Caps.LookPath, t.Caps.Getenv
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	path, err := nixbuild.FindNix(lookPath, getenv)
	if err != nil {
		t.NixErr = fmt.Errorf("%v.\n%s", err, nixbuild.NixInstallHint)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := nixbuild.QueryNixVersion(ctx, t.Caps.nix(), path)
	if err != nil {
		t.NixErr = err
		return
	}
	t.Nix = NixInfo{Path: path, Version: v}
	if !v.AtLeast(nixbuild.MinNixMajor, nixbuild.MinNixMinor) {
		t.NixErr = &nixbuild.OldNixError{Version: v}
	}
}
