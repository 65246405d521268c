// Package ui is homestaker's wizard: the screens that fill a plan.Plan, the
// review of what applying it will do, the typed confirmation of destructive
// steps and the progress of the running steps. The same questions drive the
// full-screen terminal interface (bubbletea + huh) and the plain line
// prompts used over a dumb terminal or without a TTY. The UI never touches
// disks, keys or processes: it asks, and shows what the steps report.
package ui

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/plan"
)

// Hardware is what detection found on the machine the wizard runs on.
type Hardware struct {
	Arch        plan.Arch
	Board       plan.Board
	MemoryBytes uint64
	CPUs        int
	Disks       []disk.BlockDevice
	// AuthorizedKeys are the public keys that let the user in right now
	// (the running system's authorized_keys), offered as the node's keys.
	AuthorizedKeys     []string
	AuthorizedKeysFile string
	// Timezone is the running system's timezone, "" when unknown.
	Timezone string
}

// Choices of the screens that are not plan fields themselves.
const (
	hwPC   = "pc"
	hwRPi4 = "rpi4"

	pickForMe = "pick"

	diskManual = "manual"

	keysSystem = "system"
	keysPaste  = "paste"

	adminGenerate = "generate"
	adminPaste    = "paste"
	adminSSH      = "ssh"
)

// Answers is everything the user chose or typed, kept as typed so that going
// back shows exactly what was there. It holds no secret material: it is
// saved as the draft when the connection drops.
type Answers struct {
	Hardware     string `json:"hardware"`
	HostName     string `json:"hostName"`
	Timezone     string `json:"timezone"`
	Network      string `json:"network"`
	Execution    string `json:"execution"`
	Consensus    string `json:"consensus"`
	Validator    bool   `json:"validator"`
	FeeRecipient string `json:"feeRecipient"`
	Graffiti     string `json:"graffiti"`
	// KeystoreDir, PasswordFile and SlashingFile are paths as typed; the
	// password itself is never asked for here.
	KeystoreDir     string   `json:"keystoreDir"`
	PasswordFile    string   `json:"passwordFile"`
	SlashingFile    string   `json:"slashingFile"`
	MevBoost        bool     `json:"mevBoost"`
	Relays          []string `json:"relays"`
	CheckpointURL   string   `json:"checkpointUrl"`
	Disk            string   `json:"disk"`
	DiskPath        string   `json:"diskPath"`
	Filesystem      string   `json:"filesystem"`
	SSHKeySource    string   `json:"sshKeySource"`
	SSHKeys         string   `json:"sshKeys"`
	AdminSource     string   `json:"adminSource"`
	AdminRecipients string   `json:"adminRecipients"`
	Format          string   `json:"format"`
	FlakeDir        string   `json:"flakeDir"`
}

// DefaultAnswers are the recommended answers for the detected hardware:
// what a user gets by pressing Enter on every screen (apart from the fields
// only they can know: fee recipient, disk, keys).
func DefaultAnswers(hw Hardware, cat *plan.Catalogue, home string) Answers {
	a := Answers{
		Hardware:     hwPC,
		HostName:     "node1",
		Timezone:     "UTC",
		Network:      string(plan.Mainnet),
		Validator:    true,
		Filesystem:   string(plan.Ext4),
		Format:       string(plan.FormatKexec),
		AdminSource:  adminGenerate,
		SSHKeySource: keysPaste,
		Graffiti:     "homestaker",
	}
	if hw.Board == plan.BoardRPi4 || hw.Arch == plan.ArchAarch64 {
		a.Hardware = hwRPi4
		a.Network = string(plan.Hoodi)
		a.Format = string(plan.FormatSD)
	}
	if hw.Timezone != "" && plan.ValidateTimezone(hw.Timezone) == nil {
		a.Timezone = hw.Timezone
	}
	if len(hw.AuthorizedKeys) > 0 {
		a.SSHKeySource = keysSystem
	}
	a.MevBoost = cat.MevBoostRunsOn(a.arch())
	a.Execution = recommendedFor(cat, plan.Execution, a.arch(), a.board())
	a.Consensus = recommendedFor(cat, plan.Consensus, a.arch(), a.board())
	a.CheckpointURL = firstCheckpoint(cat, a.Network)
	if home == "" {
		home = "."
	}
	a.FlakeDir = filepath.Join(home, "homestaker-flake")
	return a
}

// AnswersFromPlan turns an existing plan (an answers file, or a host being
// reconfigured) back into answers, so the screens start from it.
func AnswersFromPlan(p plan.Plan, hw Hardware, cat *plan.Catalogue, flakeDir string) Answers {
	p = p.Defaults(cat)
	a := DefaultAnswers(hw, cat, "")
	a.Hardware = hwPC
	if p.Host.Board == plan.BoardRPi4 {
		a.Hardware = hwRPi4
	}
	a.HostName = p.Host.Name
	a.Timezone = p.Host.Timezone
	a.Network = string(p.Ethereum.Network)
	a.Execution = p.Ethereum.Execution
	a.Consensus = p.Ethereum.Consensus
	a.Validator = p.Ethereum.Validator.Enable
	a.FeeRecipient = p.Ethereum.Validator.FeeRecipient
	a.Graffiti = p.Ethereum.Validator.Graffiti
	a.KeystoreDir = p.Ethereum.Validator.KeystoreDir
	a.PasswordFile = p.Ethereum.Validator.PasswordFile
	a.SlashingFile = p.Ethereum.Validator.SlashingProtection
	a.MevBoost = p.Ethereum.MevBoost.Enable
	a.Relays = append([]string(nil), p.Ethereum.MevBoost.Relays...)
	a.CheckpointURL = p.Ethereum.CheckpointSyncURL
	a.Disk = p.Disk.Device
	if !hasDisk(hw, p.Disk.Device) {
		a.Disk, a.DiskPath = diskManual, p.Disk.Device
	}
	a.Filesystem = string(p.Disk.Filesystem)
	a.SSHKeySource = keysPaste
	a.SSHKeys = strings.Join(p.SSH.AuthorizedKeys, "\n")
	a.AdminSource = adminGenerate
	if len(p.Secrets.AdminRecipients) > 0 {
		a.AdminSource = adminPaste
		a.AdminRecipients = strings.Join(p.Secrets.AdminRecipients, "\n")
	}
	a.Format = string(p.Host.Format)
	if flakeDir != "" {
		a.FlakeDir = flakeDir
	}
	return a
}

func hasDisk(hw Hardware, dev string) bool {
	for _, d := range hw.Disks {
		if !d.InUse && (d.ByID == dev || d.Path == dev) {
			return true
		}
	}
	return false
}

func (a Answers) arch() plan.Arch {
	if a.Hardware == hwRPi4 {
		return plan.ArchAarch64
	}
	return plan.ArchX86_64
}

func (a Answers) board() plan.Board {
	if a.Hardware == hwRPi4 {
		return plan.BoardRPi4
	}
	return plan.BoardGeneric
}

// matchesHardware reports whether the node is the machine the wizard runs
// on, so detected facts (RAM) describe it. A Raspberry Pi 4 node is this
// machine only when this machine is a Pi 4 (not any aarch64 server).
func (a Answers) matchesHardware(hw Hardware) bool {
	if a.board() == plan.BoardRPi4 && hw.Arch != "" && hw.Board != plan.BoardRPi4 {
		return false
	}
	return hw.Arch == "" || hw.Arch == a.arch()
}

// diskDevice is the data disk's path as the plan records it.
func (a Answers) diskDevice() string {
	if a.Disk == diskManual {
		return strings.TrimSpace(a.DiskPath)
	}
	return a.Disk
}

// chosenDisk is the detected disk the user chose, if any.
func (a Answers) chosenDisk(hw Hardware) (disk.BlockDevice, bool) {
	dev := a.diskDevice()
	for _, d := range hw.Disks {
		if dev != "" && (d.ByID == dev || d.Path == dev) {
			return d, true
		}
	}
	return disk.BlockDevice{}, false
}

// sshKeys are the node's authorized keys from the chosen source.
func (a Answers) sshKeys(hw Hardware) []string {
	if a.SSHKeySource == keysSystem {
		return append([]string(nil), hw.AuthorizedKeys...)
	}
	return lines(a.SSHKeys)
}

// lines splits pasted text into its non-empty, trimmed lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// Plan is the plan these answers describe, with defaults filled in.
func (a Answers) Plan(hw Hardware, cat *plan.Catalogue) plan.Plan {
	p := plan.Plan{Version: plan.CurrentVersion}
	p.Host = plan.Host{
		Name:     strings.TrimSpace(a.HostName),
		Timezone: strings.TrimSpace(a.Timezone),
		Arch:     a.arch(),
		Board:    a.board(),
		Format:   plan.Format(a.Format),
	}
	if a.matchesHardware(hw) {
		p.Host.MemoryBytes = hw.MemoryBytes
	}
	p.Ethereum = plan.Ethereum{
		Network:           plan.Network(a.Network),
		Execution:         a.Execution,
		Consensus:         a.Consensus,
		CheckpointSyncURL: strings.TrimSpace(a.CheckpointURL),
	}
	if a.Validator {
		p.Ethereum.Validator = plan.Validator{
			Enable:             true,
			FeeRecipient:       strings.TrimSpace(a.FeeRecipient),
			Graffiti:           a.Graffiti,
			KeystoreDir:        absPath(a.KeystoreDir),
			PasswordFile:       absPath(a.PasswordFile),
			SlashingProtection: absPath(a.SlashingFile),
		}
	}
	if a.MevBoost && cat.MevBoostRunsOn(a.arch()) {
		p.Ethereum.MevBoost = plan.MevBoost{Enable: true, Relays: append([]string(nil), a.Relays...)}
		if sameSet(a.Relays, networkRelays(cat, a.Network)) {
			// All of the network's relays: leave the list to the defaults,
			// as an answers file does, so it follows the data file.
			p.Ethereum.MevBoost.Relays = nil
		}
	}
	p.Disk = plan.Disk{Device: a.diskDevice(), Filesystem: plan.Filesystem(a.Filesystem)}
	if d, ok := a.chosenDisk(hw); ok {
		p.Disk.SizeBytes = d.SizeBytes
	}
	p.SSH.AuthorizedKeys = a.sshKeys(hw)
	switch a.AdminSource {
	case adminPaste, adminSSH:
		p.Secrets.AdminRecipients = lines(a.AdminRecipients)
	}
	return p.Defaults(cat)
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x := append([]string(nil), a...)
	y := append([]string(nil), b...)
	sort.Strings(x)
	sort.Strings(y)
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

func networkRelays(cat *plan.Catalogue, network string) []string {
	var out []string
	for _, r := range cat.Networks[plan.Network(network)].Relays {
		out = append(out, r.URL)
	}
	return out
}

func firstCheckpoint(cat *plan.Catalogue, network string) string {
	if urls := cat.Networks[plan.Network(network)].CheckpointSyncURLs; len(urls) > 0 {
		return urls[0]
	}
	return ""
}

// recommended is the default client of a kind: the first non-supermajority
// client that runs on the architecture, in catalogue order.
func recommended(cat *plan.Catalogue, kind plan.Kind, arch plan.Arch) string {
	cs := cat.ClientsFor(kind, arch)
	for _, c := range cs {
		if !c.Supermajority {
			return c.Name
		}
	}
	if len(cs) > 0 {
		return cs[0].Name
	}
	return ""
}

// ReadAuthorizedKeys reads the public keys of an authorized_keys file,
// keeping only lines that are valid keys. A missing file is no keys.
func ReadAuthorizedKeys(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var keys []string
	for _, l := range lines(string(data)) {
		if strings.HasPrefix(l, "#") || plan.ValidateSSHKey(l) != nil {
			continue
		}
		keys = append(keys, l)
	}
	return keys
}

// gibText is a RAM size in GiB.
func gibText(n uint64) string {
	return fmt.Sprintf("%.0f GiB", float64(n)/(1<<30))
}

// ScreenIDs are the question screens' names, in order.
func ScreenIDs() []string { return append([]string(nil), screenIDs...) }

// absPath makes a typed path absolute: ~/ is the home folder, a relative
// path is taken from the current folder. Empty stays empty.
func absPath(p string) string {
	p = strings.TrimSpace(p)
	if p == "" {
		return ""
	}
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, strings.TrimPrefix(p, "~"))
		}
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}
