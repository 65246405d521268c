package secrets

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRenderSopsConfigGolden(t *testing.T) {
	a := "age1wcwc3myrqsfer807n4x364h30ejneryegzpd7kcn0wg2ptnwma6qfgnx5h"
	b := "age12pkpu05jpuy9wta6ka3h8s0e8wwv7ueuv8aqny93ltuh3mvwtsusp6y3jv"
	c := "age140pcjslszrrejerpactrwrjdd3hmpkhn4n4ly2weuqj3qx0fkfkq0jxlq8"
	rules := []HostRule{
		{Host: "zeta", Recipients: []string{b, c, c}},
		{Host: "node1", Recipients: []string{a, c}},
	}
	got := RenderSopsConfig(rules)
	if again := RenderSopsConfig([]HostRule{rules[1], rules[0]}); string(again) != string(got) {
		t.Fatal("output depends on the order of hosts")
	}
	golden := filepath.Join("testdata", "sops.yaml.golden")
	if *update {
		os.WriteFile(golden, got, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}
