package boot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/homestaker/homestaker/nixbuild"
	"github.com/homestaker/homestaker/plan"
)

// KexecImage is the kernel, initrd and command line a kexec boots.
type KexecImage struct {
	Kernel  string
	Initrd  string
	Cmdline string
}

// FlakeKexecImage is a host's built kexec tree, found through its build
// manifest.
type FlakeKexecImage struct {
	KexecImage
	Target   nixbuild.BuildTarget
	Manifest nixbuild.BuildManifest
	// AnswersPath is the host's homestaker.json.
	AnswersPath string
	// KnownHostsPath is the host's known_hosts file ("" when the flake has
	// none).
	KnownHostsPath string
}

// FindKexecImage finds the kexec tree `homestaker build` built for host in
// the flake at dir: the build manifest (hosts/<host>/build-manifest.json)
// names the kernel, the initrd and the kexec-boot script; the files are
// checked against the sizes and SHA-256 sums the manifest recorded. The
// command line is read from the kexec-boot script (the same one nixpkgs'
// script passes to kexec), see ParseKexecBootCmdline.
func FindKexecImage(ctx context.Context, dir, host string) (FlakeKexecImage, error) {
	t, err := nixbuild.ReadBuildTarget(dir, host)
	if err != nil {
		return FlakeKexecImage{}, err
	}
	out := FlakeKexecImage{Target: t, AnswersPath: filepath.Join(t.FlakeDir, "hosts", t.Host, "homestaker.json")}
	if t.Format == plan.FormatISO || t.Format == plan.FormatSD {
		medium := "an ISO (write it to a USB stick"
		if t.Format == plan.FormatSD {
			medium = "its SD card (write the card"
		}
		return out, fmt.Errorf("host %s boots from %s with 'homestaker flash' instead; host.format is %q in %s), or set host.format to %q and build again",
			t.Host, medium, t.Format, out.AnswersPath, plan.FormatKexec)
	}
	mpath := nixbuild.BuildManifestPath(t)
	m, err := nixbuild.ReadBuildManifest(mpath)
	if errors.Is(err, fs.ErrNotExist) {
		return out, fmt.Errorf("host %s has not been built (no %s): run 'homestaker build %s --host %s' first",
			t.Host, mpath, dir, t.Host)
	}
	if err != nil {
		return out, err
	}
	if m.Format != plan.FormatKexec {
		return out, fmt.Errorf("%s records a %q build, not a kexec tree: build the host again", mpath, m.Format)
	}
	out.Manifest = m
	for _, need := range []struct {
		role nixbuild.ArtifactRole
		dst  *string
	}{{nixbuild.RoleKernel, &out.Kernel}, {nixbuild.RoleInitrd, &out.Initrd}} {
		a, ok := m.Artifact(need.role)
		if !ok {
			return out, fmt.Errorf("%s lists no %s: build the host again", mpath, need.role)
		}
		if err := nixbuild.VerifyArtifact(ctx, a, t); err != nil {
			return out, err
		}
		*need.dst = a.Path
	}
	script, ok := m.Artifact(nixbuild.RoleKexecScript)
	if !ok {
		return out, fmt.Errorf("%s lists no kexec-boot script, which holds the command line: build the host again, or give --kernel, --initrd and --cmdline", mpath)
	}
	text, err := os.ReadFile(script.Path)
	if err != nil {
		return out, fmt.Errorf("read the kexec-boot script: %w; build the host again", err)
	}
	out.Cmdline, err = ParseKexecBootCmdline(string(text))
	if err != nil {
		return out, fmt.Errorf("%s: %w", script.Path, err)
	}
	kh := filepath.Join(t.FlakeDir, "hosts", t.Host, "known_hosts")
	if _, err := os.Stat(kh); err == nil {
		out.KnownHostsPath = kh
	}
	return out, nil
}

// ParseKexecBootCmdline reads the kernel command line from a kexec-boot
// script: the argument of its kexec call's --command-line (or --append),
// quoted as a shell would (double quotes with \" \\ \$ \` escapes, single
// quotes, backslash-newline continuations). A command line built from
// shell variables or command substitutions cannot be read without running
// the script, and is refused.
func ParseKexecBootCmdline(script string) (string, error) {
	script = strings.ReplaceAll(script, "\\\n", " ")
	var found []string
	for _, line := range strings.Split(script, "\n") {
		words, err := shellWords(line)
		if err != nil {
			continue // a line we cannot split is not the kexec call
		}
		if len(words) == 0 || words[0].text != "kexec" {
			continue
		}
		for i, w := range words {
			for _, opt := range []string{"--command-line", "--append"} {
				switch {
				case w.text == opt && i+1 < len(words):
					found = append(found, words[i+1].check())
				case strings.HasPrefix(w.text, opt+"="):
					w.text = strings.TrimPrefix(w.text, opt+"=")
					found = append(found, w.check())
				}
			}
		}
	}
	switch len(found) {
	case 0:
		return "", errors.New("no kexec call with --command-line in the kexec-boot script; give the command line with --cmdline")
	case 1:
	default:
		return "", errors.New("the kexec-boot script has several --command-line arguments; give the command line with --cmdline")
	}
	if strings.HasPrefix(found[0], "\x00") {
		return "", errors.New("the kexec-boot script builds the command line from shell variables; give it with --cmdline")
	}
	cmdline := strings.Join(strings.Fields(found[0]), " ")
	if !strings.Contains(" "+cmdline, " init=") {
		return "", fmt.Errorf("the command line %q in the kexec-boot script has no init=: this is not a NixOS kexec tree", cmdline)
	}
	return cmdline, nil
}

type shellWord struct {
	text string
	// expands is set when an unquoted or double-quoted $ or ` is in the word.
	expands bool
}

// check returns the word, or a NUL-prefixed marker when it expands.
func (w shellWord) check() string {
	if w.expands {
		return "\x00" + w.text
	}
	return w.text
}

// shellWords splits a line the way a POSIX shell splits words, without
// expanding anything. A comment ends the line.
func shellWords(line string) ([]shellWord, error) {
	var words []shellWord
	var cur strings.Builder
	in := false
	expands := false
	flush := func() {
		if in {
			words = append(words, shellWord{cur.String(), expands})
		}
		cur.Reset()
		in, expands = false, false
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			flush()
		case c == '#' && !in:
			flush()
			return words, nil
		case c == '\\':
			in = true
			if i+1 < len(line) {
				i++
				cur.WriteByte(line[i])
			}
		case c == '\'':
			in = true
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			in = true
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				switch line[i] {
				case '\\':
					if i+1 < len(line) && strings.IndexByte("\"\\$`", line[i+1]) >= 0 {
						i++
					}
				case '$', '`':
					expands = true
				}
				cur.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, errors.New("unterminated double quote")
			}
		case c == '$' || c == '`':
			in, expands = true, true
			cur.WriteByte(c)
		case c == ';' || c == '&' || c == '|':
			flush()
		default:
			in = true
			cur.WriteByte(c)
		}
	}
	flush()
	return words, nil
}
