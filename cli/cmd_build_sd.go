package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/homestaker/homestaker/media"
	"github.com/homestaker/homestaker/nixbuild"
)

// sdImagePath is where `homestaker build` puts an sd host's card image
// unless told otherwise: the cache folder, not the flake folder, whose
// every file Nix copies into the store when it is not a git checkout.
func sdImagePath(env *cliEnv, host string) (string, error) {
	cache := env.getenv("XDG_CACHE_HOME")
	if cache == "" {
		home := env.getenv("HOME")
		if home == "" {
			return "", fmt.Errorf("neither XDG_CACHE_HOME nor HOME is set: give the image's path with --sd-image FILE")
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "homestaker", "images", host+"-sd.img"), nil
}

// assembleSDCard makes the SD-card image from the parts an sd build
// produced (media.Assemble: the same code as `homestaker image sd`) and
// returns it as the build's sd-image artifact.
func assembleSDCard(ctx context.Context, env *cliEnv, partsDir, out string, t nixbuild.BuildTarget) (nixbuild.Artifact, error) {
	if out == "" {
		p, err := sdImagePath(env, t.Host)
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
	fmt.Fprintf(env.stderr, "Assembled the SD card %s (%s, %d files) in %s.\n",
		img.Path, nixbuild.FormatBytes(uint64(img.Size)), len(img.Files), time.Since(start).Round(time.Millisecond))
	return nixbuild.Artifact{Role: nixbuild.RoleSDImage, Name: filepath.Base(img.Path), Path: img.Path, Size: img.Size, SHA256: img.SHA256}, nil
}
