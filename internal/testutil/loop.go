package testutil

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// AttachLoop attaches a loop device to the file backing (with extra losetup
// options such as "--sector-size", "4096"), detaches it when the test ends,
// and returns its path. It needs root and losetup. Attaching is retried a
// few times: another process attaching a loop device at the same moment can
// take the free device losetup found.
func AttachLoop(t testing.TB, backing string, extra ...string) string {
	t.Helper()
	RequireRoot(t)
	RequireTool(t, "losetup")
	args := append(append([]string{"--find", "--show"}, extra...), backing)
	var out []byte
	var err error
	for try := 0; try < 5; try++ {
		if out, err = exec.Command("losetup", args...).CombinedOutput(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		Missing(t, "a loop device: losetup "+strings.Join(args, " ")+": "+strings.TrimSpace(string(out)))
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		var out []byte
		var err error
		for try := 0; try < 5; try++ {
			if out, err = exec.Command("losetup", "-d", dev).CombinedOutput(); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("losetup -d %s: %v: %s", dev, err, out)
	})
	return dev
}
