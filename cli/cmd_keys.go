package cli

import (
	"fmt"
	"strings"

	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/validator"
)

// checkKeys checks the validator's keys the plan names (validator.Check:
// keystores, password, deposit data, slashing history) and adds what it
// finds to res. It reads the user's files, so it runs once per command and
// its Keys go on to the flake step.
func checkKeys(p plan.Plan, cat *plan.Catalogue, res plan.Result) (validator.Keys, plan.Result) {
	keys, kr := validator.Check(p, cat)
	res.Errors = append(res.Errors, kr.Errors...)
	res.Warnings = append(res.Warnings, kr.Warnings...)
	return keys, res
}

// describeKeys is what the review says of the validator's keys.
func describeKeys(p plan.Plan, keys validator.Keys) []string {
	v := p.Ethereum.Validator
	if !v.Enable {
		return nil
	}
	var out []string
	if len(keys.Keystores) == 0 {
		out = append(out, "no keys: the validator client starts without keys and attests nothing until keystoreDir and passwordFile are set")
	} else {
		out = append(out, fmt.Sprintf("%d key(s) from %s, checked with the password in %s; encrypted into secrets.yaml and imported before the validator starts:", len(keys.Keystores), v.KeystoreDir, v.PasswordFile))
		for _, k := range keys.Keystores {
			line := "  " + shortKey(k.Pubkey)
			if d, ok := keys.Deposits[k.Pubkey]; ok {
				line += ": withdrawals to " + d.WithdrawalKind()
			}
			out = append(out, line)
		}
		if keys.Slashing != nil {
			out = append(out, "slashing-protection history from "+v.SlashingProtection+": imported before the first key signs")
		} else {
			out = append(out, "no slashing-protection history: right for keys that never ran elsewhere")
		}
	}
	if v.DoppelgangerOn() {
		out = append(out, "doppelganger protection on: after every start the validator skips two to three epochs (about 15 minutes of attestations) to make sure no other machine runs these keys, which would get both slashed")
	} else {
		out = append(out, "doppelganger protection OFF: if these keys run anywhere else, both machines will be slashed")
	}
	return out
}

func shortKey(k string) string {
	if len(k) < 20 {
		return k
	}
	return k[:12] + "…" + k[len(k)-6:]
}

// keysProblem is the errors of a key check as one message.
func keysProblem(res plan.Result) string {
	lines := make([]string, len(res.Errors))
	for i, e := range res.Errors {
		lines[i] = e.String()
	}
	return strings.Join(lines, "\n")
}
