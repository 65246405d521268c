package ui

import (
	"fmt"

	"github.com/homestaker/homestaker/plan"
)

// pickClients is "pick for me" for whichever clients were left to it: a
// pair that fits the node's RAM (both clients together, and each one's
// minimum), favouring minority clients, at random among those. When no
// pair fits it picks the lightest pair and returns a warning saying so.
// The node's RAM is the detected one when the wizard runs on the node, the
// most a Raspberry Pi 4 has for a Pi, and unknown (nothing is ruled out)
// otherwise.
func (w *Wizard) pickClients() (warning string) {
	pickEL, pickCL := w.A.Execution == pickForMe, w.A.Consensus == pickForMe
	if !pickEL && !pickCL {
		return ""
	}
	els := w.pickCandidates(plan.Execution, w.A.Execution, pickEL)
	cls := w.pickCandidates(plan.Consensus, w.A.Consensus, pickCL)
	ram, assumed := w.Plan().NodeMemory()
	have := float64(ram) / (1 << 30)
	type pair struct{ el, cl plan.Client }
	var fit, lightest []pair
	least := -1
	for _, e := range els {
		for _, c := range cls {
			need := e.RAMGiB + c.RAMGiB
			if ram == 0 || (float64(need) <= have && float64(max(e.MinRAMGiB, c.MinRAMGiB)) <= have) {
				fit = append(fit, pair{e, c})
			}
			switch {
			case least < 0 || need < least:
				least, lightest = need, []pair{{e, c}}
			case need == least:
				lightest = append(lightest, pair{e, c})
			}
		}
	}
	pool := fit
	if len(pool) == 0 {
		pool = lightest
	}
	var minority []pair
	for _, p := range pool {
		if !(pickEL && p.el.Supermajority) && !(pickCL && p.cl.Supermajority) {
			minority = append(minority, p)
		}
	}
	if len(minority) > 0 {
		pool = minority
	}
	if len(pool) == 0 {
		return ""
	}
	p := pool[w.rand(len(pool))]
	w.Picked = ""
	if pickEL {
		w.A.Execution = p.el.Name
		w.Picked = "execution client " + p.el.Name
	}
	if pickCL {
		w.A.Consensus = p.cl.Name
		if w.Picked != "" {
			w.Picked += ", "
		}
		w.Picked += "consensus client " + p.cl.Name
	}
	if len(fit) > 0 {
		return ""
	}
	of := fmt.Sprintf("this machine's %s of RAM", gibText(ram))
	if assumed {
		of = fmt.Sprintf("the %s of RAM a Raspberry Pi 4 has at most", gibText(ram))
	}
	return fmt.Sprintf("! No pair of clients fits %s: picked the lightest, %s (~%d GiB) and %s (~%d GiB), about %d GiB together, so the node will run short of memory.",
		of, p.el.Title, p.el.RAMGiB, p.cl.Title, p.cl.RAMGiB, p.el.RAMGiB+p.cl.RAMGiB)
}

// pickCandidates are the clients of a kind "pick for me" may choose (all
// that run on the architecture, with a validator module when a validator
// runs), or the one the user chose.
func (w *Wizard) pickCandidates(kind plan.Kind, chosen string, pick bool) []plan.Client {
	if !pick {
		if c, ok := w.Cat.Client(chosen); ok {
			return []plan.Client{c}
		}
		return nil
	}
	var out []plan.Client
	for _, c := range w.Cat.ClientsFor(kind, w.A.arch()) {
		if kind == plan.Consensus && w.A.Validator && c.ValidatorModule == "" {
			continue
		}
		out = append(out, c)
	}
	return out
}
