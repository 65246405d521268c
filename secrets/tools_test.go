package secrets

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/homestaker/homestaker/internal/testutil"
)

// sopsBinary finds the sops binary: on PATH, or where `go install` puts it.
func sopsBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("sops"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "sops")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	testutil.Missing(t, "sops is not installed (go install github.com/getsops/sops/v3/cmd/sops@v3.13.3)")
	return ""
}

// toolResult is the outcome of running a real tool.
type toolResult struct {
	stdout, stderr []byte
	err            error
}

// runTool runs name with args in dir and a clean environment: HOME is an
// empty temp dir, so no key of the person running the tests is picked up.
func runTool(t *testing.T, dir string, env []string, stdin []byte, name string, args ...string) toolResult {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"EDITOR=false",
	}, env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return toolResult{out.Bytes(), errb.Bytes(), err}
}

// pythonWithNaCl finds a python3 that can import nacl (Debian's
// python3-nacl lives under /usr/bin/python3, which another python3 on PATH
// may hide).
func pythonWithNaCl(t *testing.T) string {
	t.Helper()
	var candidates []string
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/python3")
	for _, p := range candidates {
		if exec.Command(p, "-c", "import nacl.bindings").Run() == nil {
			return p
		}
	}
	testutil.Missing(t, "python3 with the nacl module (Debian python3-nacl) is not installed")
	return ""
}

// writePrivate writes a test file with mode 0600.
func writePrivate(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
