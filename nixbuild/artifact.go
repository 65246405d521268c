package nixbuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/homestaker/homestaker/plan"
)

// ArtifactRole says what a built file is for.
type ArtifactRole string

// Roles of the files of a kexec tree or ISO build.
const (
	RoleKernel      ArtifactRole = "kernel"       // bzImage (x86_64) or Image (aarch64)
	RoleInitrd      ArtifactRole = "initrd"       // initrd.zst: the whole system
	RoleKexecScript ArtifactRole = "kexec-script" // kexec-boot
	RoleIPXE        ArtifactRole = "ipxe"         // netboot.ipxe, variables.ipxe
	RoleISO         ArtifactRole = "iso"          // iso/*.iso
	RoleSDImage     ArtifactRole = "sd-image"     // the SD-card image assembled from an sd build's parts
	RoleLoader      ArtifactRole = "loader"       // the boot loader's files for the data disk's boot entry (boot-loader/…)
)

// NewArtifact describes the file at path with its size and SHA-256.
func NewArtifact(ctx context.Context, role ArtifactRole, name, path string) (Artifact, error) {
	size, sum, err := hashFile(ctx, path)
	if err != nil {
		return Artifact{}, err
	}
	return Artifact{Role: role, Name: name, Path: path, Size: size, SHA256: sum}, nil
}

// Artifact is one file a build produced.
type Artifact struct {
	Role ArtifactRole `json:"role"`
	// Name is the file's path inside the build output ("bzImage",
	// "iso/nixos.iso").
	Name string `json:"name"`
	// Path is the file through the build output (/nix/store/…/bzImage).
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// artifactRole tells the role of a top-level file of a kexec tree.
func artifactRole(name string) (ArtifactRole, bool) {
	switch {
	case name == "bzImage" || name == "Image":
		return RoleKernel, true
	case strings.HasPrefix(name, "initrd"):
		return RoleInitrd, true
	case name == "kexec-boot":
		return RoleKexecScript, true
	case strings.HasSuffix(name, ".ipxe"):
		return RoleIPXE, true
	}
	return "", false
}

// CollectArtifacts lists the files of a finished build at outDir (a kexec
// tree, or an ISO build with the image under iso/) with their sizes and
// SHA-256 sums. The files of a kexec tree are links into other store paths;
// they are followed. A kexec tree without a kernel or initrd, or an ISO
// build without an .iso, is an error.
func CollectArtifacts(ctx context.Context, outDir string, format plan.Format) ([]Artifact, error) {
	var found []Artifact
	switch format {
	case plan.FormatISO:
		dir := filepath.Join(outDir, "iso")
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("read the ISO build %s: %w", outDir, err)
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".iso") {
				found = append(found, Artifact{Role: RoleISO, Name: "iso/" + e.Name(), Path: filepath.Join(dir, e.Name())})
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("the ISO build %s has no .iso file under iso/", outDir)
		}
	default:
		entries, err := os.ReadDir(outDir)
		if err != nil {
			return nil, fmt.Errorf("read the kexec tree %s: %w", outDir, err)
		}
		for _, e := range entries {
			if role, ok := artifactRole(e.Name()); ok {
				found = append(found, Artifact{Role: role, Name: e.Name(), Path: filepath.Join(outDir, e.Name())})
			}
		}
		for _, need := range []struct {
			role ArtifactRole
			what string
		}{{RoleKernel, "kernel (bzImage or Image)"}, {RoleInitrd, "initrd"}} {
			if !slices.ContainsFunc(found, func(a Artifact) bool { return a.Role == need.role }) {
				return nil, fmt.Errorf("the kexec tree %s has no %s; is this a homestaker flake's kexecTree?", outDir, need.what)
			}
		}
	}
	for i := range found {
		size, sum, err := hashFile(ctx, found[i].Path)
		if err != nil {
			return nil, err
		}
		found[i].Size, found[i].SHA256 = size, sum
	}
	return found, nil
}

// hashFile streams a file through SHA-256, stopping when ctx ends.
func hashFile(ctx context.Context, path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", fmt.Errorf("open artifact: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, "", fmt.Errorf("stat artifact: %w", err)
	}
	if !info.Mode().IsRegular() {
		return 0, "", fmt.Errorf("artifact %s is not a regular file", path)
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return 0, "", fmt.Errorf("hash %s: %w", path, err)
		}
		m, err := f.Read(buf)
		h.Write(buf[:m])
		n += int64(m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, "", fmt.Errorf("hash %s: %w", path, err)
		}
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// BuildManifestVersion is the format version of build-manifest.json.
const BuildManifestVersion = 1

// BuildManifest records a finished build: what was built and the files,
// with checksums. The kexec and flash steps read it.
type BuildManifest struct {
	Version   int         `json:"version"`
	Host      string      `json:"host"`
	Format    plan.Format `json:"format"`
	Arch      plan.Arch   `json:"arch,omitempty"`
	Attribute string      `json:"attribute"`
	DrvPath   string      `json:"drvPath"`
	OutPath   string      `json:"outPath"`
	// OutLink is the link in the flake folder that keeps OutPath alive.
	OutLink    string     `json:"outLink,omitempty"`
	NixVersion string     `json:"nixVersion,omitempty"`
	BuiltAt    time.Time  `json:"builtAt"`
	Artifacts  []Artifact `json:"artifacts"`
}

// Artifact returns the first artifact with the given role.
func (m BuildManifest) Artifact(role ArtifactRole) (Artifact, bool) {
	for _, a := range m.Artifacts {
		if a.Role == role {
			return a, true
		}
	}
	return Artifact{}, false
}

// BuildManifestPath is where a host's build manifest lives:
// hosts/<host>/build-manifest.json in the flake folder.
func BuildManifestPath(t BuildTarget) string {
	return filepath.Join(t.FlakeDir, "hosts", t.Host, "build-manifest.json")
}

// WriteBuildManifest writes m to path atomically: a reader sees the old
// manifest or the new one, never half of one.
func WriteBuildManifest(path string, m BuildManifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode build manifest: %w", err)
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".build-manifest-*.json")
	if err != nil {
		return fmt.Errorf("write build manifest in %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write build manifest %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable where the filesystem allows
		d.Close()
	}
	return nil
}

// ReadBuildManifest reads a manifest WriteBuildManifest wrote.
func ReadBuildManifest(path string) (BuildManifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return BuildManifest{}, fmt.Errorf("read build manifest: %w", err)
	}
	var m BuildManifest
	if err := json.Unmarshal(data, &m); err != nil {
		return BuildManifest{}, fmt.Errorf("read build manifest %s: %w; build again to rewrite it", path, err)
	}
	if m.Version != BuildManifestVersion {
		return BuildManifest{}, fmt.Errorf("build manifest %s has version %d, this homestaker reads %d; build again",
			path, m.Version, BuildManifestVersion)
	}
	return m, nil
}

// NewBuildManifest describes a finished build with its artifacts.
func NewBuildManifest(res BuildResult, artifacts []Artifact, nixVersion string) BuildManifest {
	return BuildManifest{
		Version:    BuildManifestVersion,
		Host:       res.Target.Host,
		Format:     res.Target.Format,
		Arch:       res.Target.Arch,
		Attribute:  res.Target.Attribute(),
		DrvPath:    res.DrvPath,
		OutPath:    res.OutPath,
		OutLink:    res.OutLink,
		NixVersion: nixVersion,
		BuiltAt:    res.Finished.UTC().Truncate(time.Second),
		Artifacts:  artifacts,
	}
}

// VerifyArtifact checks that a built file is still there and unchanged.
func VerifyArtifact(ctx context.Context, a Artifact, t BuildTarget) error {
	size, sum, err := hashFile(ctx, a.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("the built %s %s is gone (garbage-collected?): run 'homestaker build %s --host %s' again",
				a.Role, a.Path, t.FlakeDir, t.Host)
		}
		return err
	}
	if size != a.Size || sum != a.SHA256 {
		return fmt.Errorf("the built %s %s changed since the build (size %d, was %d; or its SHA-256 differs): build the host again",
			a.Role, a.Path, size, a.Size)
	}
	return nil
}
