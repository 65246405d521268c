package steps

import (
	"context"
	"errors"
	"fmt"

	"github.com/homestaker/homestaker/nixinstall"
	"github.com/homestaker/homestaker/report"
)

// NixInstallStep installs the pinned, verified Nix for root (the code of
// `homestaker nix install`) when this machine has no Nix 2.18 or newer.
// install runs it, when asked to (--install-nix), right after the store
// step, so that Nix lands in the store on the data disk. With a new enough
// Nix already here it does nothing.
type NixInstallStep struct {
	// Installer makes the installer (the pinned release for this machine,
	// root "/"); tests give one that installs a tarball they made.
	Installer func() (*nixinstall.Installer, error)
}

func (NixInstallStep) Name() string { return "nix" }

func (NixInstallStep) Title(t *Target) string { return "Install Nix (verified, single-user, for root)" }

func (n NixInstallStep) Describe(t *Target) []string {
	if t.NixErr == nil && t.Nix.Path != "" {
		return []string{fmt.Sprintf("Nix %s is here (%s): nothing to install", t.Nix.Version, t.Nix.Path)}
	}
	in, err := n.installer()
	if err != nil {
		return []string{err.Error()}
	}
	return append([]string{"no Nix 2.18 or newer here: install it into the store on the data disk, as `homestaker nix install` does:"}, in.Describe()...)
}

func (n NixInstallStep) installer() (*nixinstall.Installer, error) {
	if n.Installer == nil {
		return nil, errors.New("no Nix installer was given")
	}
	return n.Installer()
}

func (n NixInstallStep) Apply(ctx context.Context, t *Target, s *Sink) error {
	if t.NixErr == nil && t.Nix.Path != "" {
		s.Notef("Nix %s is here (%s): nothing to install.", t.Nix.Version, t.Nix.Path)
		return nil
	}
	in, err := n.installer()
	if err != nil {
		return err
	}
	if err := in.Preflight(); err != nil {
		return Refuse(err)
	}
	phase := ""
	in.Progress = func(p nixinstall.Progress) {
		if p.Phase != phase {
			phase = p.Phase
			s.Notef("nix install: %s", p.Phase)
		}
		if p.Total > 0 {
			s.Report(report.Event{Message: "nix install: " + p.Phase, Done: p.Done, Total: p.Total})
		}
	}
	res, err := in.Install(ctx)
	var ce *nixinstall.ChecksumError
	if errors.As(err, &ce) {
		return Refuse(err)
	}
	if err != nil {
		return err
	}
	s.Notef("Nix %s is installed: %s (%d store paths), in root's profile %s.", in.Release.Version, res.NixPath, res.StorePaths, res.Profile)
	t.ResolveNix(ctx)
	if t.NixErr != nil {
		return fmt.Errorf("Nix was installed, but homestaker does not find it: %w", t.NixErr)
	}
	return nil
}

// Verify: a Nix new enough is here (on the data disk's store, which the
// store step before it mounted again).
func (NixInstallStep) Verify(ctx context.Context, t *Target) error {
	t.ResolveNix(ctx)
	return t.NixErr
}
