package cli

import (
	"strings"
	"testing"

	"github.com/homestaker/homestaker/plan"
)

// TestReviewOfAPi: the review of a Pi prepared on another machine says how
// the Pi's 8 GiB divide, and how the card is written.
func TestReviewOfAPi(t *testing.T) {
	cat := plan.MustCatalogue()
	p := plan.Plan{Host: plan.Host{Name: "pi", Board: plan.BoardRPi4},
		Ethereum: plan.Ethereum{Network: plan.Hoodi, Execution: "reth", Consensus: "nimbus"}}.Defaults(cat)
	got := ramBudget(p, cat, t.TempDir())
	for _, want := range []string{"8.0 GiB (the most a Raspberry Pi 4 has)", "initrd ~1.0 GiB (estimate", "leaving ~6.0 GiB for the clients", "Reth 8 GiB + Nimbus 4 GiB"} {
		if !strings.Contains(got, want) {
			t.Errorf("RAM line lacks %q: %s", want, got)
		}
	}
	env, _, _ := testEnv(map[string]string{"HOME": "/home/staker"})
	if got := sdBoot(env, p); !strings.Contains(got, "homestaker flash --image /home/staker/.cache/homestaker/images/pi-sd.img") {
		t.Errorf("boot line: %s", got)
	}
	p.Host.MemoryBytes = 4 << 30
	if got := ramBudget(p, cat, t.TempDir()); !strings.HasPrefix(got, "4.0 GiB (detected)") || !strings.HasSuffix(got, "too little") {
		t.Errorf("a detected 4 GiB Pi: %s", got)
	}
}
