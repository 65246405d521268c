package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/homestaker/homestaker/plan"
)

// TestReconfigureWizardInTmux opens the real binary's reconfigure on a
// rendered flake in a real terminal: the screens start from the host's
// answers, one answer (the graffiti) is changed, the review shows that
// change and the diff of default.nix, and "write the flake only" writes
// the new answers and nothing else of the host's answers changes.
func TestReconfigureWizardInTmux(t *testing.T) {
	h := newReconfHome(t)
	bin := buildBinary(t)
	answersPath := filepath.Join(h.flake, "hosts", "beta", "homestaker.json")
	oldData, _ := os.ReadFile(answersPath)
	s := startTmux(t, []string{"HOME=" + h.home, "XDG_STATE_HOME=" + filepath.Join(h.home, "state"), "HOMESTAKER_SYSTEM_ROOT=" + h.root, "PATH=/usr/bin:/bin"},
		bin+" reconfigure "+h.flake)
	s.answer("What will the node run on?", "Enter")
	scr := s.waitFor("Node name")
	if !strings.Contains(scr, "> beta") {
		t.Errorf("the node name is not prefilled:\n%s", scr)
	}
	s.keys("Enter")
	s.answer("Timezone", "Enter")
	s.answer("Network", "Enter")
	s.answer("Execution client", "Enter")
	s.answer("Consensus client", "Enter")
	s.answer("Run a validator client?", "Enter")
	s.answer("Fee recipient", "Enter")
	scr = s.waitFor("Graffiti")
	if !strings.Contains(scr, "> homestaker on NixOS") {
		t.Errorf("the graffiti is not prefilled:\n%s", scr)
	}
	s.keys("C-u")
	s.typeText("changed in tmux")
	s.waitFor("15 of 32 bytes")
	s.keys("Enter")
	for _, q := range []string{"Validator keys folder", "Keystore password file", "Slashing-protection file", "Run MEV-boost?", "Relays", "Checkpoint sync URL", "Disk for chain data", "Device path", "Filesystem", "SSH keys for root on the node", "Public keys, one per line", "Admin age key", "Age recipients, one per line", "How will the node boot?", "Folder for the flake"} {
		s.answer(q, "Enter")
	}
	scr = s.waitFor("What now?")
	for _, want := range []string{`Graffiti: "homestaker on NixOS" → "changed in tmux"`, "~ hosts/beta/default.nix", "keeps its", "> Write the flake and answers only"} {
		if !strings.Contains(scr, want) {
			t.Errorf("the review does not show %q:\n%s", want, scr)
		}
	}
	if strings.Contains(scr, "ERASE") {
		t.Errorf("the review offers to erase the disk:\n%s", scr)
	}
	if data, _ := os.ReadFile(answersPath); string(data) != string(oldData) {
		t.Fatal("the answers changed before the review was accepted")
	}
	// The diff of default.nix is further down the review: page down to
	// it (a loaded machine may take more than one key's page).
	const diffLine = `+      graffiti = "\"changed in tmux\"";`
	for i := 0; i < 8 && !strings.Contains(s.screen(), diffLine); i++ {
		s.keys("PageDown")
		time.Sleep(300 * time.Millisecond)
	}
	if !strings.Contains(s.screen(), diffLine) {
		for i := 0; i < 8 && !strings.Contains(s.screen(), diffLine); i++ {
			s.keys("PageUp")
			time.Sleep(300 * time.Millisecond)
		}
	}
	s.waitFor(diffLine)
	s.keys("Enter")
	s.waitFor("EXIT=0")

	data, err := os.ReadFile(answersPath)
	if err != nil {
		t.Fatal(err)
	}
	got, err := plan.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := plan.Decode(oldData)
	want.Ethereum.Validator.Graffiti = "changed in tmux"
	if a, b := string(plan.Encode(want)), string(plan.Encode(got)); a != b {
		t.Errorf("the answers after reconfigure:\n%s\nwant only the graffiti changed:\n%s", b, a)
	}
	def, _ := os.ReadFile(filepath.Join(h.flake, "hosts", "beta", "default.nix"))
	if !strings.Contains(string(def), `graffiti = "\"changed in tmux\"";`) {
		t.Errorf("default.nix was not rewritten")
	}
}
