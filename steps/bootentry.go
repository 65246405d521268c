package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/homestaker/homestaker/boot"
	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/nixbuild"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/report"
)

// BootLoaderEtc is where a kexec host's system carries the boot loader of
// its boot entry (assets/nix/modules/kexec-tree.nix), below its toplevel.
const BootLoaderEtc = "etc/homestaker/boot-loader"

// loaderPrefix starts the manifest names of the boot loader's files.
const loaderPrefix = "boot-loader/"

// BootEntryStep writes the node's boot entry on the freshly formatted data
// disk, with the code of `homestaker boot install` (boot.WriteEntry): the
// build's kernel, initrd and command line (the kexec tree's init= path) as a
// new generation on the boot partition, with the boot loader the build
// made (systemd-boot for UEFI, GRUB for BIOS, from host.firmware or this
// machine's firmware). New files first, then the entry switched; the
// previous generation stays as the fallback, and a run with an unchanged
// build leaves the entries as they are. install runs it after the disk
// step; reconfigure runs it after its build, on a rescue system (the data
// disk free: written with mtools on the raw disk) and on the node itself,
// where the partition is mounted at /boot and is written through that
// mount instead (see boot.MountedESP).
type BootEntryStep struct {
	// Image, when set, is the image file the disk step formatted instead
	// of the plan's disk.
	Image string
	// Runner runs mtools (nil: the real ones).
	Runner boot.Runner
	// Optional: a disk that cannot take the entry (formatted before
	// homestaker wrote boot partitions) is reported and left alone instead
	// of failing the apply; a reconfiguration sets it, an install does not.
	Optional bool
}

func (BootEntryStep) Name() string { return "boot-entry" }

func (b BootEntryStep) Title(t *Target) string {
	return "Write the boot entry on " + b.target(t)
}

func (b BootEntryStep) target(t *Target) string {
	if b.Image != "" {
		return b.Image
	}
	return t.Plan.Disk.Device
}

// Firmware is the firmware the entry is written for, and why.
func (t *Target) Firmware() (boot.Firmware, string) {
	if fw := t.Plan.Host.Firmware; fw != "" {
		return fw, "host.firmware"
	}
	fw := boot.RunningFirmware(t.System.Root)
	return fw, "this machine booted with " + string(fw)
}

// LoaderName names the boot loader of a firmware.
func LoaderName(fw boot.Firmware) string {
	if fw == boot.BIOS {
		return "GRUB (BIOS)"
	}
	return "systemd-boot (UEFI)"
}

func (b BootEntryStep) Describe(t *Target) []string {
	fw, why := t.Firmware()
	lines := []string{fmt.Sprintf("copy the build's kernel and initrd to the boot partition (%s) of %s as a new generation, read them back, "+
		"install %s from the build (%s) and switch the default entry to it; the last generation known to boot stays as the fallback%s",
		"disk-data-boot", b.target(t), LoaderName(fw), why, counting(fw))}
	if _, dir, err := b.mountedESP(t); err == nil && dir != "" {
		lines = append(lines, "the boot partition is mounted at "+dir+" on this machine: written through the mounted filesystem, not the raw disk")
	}
	return lines
}

// counting describes the boot counter of a new entry for the review.
func counting(fw boot.Firmware) string {
	if fw == boot.BIOS {
		return ""
	}
	return fmt.Sprintf(" (systemd-boot boots it again by itself if the new one fails to complete a boot %d times)", boot.DefaultTries)
}

// Verify: never trusted from the journal. A resumed apply may have built
// again (its build did not verify), and the entry must boot what kexec
// boots; an entry that already does is left unchanged, so running the step
// again costs a read of the boot partition.
func (BootEntryStep) Verify(ctx context.Context, t *Target) error {
	return errors.New("the boot entry is always checked against the build")
}

func (b BootEntryStep) Apply(ctx context.Context, t *Target, s *Sink) error {
	tg, espDir, err := b.mountedESP(t)
	var refused *disk.RefusedError
	if b.Optional && errors.As(err, &refused) {
		// A disk formatted before homestaker wrote boot partitions keeps
		// its layout: say so, and touch nothing.
		s.Warnf("no boot entry written: %s; after a power cut the node boots as before (re-format the data disk with --format-disk to give it a boot partition)", refused.Reason)
		return nil
	}
	if err != nil {
		espDir = "" // the raw path reads the disk again and says what is wrong
	}
	m, err := t.manifest()
	if err != nil {
		return err
	}
	g, loader, err := EntryFromManifest(ctx, m, t.FlakeDir)
	if err != nil {
		return err
	}
	fw, why := t.Firmware()
	s.Notef("Boot entry for %s with %s (%s); boot loader from the build: %s", t.Plan.Host.Name, LoaderName(fw), why, loader)
	in := &boot.Installer{Runner: b.Runner, Reporter: report.Func(s.Report), SysRoot: t.System.Root}
	opts := boot.Options{Firmware: fw, LoaderDir: loader}
	var res boot.Result
	if espDir != "" {
		// The node: its boot partition is mounted, and only the kernel's
		// vfat driver may write it.
		s.Notef("The boot partition of %s is mounted at %s: the entry is written through the mounted filesystem", b.target(t), espDir)
		opts.ESPDir = espDir
		res, err = in.Install(ctx, tg, g, opts)
	} else {
		_, res, err = in.WriteEntry(ctx, boot.EntryRequest{
			Path: b.target(t), Image: b.Image != "", Generation: g, Options: opts,
		})
	}
	if b.Optional && errors.As(err, &refused) {
		s.Warnf("no boot entry written: %s; after a power cut the node boots as before (re-format the data disk with --format-disk to give it a boot partition)", refused.Reason)
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case res.Unchanged:
		s.Notef("%s already boots this build as generation %d (fallback %d): unchanged", b.target(t), res.Generation, res.Fallback)
	case res.Fallback != 0 && res.Tries > 0:
		s.Notef("%s boots generation %d; generation %d is the fallback: systemd-boot goes back to generation %d by itself after %d starts of generation %d that never complete a boot "+
			"(the node marks a complete boot with systemd-bless-boot)", b.target(t), res.Generation, res.Fallback, res.Fallback, res.Tries, res.Generation)
	case res.Fallback != 0:
		s.Notef("%s boots generation %d; generation %d is the fallback", b.target(t), res.Generation, res.Fallback)
	default:
		s.Notef("%s boots generation %d", b.target(t), res.Generation)
	}
	return nil
}

// mountedESP reads the partition table of the plan's data disk on this
// machine and finds where its EFI system partition is mounted (on the
// node: /boot, by disko): the disk's target and the mount's folder, ""
// when it is not mounted (a rescue system; or an image, or no data disk
// here: the raw path).
func (b BootEntryStep) mountedESP(t *Target) (boot.Target, string, error) {
	if b.Image != "" || t.Disk == nil {
		return boot.Target{}, "", nil
	}
	tg, err := boot.ReadTarget(filepath.Join(t.System.Root, t.Disk.Path))
	if err != nil {
		return tg, "", err
	}
	dir, err := boot.MountedESP(t.System.Root, tg)
	return tg, dir, err
}

// manifest is the build's manifest: the build step's, or (on a resume, or
// a reconfigure that built earlier) the one in the flake.
func (t *Target) manifest() (nixbuild.BuildManifest, error) {
	if t.Built != nil {
		return *t.Built, nil
	}
	bt, err := t.buildTarget()
	if err != nil {
		return nixbuild.BuildManifest{}, err
	}
	return nixbuild.ReadBuildManifest(nixbuild.BuildManifestPath(bt))
}

// EntryFromManifest is what a kexec build's boot entry starts: the kernel
// and initrd the manifest lists (checked against their recorded SHA-256),
// the command line of its kexec-boot script, and the folder of the boot
// loader's files (role "loader", each checked too).
func EntryFromManifest(ctx context.Context, m nixbuild.BuildManifest, flakeDir string) (boot.Generation, string, error) {
	var g boot.Generation
	if m.Format != plan.FormatKexec {
		return g, "", Refuse(fmt.Errorf("host %s is a %s build: only a kexec tree's kernel and initrd go into a boot entry", m.Host, m.Format))
	}
	bt := nixbuild.BuildTarget{FlakeDir: flakeDir, Host: m.Host, Format: m.Format}
	for _, need := range []struct {
		role nixbuild.ArtifactRole
		dst  *string
	}{{nixbuild.RoleKernel, &g.Kernel}, {nixbuild.RoleInitrd, &g.Initrd}} {
		a, ok := m.Artifact(need.role)
		if !ok {
			return g, "", fmt.Errorf("the build manifest of %s lists no %s: build the host again", m.Host, need.role)
		}
		if err := nixbuild.VerifyArtifact(ctx, a, bt); err != nil {
			return g, "", err
		}
		*need.dst = a.Path
	}
	cmdline, _, err := kexecCmdline(m.Artifacts)
	if err != nil {
		return g, "", err
	}
	g.Cmdline = cmdline
	var root string
	for _, a := range m.Artifacts {
		if a.Role != nixbuild.RoleLoader {
			continue
		}
		if err := nixbuild.VerifyArtifact(ctx, a, bt); err != nil {
			return g, "", err
		}
		r := strings.TrimSuffix(a.Path, "/"+strings.TrimPrefix(a.Name, loaderPrefix))
		if root != "" && r != root {
			return g, "", fmt.Errorf("the build manifest of %s lists boot loader files in two folders (%s, %s): build the host again", m.Host, root, r)
		}
		root = r
	}
	if root == "" {
		return g, "", Refuse(fmt.Errorf("the build of %s has no boot loader for the data disk (no %q files in its manifest; the system carries them at /%s on x86_64): "+
			"render the flake with this homestaker and build again, so the boot loader comes from the build and not from this machine", m.Host, nixbuild.RoleLoader, BootLoaderEtc))
	}
	return g, root, nil
}

// kexecCmdline reads the command line and the system's toplevel (the
// folder of its init=) from the kexec-boot script among artifacts.
func kexecCmdline(artifacts []nixbuild.Artifact) (cmdline, toplevel string, err error) {
	var script *nixbuild.Artifact
	for i := range artifacts {
		if artifacts[i].Role == nixbuild.RoleKexecScript {
			script = &artifacts[i]
			break
		}
	}
	if script == nil {
		return "", "", errors.New("the build lists no kexec-boot script, which holds the command line: build the host again")
	}
	text, err := os.ReadFile(script.Path)
	if err != nil {
		return "", "", fmt.Errorf("read the kexec-boot script: %w; build the host again", err)
	}
	cmdline, err = boot.ParseKexecBootCmdline(string(text))
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", script.Path, err)
	}
	for _, w := range strings.Fields(cmdline) {
		if init, ok := strings.CutPrefix(w, "init="); ok && path.IsAbs(init) {
			toplevel = path.Dir(init)
		}
	}
	return cmdline, toplevel, nil
}

// BootLoaderArtifacts lists the boot loader files a kexec build's system
// carries (<toplevel>/etc/homestaker/boot-loader, found through the
// kexec-boot script's init=), as artifacts of role "loader" named
// boot-loader/<file>. A system without them (aarch64, or a flake rendered
// by an older homestaker) gives none.
func BootLoaderArtifacts(ctx context.Context, artifacts []nixbuild.Artifact) ([]nixbuild.Artifact, error) {
	_, toplevel, err := kexecCmdline(artifacts)
	if err != nil || toplevel == "" {
		return nil, nil // the kexec step says what is wrong with the script
	}
	root, err := filepath.EvalSymlinks(filepath.Join(toplevel, BootLoaderEtc))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the build's boot loader: %w", err)
	}
	var found []nixbuild.Artifact
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		a, err := nixbuild.NewArtifact(ctx, nixbuild.RoleLoader, loaderPrefix+filepath.ToSlash(rel), p)
		if err != nil {
			return err
		}
		found = append(found, a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("the build's boot loader in %s: %w", root, err)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Name < found[j].Name })
	return found, nil
}
