package steps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/flake"
	"github.com/homestaker/homestaker/media"
	"github.com/homestaker/homestaker/nixbuild"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/report"
)

// FlakeStep writes the host's keys, secrets and flake (Flake).
type FlakeStep struct {
	// Write says how the files are written (Force, the answers file).
	Write flake.WriteOptions
	// DryRun computes the changes and writes nothing (render --dry-run).
	DryRun bool
}

func (FlakeStep) Name() string { return "flake" }

func (FlakeStep) Title(t *Target) string { return "Keys and flake of " + t.Plan.Host.Name }

func (f FlakeStep) Describe(t *Target) []string {
	var lines []string
	fr, err := Flake(context.Background(), FlakeRequest{Plan: t.Plan, Out: t.FlakeDir, Private: t.Private, DryRun: true, Keys: &t.Keys, Write: f.Write,
		Report: report.Func(func(e report.Event) { lines = append(lines, e.Message) })})
	if err != nil {
		return append(lines, "cannot write the flake: "+err.Error())
	}
	for _, c := range fr.Changes {
		lines = append(lines, fmt.Sprintf("%s %s", c.Action.Mark(), filepath.Join(t.FlakeDir, c.Path)))
	}
	return lines
}

func (f FlakeStep) Apply(ctx context.Context, t *Target, s *Sink) error {
	fr, err := Flake(ctx, FlakeRequest{Plan: t.Plan, Out: t.FlakeDir, Private: t.Private, Keys: &t.Keys, Write: f.Write,
		DryRun: f.DryRun, Report: report.Func(s.Report)})
	t.Flake = fr
	if err != nil {
		for _, c := range fr.Changes {
			if c.Action == flake.Foreign {
				s.Resultf("%s %s", c.Action.Mark(), filepath.Join(t.FlakeDir, c.Path))
			}
		}
		return err
	}
	for _, line := range ChangeLines(t.FlakeDir, fr.Changes, f.DryRun) {
		s.Resultf("%s", line)
	}
	if fr.KnownHosts != "" {
		s.Resultf("host key of %s: %s", t.Plan.Host.Name, fr.HostKey.Fingerprint)
		s.Resultf("known_hosts line (also in hosts/%s/known_hosts):\n  %s", t.Plan.Host.Name, fr.KnownHosts)
	}
	return nil
}

// ChangeLines lists a flake's changes, one file a line, and how many files
// were (or would be) written.
func ChangeLines(out string, changes []flake.Change, dryRun bool) []string {
	var lines []string
	n := 0
	for _, c := range changes {
		lines = append(lines, fmt.Sprintf("%s %s", c.Action.Mark(), filepath.Join(out, filepath.FromSlash(c.Path))))
		if c.Action == flake.Create || c.Action == flake.Update || c.Action == flake.Overwrite {
			n++
		}
	}
	if dryRun {
		return append(lines, fmt.Sprintf("dry run: %d file(s) would be written, nothing was changed", n))
	}
	return append(lines, fmt.Sprintf("%d file(s) written to %s", n, out))
}

// Verify: the flake holds the host's answers as this apply wrote them, and
// the host key is still in the private folder (the flake step is cheap and
// idempotent, so resuming runs it again in any case).
func (FlakeStep) Verify(ctx context.Context, t *Target) error {
	return errors.New("the flake step is always run again")
}

// buildTarget is the host's image as nixbuild knows it, from the plan the
// target holds (the flake's homestaker.json is read again only for a plan
// that does not say its format and architecture).
func (t *Target) buildTarget() (nixbuild.BuildTarget, error) {
	h := t.Plan.Host
	if h.Format == "" || h.Arch == "" {
		return nixbuild.ReadBuildTarget(t.FlakeDir, h.Name)
	}
	abs, err := filepath.Abs(t.FlakeDir)
	if err != nil {
		return nixbuild.BuildTarget{}, fmt.Errorf("flake folder %s: %w", t.FlakeDir, err)
	}
	return nixbuild.BuildTarget{FlakeDir: abs, Host: h.Name, Format: h.Format, Arch: h.Arch, MemoryBytes: h.MemoryBytes}, nil
}

// nixReady returns NixErr as a refusal to build.
func (t *Target) nixReady() error {
	if t.NixErr != nil {
		return fmt.Errorf("the image cannot be built here: %w", t.NixErr)
	}
	if t.Nix.Path == "" {
		return errors.New("the image cannot be built here: Nix was not looked for")
	}
	return nil
}

// EvaluateStep evaluates the host's configuration with nix: a configuration
// Nix refuses stops the apply here, with the evaluator's message, before
// anything is built or erased.
type EvaluateStep struct{}

func (EvaluateStep) Name() string { return "evaluate" }

func (EvaluateStep) Title(t *Target) string {
	return "Evaluate the configuration of " + t.Plan.Host.Name
}

func (EvaluateStep) Describe(t *Target) []string {
	if t.nixReady() != nil && t.NixByStep {
		return []string{fmt.Sprintf("evaluate %s with the Nix the nix step installs", nixbuild.BuildTarget{FlakeDir: t.FlakeDir, Host: t.Plan.Host.Name, Format: t.Plan.Host.Format}.EvalAttribute())}
	}
	if t.nixReady() != nil {
		return []string{"needs Nix 2.18 or newer, which this machine lacks (the build step says how to get it)"}
	}
	return []string{fmt.Sprintf("evaluate %s with Nix %s", nixbuild.BuildTarget{FlakeDir: t.FlakeDir, Host: t.Plan.Host.Name, Format: t.Plan.Host.Format}.EvalAttribute(), t.Nix.Version)}
}

func (EvaluateStep) Apply(ctx context.Context, t *Target, s *Sink) error {
	if err := t.nixReady(); err != nil {
		return err
	}
	bt, err := t.buildTarget()
	if err != nil {
		return err
	}
	s.Notef("Evaluating the configuration of %s with Nix %s.", bt.Host, t.Nix.Version)
	_, err = nixbuild.Evaluate(ctx, nixbuild.EvalOptions{Target: bt, NixPath: t.Nix.Path, NixArgs: t.NixArgs, Run: t.Caps.nix()})
	return err
}

// BuildStep builds the host's kexec tree, ISO or SD card with nix build,
// records the artifacts in hosts/<host>/build-manifest.json, and for an sd
// host assembles the card image.
type BuildStep struct {
	// NoLink: no result-<host> link in the flake folder.
	NoLink bool
	// SDImage is where an sd host's card image goes ("": the cache folder).
	SDImage string
}

func (BuildStep) Name() string { return "build" }

func (BuildStep) Title(t *Target) string {
	return fmt.Sprintf("Build the %s of %s", FormatNoun(t.Plan.Host.Format), t.Plan.Host.Name)
}

// FormatNoun names what a host's format builds.
func FormatNoun(f plan.Format) string {
	switch f {
	case plan.FormatISO:
		return "ISO image"
	case plan.FormatSD:
		return "SD card"
	}
	return "kexec tree"
}

func (BuildStep) Describe(t *Target) []string {
	if err := t.nixReady(); err != nil && t.NixByStep {
		return []string{fmt.Sprintf("nix build the %s of %s for %s with the Nix the nix step installs; %s", FormatNoun(t.Plan.Host.Format), t.Plan.Host.Name, t.Plan.Host.Arch, flake.BinaryCacheNote())}
	}
	if err := t.nixReady(); err != nil {
		return []string{err.Error()}
	}
	return []string{fmt.Sprintf("nix build the %s of %s for %s (Nix %s); %s", FormatNoun(t.Plan.Host.Format), t.Plan.Host.Name, t.Plan.Host.Arch, t.Nix.Version, flake.BinaryCacheNote())}
}

func (b BuildStep) Apply(ctx context.Context, t *Target, s *Sink) error {
	if err := t.nixReady(); err != nil {
		return err
	}
	bt, err := t.buildTarget()
	if err != nil {
		return err
	}
	s.Notef("%s with Nix %s.", b.Title(t), t.Nix.Version)
	res, err := nixbuild.Build(ctx, nixbuild.BuildOptions{
		Target: bt, NixPath: t.Nix.Path, NixArgs: t.NixArgs, NoLink: b.NoLink,
		Run: t.Caps.nix(), Now: t.Caps.Now, Observe: s.Nix,
	})
	if err != nil {
		return err
	}
	artifacts, err := nixbuild.CollectArtifacts(ctx, res.OutPath, bt.Format)
	if err != nil {
		return err
	}
	if bt.Format == plan.FormatKexec {
		loader, err := BootLoaderArtifacts(ctx, artifacts)
		if err != nil {
			return err
		}
		artifacts = append(artifacts, loader...)
	}
	if bt.Format == plan.FormatSD {
		card, err := assembleSD(ctx, t.Caps.getenv(), res.OutPath, b.SDImage, bt, s)
		if err != nil {
			return err
		}
		artifacts = append(artifacts, card)
	}
	m := nixbuild.NewBuildManifest(res, artifacts, t.Nix.Version.String())
	path := nixbuild.BuildManifestPath(bt)
	if err := nixbuild.WriteBuildManifest(path, m); err != nil {
		return err
	}
	t.Built = &m
	summary := &lineWriter{s: s, result: true}
	nixbuild.WriteBuildSummary(summary, m, path, res.Finished.Sub(res.Started))
	summary.flush()
	sized := nixbuild.RoleInitrd
	if bt.Format == plan.FormatISO {
		sized = nixbuild.RoleISO
	}
	if a, ok := m.Artifact(sized); ok {
		if w := nixbuild.RAMWarning(uint64(a.Size), bt.MemoryBytes, ClientsRAM(t.Plan, t.Catalogue)); w != "" {
			s.Warnf("%s", w)
		}
	}
	return nil
}

// Verify: the manifest of an earlier build is there and its files are
// unchanged in the store.
func (BuildStep) Verify(ctx context.Context, t *Target) error {
	bt, err := t.buildTarget()
	if err != nil {
		return err
	}
	m, err := nixbuild.ReadBuildManifest(nixbuild.BuildManifestPath(bt))
	if err != nil {
		return err
	}
	for _, a := range m.Artifacts {
		if err := nixbuild.VerifyArtifact(ctx, a, bt); err != nil {
			return err
		}
	}
	t.Built = &m
	return nil
}

// ClientsRAM is the RAM the plan's clients need, from the catalogue.
func ClientsRAM(p plan.Plan, cat *plan.Catalogue) uint64 {
	if cat == nil {
		return 0
	}
	var gib uint64
	for _, name := range []string{p.Ethereum.Execution, p.Ethereum.Consensus} {
		if c, ok := cat.Client(name); ok {
			gib += uint64(c.RAMGiB)
		}
	}
	return gib << 30
}

// SDImagePath is where an sd host's card image goes unless told otherwise:
// the cache folder, not the flake folder, whose every file Nix copies into
// the store when it is not a git checkout.
func SDImagePath(getenv func(string) string, host string) (string, error) {
	cache := getenv("XDG_CACHE_HOME")
	if cache == "" {
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("neither XDG_CACHE_HOME nor HOME is set: give the image's path with --sd-image FILE")
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "homestaker", "images", host+"-sd.img"), nil
}

// assembleSD makes the SD-card image from the parts an sd build produced
// (media.Assemble: the same code as `homestaker image sd`) and returns it
// as the build's sd-image artifact.
func assembleSD(ctx context.Context, getenv func(string) string, partsDir, out string, bt nixbuild.BuildTarget, s *Sink) (nixbuild.Artifact, error) {
	if out == "" {
		p, err := SDImagePath(getenv, bt.Host)
		if err != nil {
			return nixbuild.Artifact{}, err
		}
		out = p
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nixbuild.Artifact{}, fmt.Errorf("create the folder of %s: %w", out, err)
	}
	parts, err := media.ReadParts(partsDir)
	if err != nil {
		return nixbuild.Artifact{}, fmt.Errorf("the build's SD parts: %w", err)
	}
	start := time.Now()
	img, err := media.Assemble(ctx, parts, out)
	if err != nil {
		return nixbuild.Artifact{}, err
	}
	s.Notef("Assembled the SD card %s (%s, %d files) in %s.", img.Path, nixbuild.FormatBytes(uint64(img.Size)), len(img.Files), time.Since(start).Round(time.Millisecond))
	return nixbuild.Artifact{Role: nixbuild.RoleSDImage, Name: filepath.Base(img.Path), Path: img.Path, Size: img.Size, SHA256: img.SHA256}, nil
}

// DiskStep erases and formats the data disk (or an image file) and puts
// the host key on it. It re-reads the disk right before writing: the disk
// must still be the one the user confirmed, and not in use.
type DiskStep struct {
	// HostKeyFile is the host's private key ("": the flake step's).
	HostKeyFile string
	// Image, when set, is an image file formatted instead of the plan's
	// disk; ImageSize and SectorSize size a new one.
	Image                 string
	ImageSize, SectorSize uint64
	// DryRun prints the partition table and every command, and writes
	// nothing.
	DryRun bool
	// PrivateDir holds the staging copy of the host key ("": the
	// target's private folder).
	PrivateDir string
	// BeforeBuild: the disk is erased before the build, to hold the
	// build's store (install --store-on-data-disk); the review says so.
	BeforeBuild bool
}

func (DiskStep) Name() string { return "disk" }

func (d DiskStep) Title(t *Target) string {
	if d.Image != "" {
		return "Format the image " + d.Image
	}
	return "Erase and format the data disk " + t.Plan.Disk.Device
}

func (d DiskStep) Describe(t *Target) []string {
	if d.Image != "" {
		return []string{fmt.Sprintf("write a new partition table and %s filesystem to the image %s", t.Plan.Disk.Filesystem, d.Image)}
	}
	if t.DiskErr != nil {
		return []string{t.DiskErr.Error()}
	}
	if t.Disk == nil {
		return []string{"the data disk " + t.Plan.Disk.Device + " was not looked for"}
	}
	lines := []string{"ERASE " + t.Plan.Disk.Device + " (" + EraseDetail(t.Plan, *t.Disk) + ")", fmt.Sprintf("new GPT with the homestaker layout, %s data filesystem, SSH host key on it", t.Plan.Disk.Filesystem)}
	if d.BeforeBuild {
		lines = append(lines, BeforeBuildWarning(t.Plan.Disk.Device))
	}
	return lines
}

// BeforeBuildWarning is the review's warning of an install that erases the
// data disk before the build (--store-on-data-disk).
func BeforeBuildWarning(device string) string {
	return fmt.Sprintf("the data disk %s is erased BEFORE the build (--store-on-data-disk): a failed build leaves it erased. "+
		"No chain data is lost on a fresh disk, but whatever %s holds now (a synced chain, keys, other files) is gone even if the node never builds; "+
		"running install again resumes without erasing it a second time", device, device)
}

func (d DiskStep) hostKey(t *Target) (string, error) {
	if d.HostKeyFile != "" {
		return d.HostKeyFile, nil
	}
	if t.Flake.HostKey.PrivatePath != "" {
		return t.Flake.HostKey.PrivatePath, nil
	}
	return "", Refuse(errors.New("no SSH host key to put on the data disk: the flake step did not run"))
}

func (d DiskStep) Apply(ctx context.Context, t *Target, s *Sink) error {
	key, err := d.hostKey(t)
	if err != nil {
		return err
	}
	f := &disk.Formatter{System: t.System, Runner: t.Caps.Disk, Reporter: report.Func(s.Report)}
	opts := disk.Options{HostKeyFile: key, DryRun: d.DryRun, PrivateDir: d.PrivateDir}
	if opts.PrivateDir == "" {
		opts.PrivateDir = t.Private
	}
	if d.Image != "" {
		layout, err := disk.New(t.Plan)
		if err != nil {
			return &Error{Kind: KindInvalid, Err: err}
		}
		size := d.ImageSize
		if st, err := os.Stat(d.Image); err == nil {
			size = uint64(st.Size())
		}
		sector := d.SectorSize
		if sector == 0 {
			sector = 512
		}
		placed, err := layout.Place(size, sector)
		if err != nil {
			return fmt.Errorf("image %s: %w", d.Image, err)
		}
		return f.Image(ctx, placed, d.Image, opts)
	}
	// Right before writing: the disk as it is now.
	t.ResolveDisk()
	if t.DiskErr != nil {
		return Refuse(t.DiskErr)
	}
	if !d.DryRun && !slices.Contains(EraseNames(t.Plan, *t.Disk), t.Confirmed) {
		return Refuse(fmt.Errorf("the data disk was not confirmed: %s (%s) is not the disk named at the review (%q); nothing was erased",
			t.Plan.Disk.Device, t.Disk.Path, t.Confirmed))
	}
	if !d.DryRun {
		if err := ConfirmedIdentity(*t.Disk, t.ConfirmedByID, t.ConfirmedSize); err != nil {
			return Refuse(fmt.Errorf("%s (%s) is not the disk confirmed at the review: %w; nothing was erased", t.Plan.Disk.Device, t.Disk.Path, err))
		}
	}
	return f.Device(ctx, *t.Layout, *t.Disk, opts)
}

// ConfirmedIdentity says why cur is not the disk confirmed with by-id name
// byID and size bytes (each checked when recorded), nil when it is: a
// kernel name (/dev/sdb) may name another disk after a restart or a
// hot-plug, a by-id name and a size do not change with it.
func ConfirmedIdentity(cur disk.BlockDevice, byID string, size uint64) error {
	if byID != "" && cur.ByID != byID {
		by := cur.ByID
		if by == "" {
			by = "none"
		}
		return fmt.Errorf("the confirmed disk was %s, this one's by-id name is %s", byID, by)
	}
	if size != 0 && cur.SizeBytes != size {
		return fmt.Errorf("the confirmed disk had %d bytes, this one has %d", size, cur.SizeBytes)
	}
	return nil
}

// EraseNames are the names a user may type to confirm erasing the target.
func EraseNames(p plan.Plan, target disk.BlockDevice) []string {
	names := []string{p.Disk.Device, target.Path}
	if target.ByID != "" {
		names = append(names, target.ByID)
	}
	return names
}

// EraseDetail describes the disk being erased, for the review: its kernel
// name when the plan names it by id, its model and its size.
func EraseDetail(p plan.Plan, target disk.BlockDevice) string {
	var what []string
	if target.Path != p.Disk.Device {
		what = append(what, target.Path)
	}
	if target.Model != "" {
		what = append(what, target.Model)
	}
	what = append(what, disk.SizeText(target.SizeBytes))
	return strings.Join(what, ", ")
}
