package ui

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/plan"
	"github.com/homestaker/homestaker/secrets"
	"github.com/homestaker/homestaker/validator"
)

// Kind is the kind of a question.
type Kind int

// Kinds of question.
const (
	Select Kind = iota
	MultiSelect
	Input
	Text // several lines, one entry per line
	Confirm
	Note // text to read, nothing to answer
)

// Option is one choice of a select.
type Option struct {
	Label string
	Value string
}

// Question is one field of a screen. Both front ends (the full-screen
// interface and the line prompts) are built from it, so they ask the same
// things and judge answers with the same functions.
type Question struct {
	Title string
	// Help is a short line under the title.
	Help string
	Kind Kind
	// Options of a Select or MultiSelect.
	Options []Option
	// Exactly one of these holds the answer, by kind.
	Str   *string
	Bool  *bool
	Multi *[]string
	// Validate judges a typed or chosen value; nil accepts anything.
	Validate func(string) error
	// Feedback, when set, is a live line under an input (checksum,
	// byte counter, warnings for the highlighted choice).
	Feedback func(string) string
}

// Group is questions shown together; Show hides the group when it returns
// false (for example the fee recipient when there is no validator).
type Group struct {
	Questions []Question
	Show      func() bool
}

func (g Group) visible() bool { return g.Show == nil || g.Show() }

// Screen is one step of the wizard.
type Screen struct {
	ID    string
	Title string
	// Intro is text shown above the questions.
	Intro  string
	Groups []Group
	// Check judges the screen's answers together once they are given
	// (for example teku with a validator); it names what to change.
	Check func() error
	// Done runs after the screen is accepted (for example "pick for me"
	// becomes a concrete client).
	Done func()
}

// Wizard holds the answers and builds the screens from them.
type Wizard struct {
	A   Answers
	HW  Hardware
	Cat *plan.Catalogue
	// PrivateDir is where keys are kept (shown to the user).
	PrivateDir string
	// Rand returns an int in [0, n) for "pick for me".
	Rand func(n int) int
	// Picked says which clients "pick for me" chose, for the next screen,
	// and PickWarning why they do not fit the node's RAM, if they do not.
	Picked, PickWarning string
}

// Screen IDs, in order.
var screenIDs = []string{"welcome", "hardware", "clients", "validator", "disk", "keys", "output"}

// Screens returns the wizard's question screens, built from the current answers.
func (w *Wizard) Screens() []Screen {
	return []Screen{w.welcome(), w.hardware(), w.clients(), w.validator(), w.disk(), w.keys(), w.output()}
}

// Plan is the plan the answers describe.
func (w *Wizard) Plan() plan.Plan { return w.A.Plan(w.HW, w.Cat) }

func (w *Wizard) welcome() Screen {
	intro := `homestaker sets up an Ethereum staking node that runs NixOS from RAM.
Only chain data and secrets are kept on a disk.

It asks a few questions, shows you everything it will do, and changes
nothing until you confirm. You need:
  - a disk for chain data (it will be erased),
  - an SSH public key to log in to the node.
Quitting before the end writes nothing.`
	return Screen{ID: "welcome", Title: "Welcome", Intro: intro}
}

func (w *Wizard) hardware() Screen {
	ram := "RAM: unknown"
	if w.HW.MemoryBytes > 0 {
		ram = fmt.Sprintf("This machine: %s, %s RAM", w.HW.Arch, gibText(w.HW.MemoryBytes))
		if w.HW.CPUs > 0 {
			ram += fmt.Sprintf(", %d CPUs", w.HW.CPUs)
		}
		if w.HW.Board == plan.BoardRPi4 {
			ram += ", Raspberry Pi 4"
		}
	}
	return Screen{
		ID:    "hardware",
		Title: "Hardware and network",
		Intro: ram,
		Groups: []Group{{Questions: []Question{
			{
				Title: "What will the node run on?",
				Kind:  Select,
				Options: []Option{
					{"x86_64 PC or server", hwPC},
					{"Raspberry Pi 4 (aarch64, testnets)", hwRPi4},
				},
				Str:      &w.A.Hardware,
				Feedback: w.ramFeedback,
			},
			{
				Title:    "Node name",
				Help:     "Lower-case letters, digits, hyphens; also its folder in the flake.",
				Kind:     Input,
				Str:      &w.A.HostName,
				Validate: plan.ValidateHostname,
			},
			{
				Title:    "Timezone",
				Kind:     Input,
				Str:      &w.A.Timezone,
				Validate: plan.ValidateTimezone,
			},
			// The network comes before the clients: their disk figures
			// are the network's.
			{Title: "Network", Kind: Select, Options: w.networkOptions(), Str: &w.A.Network},
		}}},
		Done: func() {
			// Clients and MEV-boost depend on the architecture: keep the
			// answers only where they still run.
			arch := w.A.arch()
			if c, ok := w.Cat.Client(w.A.Execution); !ok || !c.RunsOn(arch) {
				w.A.Execution = recommendedFor(w.Cat, plan.Execution, arch, w.A.board())
			}
			if c, ok := w.Cat.Client(w.A.Consensus); !ok || !c.RunsOn(arch) {
				w.A.Consensus = recommendedFor(w.Cat, plan.Consensus, arch, w.A.board())
			}
			if !w.Cat.MevBoostRunsOn(arch) {
				w.A.MevBoost = false
			}
			w.A.Format = formatFor(w.A.Format, w.A.board())
			w.followNetwork()
		},
	}
}

// followNetwork sets the checkpoint and relays for the network unless the
// user typed their own for it.
func (w *Wizard) followNetwork() {
	if !w.knownCheckpoint(w.A.CheckpointURL, w.A.Network) {
		if w.isAnyNetworkCheckpoint(w.A.CheckpointURL) || w.A.CheckpointURL == "" {
			w.A.CheckpointURL = firstCheckpoint(w.Cat, w.A.Network)
		}
	}
	all := networkRelays(w.Cat, w.A.Network)
	var keep []string
	for _, r := range w.A.Relays {
		for _, x := range all {
			if r == x {
				keep = append(keep, r)
			}
		}
	}
	if len(keep) == 0 {
		keep = all
	}
	w.A.Relays = keep
}

// ramFeedback warns when the machine's RAM is below what the network needs.
func (w *Wizard) ramFeedback(choice string) string {
	if w.HW.MemoryBytes == 0 {
		return ""
	}
	a := w.A
	a.Hardware = choice
	if !a.matchesHardware(w.HW) {
		return "This machine is not that hardware: the node is prepared for another one."
	}
	mainnet := w.Cat.Networks[plan.Mainnet]
	have := float64(w.HW.MemoryBytes) / (1 << 30)
	if have < float64(mainnet.MinRAMGiB) {
		return fmt.Sprintf("! %.0f GiB of RAM is below the %d GiB mainnet needs: use a testnet.", have, mainnet.MinRAMGiB)
	}
	if choice == hwRPi4 {
		return "! A Raspberry Pi 4 has at most 8 GiB: testnets or experiments only."
	}
	return ""
}

func (w *Wizard) clientOptions(kind plan.Kind) []Option {
	opts := []Option{{"Pick for me (favours minority clients)", pickForMe}}
	if w.A.board() == plan.BoardRPi4 {
		opts[0].Label = "Pick for me (the lightest clients, for a Pi's RAM)"
	}
	for _, c := range w.Cat.ClientsFor(kind, w.A.arch()) {
		net := plan.Network(w.A.Network)
		label := fmt.Sprintf("%-10s ~%s disk, %d GiB RAM (%s)", c.Title, diskText(c.DiskFor(net)), c.RAMGiB, w.Cat.DiskAsOf(c, net))
		if c.Supermajority {
			label += " !"
		}
		opts = append(opts, Option{label, c.Name})
	}
	return opts
}

func diskText(gib int) string {
	if gib >= 1024 {
		return fmt.Sprintf("%.1f TiB", float64(gib)/1024)
	}
	return fmt.Sprintf("%d GiB", gib)
}

func (w *Wizard) networkOptions() []Option {
	var opts []Option
	for _, n := range w.Cat.NetworkNames() {
		info := w.Cat.Networks[n]
		opts = append(opts, Option{fmt.Sprintf("%-8s %s", n, info.Title), string(n)})
	}
	return opts
}

// clientFeedback explains the highlighted client: supermajority and RAM warnings.
func (w *Wizard) clientFeedback(name string) string {
	if name == pickForMe {
		if w.A.board() == plan.BoardRPi4 {
			return "The lightest clients, for a Pi's RAM (at most 8 GiB), favouring minority clients."
		}
		return "A random minority client, for diversity, of a pair that fits the node's RAM."
	}
	c, ok := w.Cat.Client(name)
	if !ok {
		return ""
	}
	var notes []string
	if c.Supermajority {
		notes = append(notes, fmt.Sprintf("! %s is a supermajority client: a bug in it could cost you your stake; a minority client is safer.", c.Title))
	}
	if c.MinRAMGiB > 0 && w.HW.MemoryBytes > 0 && w.A.matchesHardware(w.HW) && float64(w.HW.MemoryBytes)/(1<<30) < float64(c.MinRAMGiB) {
		notes = append(notes, fmt.Sprintf("! %s needs at least %d GiB of RAM; this machine has %s.", c.Title, c.MinRAMGiB, gibText(w.HW.MemoryBytes)))
	}
	if c.Kind == plan.Consensus && c.ValidatorModule == "" {
		notes = append(notes, c.Title+" has no validator client in ethereum.nix: run it without a validator.")
	}
	return strings.Join(notes, " ")
}

func (w *Wizard) clients() Screen {
	intro := "Only clients that run on " + string(w.A.arch()) + " are listed; disk figures are for " + w.A.Network + ".\n! = supermajority client."
	if w.A.Hardware == hwRPi4 {
		intro += "\nA Raspberry Pi 4 is for testnets: mainnet needs far more RAM."
	}
	return Screen{
		ID:    "clients",
		Title: "Clients",
		Intro: intro,
		Groups: []Group{{Questions: []Question{
			{Title: "Execution client", Kind: Select, Options: w.clientOptions(plan.Execution), Str: &w.A.Execution, Feedback: w.clientFeedback},
			{Title: "Consensus client", Kind: Select, Options: w.clientOptions(plan.Consensus), Str: &w.A.Consensus, Feedback: w.clientFeedback},
		}}},
		Done: func() {
			w.Picked, w.PickWarning = "", ""
			w.PickWarning = w.pickClients()
		},
	}
}

func (w *Wizard) rand(n int) int {
	if w.Rand == nil {
		return 0
	}
	return w.Rand(n)
}

func (w *Wizard) knownCheckpoint(u, network string) bool {
	for _, x := range w.Cat.Networks[plan.Network(network)].CheckpointSyncURLs {
		if u == x {
			return true
		}
	}
	return false
}

func (w *Wizard) isAnyNetworkCheckpoint(u string) bool {
	for n := range w.Cat.Networks {
		if w.knownCheckpoint(u, string(n)) {
			return true
		}
	}
	return false
}

// feeFeedback gives live EIP-55 feedback on a fee recipient being typed.
func feeFeedback(s string) string {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "The address that receives priority fees and MEV (0x + 40 hex digits)."
	case !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X"):
		return "Starts with 0x."
	case len(s) < 42:
		return fmt.Sprintf("%d of 40 hex digits.", len(s)-2)
	}
	if err := plan.ValidateFeeRecipient(s); err != nil {
		return "✗ " + err.Error()
	}
	sum, _ := plan.ChecksumAddress(s)
	if sum == s {
		return "✓ EIP-55 checksum is correct."
	}
	return "✓ Valid; with checksum: " + sum
}

// graffitiFeedback counts the graffiti's bytes (a block holds 32).
func graffitiFeedback(s string) string {
	n := len(s)
	msg := fmt.Sprintf("%d of 32 bytes", n)
	if c := utf8.RuneCountInString(s); c != n {
		msg += fmt.Sprintf(" (%d characters)", c)
	}
	if n > 32 {
		msg = "✗ " + msg
	}
	return msg
}

func (w *Wizard) validator() Screen {
	mev := w.Cat.MevBoostRunsOn(w.A.arch())
	intro := ""
	if w.Picked != "" {
		intro = "Picked for you: " + w.Picked + ".\n"
	}
	if w.PickWarning != "" {
		intro += w.PickWarning + "\n"
	}
	if !mev {
		intro += "MEV-boost is not built for " + string(w.A.arch()) + ", so it is not offered."
	}
	var relayOpts []Option
	for _, r := range w.Cat.Networks[plan.Network(w.A.Network)].Relays {
		relayOpts = append(relayOpts, Option{r.Name + " (" + relayHost(r.URL) + ")", r.URL})
	}
	groups := []Group{
		{Questions: []Question{{
			Title: "Run a validator client?",
			Help:  "Its keys come from the deposit tool's validator_keys folder.",
			Kind:  Confirm, Bool: &w.A.Validator,
		}}},
		{Show: func() bool { return w.A.Validator }, Questions: []Question{
			{Title: "Fee recipient", Kind: Input, Str: &w.A.FeeRecipient, Validate: plan.ValidateFeeRecipient, Feedback: feeFeedback},
			{Title: "Graffiti", Kind: Input, Str: &w.A.Graffiti, Validate: plan.ValidateGraffiti, Feedback: graffitiFeedback},
		}},
		{Show: func() bool { return w.A.Validator }, Questions: []Question{
			{Title: "Validator keys folder", Help: "validator_keys from the deposit tool; empty: import keys later.",
				Kind: Input, Str: &w.A.KeystoreDir, Validate: optionalPath(validator.CheckKeystoreFolder), Feedback: keysFeedback},
			{Title: "Keystore password file", Help: "A file holding the keystores' password (never typed here).",
				Kind: Input, Str: &w.A.PasswordFile, Validate: optionalPath(validator.CheckReadable)},
			{Title: "Slashing-protection file", Help: "EIP-3076 history from the machine these keys ran on; empty: new keys.",
				Kind: Input, Str: &w.A.SlashingFile, Validate: optionalPath(validator.CheckReadable)},
		}},
	}
	if mev {
		groups = append(groups,
			Group{Questions: []Question{{
				Title: "Run MEV-boost?", Help: "Earns more per proposed block through relays.",
				Kind: Confirm, Bool: &w.A.MevBoost,
			}}},
			Group{Show: func() bool { return w.A.MevBoost }, Questions: []Question{{
				Title: "Relays", Help: "Space selects, Enter accepts.", Kind: MultiSelect,
				Options: relayOpts, Multi: &w.A.Relays,
				Validate: func(string) error {
					if len(w.A.Relays) == 0 {
						return errors.New("choose at least one relay, or run without MEV-boost")
					}
					return nil
				},
			}}},
		)
	}
	groups = append(groups, Group{Questions: []Question{{
		Title: "Checkpoint sync URL", Help: "Syncs the beacon chain in minutes. Prefilled for the network.",
		Kind: Input, Str: &w.A.CheckpointURL, Validate: plan.ValidateCheckpointURL,
	}}})
	return Screen{
		ID: "validator", Title: "Validator and MEV", Intro: strings.TrimSpace(intro), Groups: groups,
		Check: func() error {
			if c, ok := w.Cat.Client(w.A.Consensus); ok && w.A.Validator && c.ValidatorModule == "" {
				return fmt.Errorf("%s has no validator client in ethereum.nix: press Esc to choose another consensus client, or run without a validator", c.Title)
			}
			if w.A.Validator && strings.TrimSpace(w.A.KeystoreDir) != "" && strings.TrimSpace(w.A.PasswordFile) == "" {
				return errors.New("the keystores need their password: name the file that holds it")
			}
			if w.A.Validator && strings.TrimSpace(w.A.KeystoreDir) == "" && (strings.TrimSpace(w.A.PasswordFile) != "" || strings.TrimSpace(w.A.SlashingFile) != "") {
				return errors.New("a password or slashing-protection file without keys: name the validator_keys folder too")
			}
			return nil
		},
	}
}

// optionalPath accepts an empty answer and checks a typed path with check,
// after ~ and relative paths are made absolute.
func optionalPath(check func(string) error) func(string) error {
	return func(s string) error {
		if strings.TrimSpace(s) == "" {
			return nil
		}
		return check(absPath(s))
	}
}

// keysFeedback counts the keystores in the typed folder.
func keysFeedback(s string) string {
	if strings.TrimSpace(s) == "" {
		return "no keys: the validator starts without keys"
	}
	n, err := validator.CountKeystores(absPath(s))
	if err != nil || n == 0 {
		return ""
	}
	return fmt.Sprintf("%d keystore(s); the password is checked on the review", n)
}

func relayHost(u string) string {
	if i := strings.LastIndex(u, "@"); i >= 0 {
		return u[i+1:]
	}
	return u
}

func (w *Wizard) disk() Screen {
	var usable []Option
	var listing []string
	for _, d := range w.HW.Disks {
		desc := fmt.Sprintf("%-9s %8s  %s", d.Name, disk.SizeText(d.SizeBytes), orDash(d.Model))
		if d.Removable {
			desc += " (removable)"
		}
		if d.InUse {
			listing = append(listing, fmt.Sprintf("  %s\n      in use: %s", desc, d.InUseReason))
			continue
		}
		value := d.ByID
		if value == "" {
			value = d.Path
		}
		usable = append(usable, Option{desc, value})
	}
	usable = append(usable, Option{"Another device (type its path)", diskManual})
	intro := "The disk you choose is erased and holds chain data and the node's keys."
	if len(listing) > 0 {
		intro += "\nNot offered, because they are in use:\n" + strings.Join(listing, "\n")
	}
	if w.A.Disk == "" && len(usable) > 1 {
		w.A.Disk = usable[0].Value
	}
	if w.A.Disk == "" {
		w.A.Disk = diskManual
	}
	return Screen{
		ID: "disk", Title: "Data disk", Intro: intro,
		Groups: []Group{
			{Questions: []Question{{Title: "Disk for chain data", Kind: Select, Options: usable, Str: &w.A.Disk, Feedback: w.diskFeedback}}},
			{Show: func() bool { return w.A.Disk == diskManual }, Questions: []Question{{
				Title: "Device path", Help: "Preferably /dev/disk/by-id/…, which never changes between boots.",
				Kind: Input, Str: &w.A.DiskPath, Validate: w.validateManualDisk,
			}}},
			{Questions: []Question{{
				Title: "Filesystem", Kind: Select, Str: &w.A.Filesystem,
				Options: []Option{
					{"ext4   (recommended: simple and robust)", string(plan.Ext4)},
					{"xfs    (good for large databases)", string(plan.XFS)},
					{"btrfs  (subvolumes, snapshots; slower for chain data)", string(plan.Btrfs)},
				},
			}}},
		},
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// diskFeedback shows the highlighted disk's stable name and a size warning.
func (w *Wizard) diskFeedback(v string) string {
	if v == diskManual {
		return ""
	}
	a := w.A
	a.Disk = v
	d, ok := a.chosenDisk(w.HW)
	if !ok {
		return ""
	}
	msg := d.Path
	if d.ByID != "" {
		msg = d.ByID
	}
	need := w.Cat.Networks[plan.Network(w.A.Network)].MinDiskGiB
	if have := float64(d.SizeBytes) / (1 << 30); need > 0 && have < float64(need) {
		msg += fmt.Sprintf("\n! %.0f GiB is below the %d GiB %s needs.", have, need, w.A.Network)
	}
	return msg
}

// validateManualDisk refuses a typed path that names a disk in use.
func (w *Wizard) validateManualDisk(s string) error {
	s = strings.TrimSpace(s)
	if err := plan.ValidateDevice(s); err != nil {
		return err
	}
	for _, d := range w.HW.Disks {
		if (d.Path == s || d.ByID == s) && d.InUse {
			return fmt.Errorf("%s is in use (%s): choose another disk", s, d.InUseReason)
		}
	}
	return nil
}

func (w *Wizard) keys() Screen {
	keyOpts := []Option{{"Paste public keys", keysPaste}}
	if n := len(w.HW.AuthorizedKeys); n > 0 {
		keyOpts = append([]Option{{fmt.Sprintf("Use the %d key(s) that let you in now (%s)", n, w.HW.AuthorizedKeysFile), keysSystem}}, keyOpts...)
	} else if w.A.SSHKeySource == keysSystem {
		w.A.SSHKeySource = keysPaste
	}
	adminOpts := []Option{
		{"Generate one (saved in " + w.PrivateDir + "/admin)", adminGenerate},
		{"Paste age recipients (age1…)", adminPaste},
		{"Derive from an ed25519 SSH key above", adminSSH},
	}
	return Screen{
		ID: "keys", Title: "Keys",
		Intro: "SSH keys let you log in to the node. Admin age keys can decrypt the\nnode's secrets (sops) besides the node itself.",
		Groups: []Group{
			{Questions: []Question{{Title: "SSH keys for root on the node", Kind: Select, Options: keyOpts, Str: &w.A.SSHKeySource}}},
			{Show: func() bool { return w.A.SSHKeySource == keysPaste }, Questions: []Question{{
				Title: "Public keys, one per line", Help: "e.g. the contents of ~/.ssh/id_ed25519.pub",
				Kind: Text, Str: &w.A.SSHKeys, Validate: validateKeyLines,
			}}},
			{Questions: []Question{{Title: "Admin age key", Kind: Select, Options: adminOpts, Str: &w.A.AdminSource,
				Validate: func(v string) error {
					if v != adminSSH {
						return nil
					}
					_, err := w.derivedRecipients()
					return err
				}}}},
			{Show: func() bool { return w.A.AdminSource == adminPaste }, Questions: []Question{{
				Title: "Age recipients, one per line", Kind: Text, Str: &w.A.AdminRecipients,
				Validate: validateRecipientLines,
			}}},
		},
		Done: func() {
			if w.A.AdminSource == adminSSH {
				rs, _ := w.derivedRecipients()
				w.A.AdminRecipients = strings.Join(rs, "\n")
			}
		},
	}
}

// derivedRecipients converts the ed25519 SSH keys given above to age
// recipients (the same conversion sops-nix uses for host keys).
func (w *Wizard) derivedRecipients() ([]string, error) {
	var out []string
	for _, k := range w.A.sshKeys(w.HW) {
		if !strings.HasPrefix(k, "ssh-ed25519 ") {
			continue
		}
		r, err := secrets.SSHPublicKeyToRecipient(k)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, errors.New("none of the SSH keys above is ssh-ed25519; generate an admin key or paste an age recipient")
	}
	return out, nil
}

func validateKeyLines(s string) error {
	ls := lines(s)
	if len(ls) == 0 {
		return errors.New("paste at least one public key: without one nobody can log in to the node")
	}
	for i, l := range ls {
		if err := plan.ValidateSSHKey(l); err != nil {
			return fmt.Errorf("key %d: %v", i+1, err)
		}
	}
	return nil
}

func validateRecipientLines(s string) error {
	ls := lines(s)
	if len(ls) == 0 {
		return errors.New("paste at least one age recipient (age1…), or choose to generate one")
	}
	for i, l := range ls {
		if err := plan.ValidateAgeRecipient(l); err != nil {
			return fmt.Errorf("recipient %d: %v", i+1, err)
		}
	}
	return nil
}

func (w *Wizard) output() Screen {
	return Screen{
		ID: "output", Title: "Output",
		Intro: "Either way the node runs from RAM; only the data disk is written.",
		Groups: []Group{{Questions: []Question{
			{Title: "How will the node boot?", Kind: Select, Str: &w.A.Format, Options: formatOptions(w.A.board())},
			{Title: "Folder for the flake", Help: "The node's configuration; keep it (in git).", Kind: Input, Str: &w.A.FlakeDir,
				Validate: func(s string) error {
					if strings.TrimSpace(s) == "" {
						return errors.New("name a folder for the flake, e.g. ~/homestaker-flake")
					}
					return nil
				}},
		}}},
		Check: func() error {
			// Everything is answered: the plan must be valid as a whole.
			res := w.Plan().Validate(w.Cat)
			if !res.OK() {
				return fmt.Errorf("the answers do not make a valid plan: %s", res.Errors[0])
			}
			return nil
		},
	}
}
