package nixbuild

import (
	"strings"
	"testing"
)

func TestRAMBudgetText(t *testing.T) {
	b := RAMBudget{RAMBytes: 8 << 30, RAMNote: "the most a Raspberry Pi 4 has", InitrdBytes: EstimatedInitrdBytes,
		ClientsBytes: 12 << 30, Clients: "Reth 8 GiB + Nimbus 4 GiB"}
	got := b.Text()
	want := "8.0 GiB (the most a Raspberry Pi 4 has): initrd ~1.0 GiB (estimate until the build measures it) + system ~1.0 GiB, leaving ~6.0 GiB for the clients, which need ~12 GiB (Reth 8 GiB + Nimbus 4 GiB): too little"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	b = RAMBudget{RAMBytes: 64 << 30, RAMNote: "detected", InitrdBytes: 900 << 20, Measured: true, ClientsBytes: 16 << 30, Clients: "x"}
	if got := b.Text(); !strings.Contains(got, "initrd 900 MiB + system ~1.0 GiB, leaving ~62 GiB") || strings.Contains(got, "too little") {
		t.Errorf("measured: %q", got)
	}
	if (RAMBudget{}).Text() != "" {
		t.Error("unknown RAM gives a line")
	}
	if got := (RAMBudget{RAMBytes: 1 << 30, InitrdBytes: 1 << 30}).Text(); !strings.Contains(got, "leaving nothing") {
		t.Errorf("no room: %q", got)
	}
}
