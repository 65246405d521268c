package plan

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIrAWAe8Eu8oR0nqj8sN7aHINtNpPHK2dZ4dS1IZqosR staker@laptop"
const testRecipient = "age1lu297lxnaakau0jqxq6h66eq37vavm5223ug648hh7vzp6kj8ujqh2ycnv"

func catalogue(t testing.TB) *Catalogue {
	t.Helper()
	c, err := LoadCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// base is a valid answers file as a generic tree, so table entries can change one value.
func base() map[string]any {
	return map[string]any{
		"version": 1,
		"host":    map[string]any{"name": "beta", "timezone": "Europe/Helsinki", "arch": "x86_64", "board": "generic", "format": "kexec"},
		"ethereum": map[string]any{
			"network": "mainnet", "execution": "erigon", "consensus": "lighthouse",
			"checkpointSyncUrl": "https://beaconstate.info",
			"validator":         map[string]any{"enable": true, "feeRecipient": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "graffiti": "hi"},
			"mevBoost":          map[string]any{"enable": true, "relays": []any{}},
		},
		"disk":    map[string]any{"device": "/dev/disk/by-id/nvme-X", "filesystem": "ext4"},
		"ssh":     map[string]any{"authorizedKeys": []any{testKey}},
		"secrets": map[string]any{"adminRecipients": []any{testRecipient}},
	}
}

func set(tree map[string]any, path string, v any) {
	parts := strings.Split(path, ".")
	m := tree
	for _, p := range parts[:len(parts)-1] {
		m = m[p].(map[string]any)
	}
	if v == nil {
		delete(m, parts[len(parts)-1])
		return
	}
	m[parts[len(parts)-1]] = v
}

func load(t *testing.T, data []byte) (Plan, Result, error) {
	t.Helper()
	p, err := Decode(data)
	if err != nil {
		return p, Result{}, err
	}
	p = p.Defaults(catalogue(t))
	return p, p.Validate(catalogue(t)), nil
}

func TestBaseIsValid(t *testing.T) {
	data, _ := json.Marshal(base())
	_, res, err := load(t, data)
	if err != nil || !res.OK() {
		t.Fatalf("base plan: err=%v problems=%v", err, res.Errors)
	}
}

func TestExamplesAreValid(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.json")
	if len(files) < 3 {
		t.Fatalf("expected the example answers files, found %v", files)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, res, err := load(t, data); err != nil || !res.OK() {
			t.Errorf("%s: err=%v problems=%v", f, err, res.Errors)
		}
	}
}

func TestInvalidAnswers(t *testing.T) {
	pqRecipient := "age1pq1" + strings.Repeat("q", 50)
	cases := []struct {
		name  string
		path  string
		value any
		want  string // the field path the error must name
	}{
		{"hostname uppercase", "host.name", "Beta", "host.name"},
		{"hostname underscore", "host.name", "my_node", "host.name"},
		{"hostname too long", "host.name", strings.Repeat("a", 64), "host.name"},
		{"hostname leading hyphen", "host.name", "-beta", "host.name"},
		{"missing hostname", "host.name", nil, "host.name"},
		{"bad timezone", "host.timezone", "Mars/Olympus", "host.timezone"},
		{"bad arch", "host.arch", "riscv64", "host.arch"},
		{"rpi4 on x86", "host.board", "rpi4", "host.arch"},
		{"bad format", "host.format", "qcow2", "host.format"},
		{"holesky", "ethereum.network", "holesky", "ethereum.network"},
		{"unknown execution", "ethereum.execution", "parity", "ethereum.execution"},
		{"consensus as execution", "ethereum.execution", "lighthouse", "ethereum.execution"},
		{"unknown consensus", "ethereum.consensus", "lodestar", "ethereum.consensus"},
		{"http checkpoint", "ethereum.checkpointSyncUrl", "http://beaconstate.info", "ethereum.checkpointSyncUrl"},
		{"not a url checkpoint", "ethereum.checkpointSyncUrl", "beaconstate", "ethereum.checkpointSyncUrl"},
		{"bad checksum", "ethereum.validator.feeRecipient", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "ethereum.validator.feeRecipient"},
		{"short address", "ethereum.validator.feeRecipient", "0x1234", "ethereum.validator.feeRecipient"},
		{"no 0x", "ethereum.validator.feeRecipient", "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "ethereum.validator.feeRecipient"},
		{"zero address", "ethereum.validator.feeRecipient", "0x0000000000000000000000000000000000000000", "ethereum.validator.feeRecipient"},
		{"missing fee recipient", "ethereum.validator.feeRecipient", nil, "ethereum.validator.feeRecipient"},
		{"graffiti too long", "ethereum.validator.graffiti", strings.Repeat("é", 17), "ethereum.validator.graffiti"},
		{"graffiti newline", "ethereum.validator.graffiti", "a\nb", "ethereum.validator.graffiti"},
		{"graffiti leading dash", "ethereum.validator.graffiti", "-- --sepolia", "ethereum.validator.graffiti"},
		{"bad relay", "ethereum.mevBoost.relays", []any{"https://relay.example"}, "ethereum.mevBoost.relays[0]"},
		{"http relay", "ethereum.mevBoost.relays", []any{"http://0x" + strings.Repeat("a", 96) + "@relay.example"}, "ethereum.mevBoost.relays[0]"},
		{"device not in dev", "disk.device", "sda", "disk.device"},
		{"empty device", "disk.device", "", "disk.device"},
		{"bad filesystem", "disk.filesystem", "zfs", "disk.filesystem"},
		{"no ssh keys", "ssh.authorizedKeys", []any{}, "ssh.authorizedKeys"},
		{"bad second key", "ssh.authorizedKeys", []any{testKey, "ssh-rsa nope"}, "ssh.authorizedKeys[1]"},
		{"private key", "ssh.authorizedKeys", []any{"-----BEGIN OPENSSH PRIVATE KEY-----"}, "ssh.authorizedKeys[0]"},
		{"bad host key", "ssh.hostKey", "ssh-rsa AAAA", "ssh.hostKey"},
		{"bad recipient", "secrets.adminRecipients", []any{testRecipient, "age1nope"}, "secrets.adminRecipients[1]"},
		{"secret key as recipient", "secrets.adminRecipients", []any{"AGE-SECRET-KEY-1QQQ"}, "secrets.adminRecipients[0]"},
		{"pq recipient", "secrets.adminRecipients", []any{pqRecipient}, "secrets.adminRecipients[0]"},
		{"version 2", "version", 2, "version"},
		// decoding: unknown fields and wrong types name their path
		{"unknown top field", "extra", true, "extra"},
		{"unknown nested field", "ethereum.validator.fee_recipient", "0x", "ethereum.validator.fee_recipient"},
		{"case mismatch", "host.Name", "beta", "host.Name"},
		{"wrong type string", "host.name", 42, "host.name"},
		{"wrong type bool", "ethereum.validator.enable", "yes", "ethereum.validator.enable"},
		{"wrong type list", "ssh.authorizedKeys", testKey, "ssh.authorizedKeys"},
		{"wrong type element", "ssh.authorizedKeys", []any{1}, "ssh.authorizedKeys[0]"},
		{"negative memory", "host.memoryBytes", -1, "host.memoryBytes"},
		{"fractional version", "version", 1.5, "version"},
		{"object expected", "disk", "sda", "disk"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tree := base()
			set(tree, tc.path, tc.value)
			data, _ := json.Marshal(tree)
			_, res, err := load(t, data)
			var probs Problems
			if err != nil {
				probs = err.(Problems)
			} else {
				probs = res.Errors
			}
			if !probs.Has(tc.want) {
				t.Fatalf("want an error naming %q, got %v", tc.want, probs)
			}
			for _, p := range probs {
				if len(p.Message) < 15 {
					t.Errorf("message too terse to act on: %q", p)
				}
			}
		})
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	tree := base()
	set(tree, "host.name", "Bad_Name")
	set(tree, "ethereum.validator.graffiti", strings.Repeat("x", 40))
	set(tree, "ssh.authorizedKeys", []any{"nope"})
	set(tree, "disk.filesystem", "zfs")
	data, _ := json.Marshal(tree)
	_, res, err := load(t, data)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"host.name", "ethereum.validator.graffiti", "ssh.authorizedKeys[0]", "disk.filesystem"} {
		if !res.Errors.Has(want) {
			t.Errorf("missing %s in %v", want, res.Errors)
		}
	}
}

func TestMalformedJSONNamesLineAndColumn(t *testing.T) {
	cases := map[string]string{
		"{\n  \"version\": 1,\n  \"host\": { \"name\": \"beta\" ,, }\n}": "line 3, column",
		"{\"version\": 1":           "ends too early",
		"":                          "empty",
		"{\"version\": 1}\n{}":      "unexpected data",
		"[1, 2]":                    "expected an object",
		"{\"version\": 1} trailing": "line 1, column",
	}
	for in, want := range cases {
		_, err := Decode([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Decode(%q) = %v, want mention of %q", in, err, want)
		}
	}
}

func TestWarningsAreNotErrors(t *testing.T) {
	tree := base()
	set(tree, "host.memoryBytes", 8<<30)
	set(tree, "disk.sizeBytes", 1<<40)
	set(tree, "ethereum.execution", "geth")
	data, _ := json.Marshal(tree)
	_, res, err := load(t, data)
	if err != nil || !res.OK() {
		t.Fatalf("err=%v errors=%v", err, res.Errors)
	}
	for _, want := range []string{"host.memoryBytes", "disk.sizeBytes", "ethereum.execution", "ethereum.consensus"} {
		if !res.Warnings.Has(want) {
			t.Errorf("missing warning %s in %v", want, res.Warnings)
		}
	}
}

func TestArchitectureRules(t *testing.T) {
	tree := base()
	set(tree, "host.board", "rpi4")
	set(tree, "host.arch", nil)
	data, _ := json.Marshal(tree)
	p, res, err := load(t, data)
	if err != nil {
		t.Fatal(err)
	}
	if p.Host.Arch != ArchAarch64 {
		t.Errorf("rpi4 should default to aarch64, got %s", p.Host.Arch)
	}
	for _, want := range []string{"ethereum.execution", "ethereum.consensus", "ethereum.mevBoost.enable"} {
		if !res.Errors.Has(want) {
			t.Errorf("aarch64 erigon+lighthouse+mev-boost: missing error %s in %v", want, res.Errors)
		}
	}
	if !res.Warnings.Has("host.board") {
		t.Errorf("rpi4 on mainnet should warn, got %v", res.Warnings)
	}
	c := catalogue(t)
	var names []string
	for _, cl := range c.ClientsFor(Execution, ArchAarch64) {
		names = append(names, cl.Name)
	}
	if strings.Join(names, ",") != "geth,reth" {
		t.Errorf("aarch64 execution clients = %v, want geth,reth", names)
	}
}

func TestTekuHasNoValidatorModule(t *testing.T) {
	tree := base()
	set(tree, "ethereum.consensus", "teku")
	data, _ := json.Marshal(tree)
	_, res, _ := load(t, data)
	if !res.Errors.Has("ethereum.validator.enable") {
		t.Errorf("teku with a validator must be refused, got %v", res.Errors)
	}
}

func TestDefaults(t *testing.T) {
	p, err := Decode([]byte(`{"version":1,"host":{"name":"n"},"ethereum":{"network":"hoodi","execution":"geth","consensus":"nimbus","validator":{"enable":false},"mevBoost":{"enable":true}},"disk":{"device":"/dev/vdb"},"ssh":{"authorizedKeys":["` + testKey + `"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	d := p.Defaults(catalogue(t))
	if d.Host.Timezone != "UTC" || d.Host.Arch != ArchX86_64 || d.Host.Format != FormatKexec || d.Disk.Filesystem != Ext4 {
		t.Errorf("defaults: %+v %+v", d.Host, d.Disk)
	}
	if d.Ethereum.CheckpointSyncURL != "https://hoodi.beaconstate.info" {
		t.Errorf("hoodi checkpoint = %q", d.Ethereum.CheckpointSyncURL)
	}
	if len(d.Ethereum.MevBoost.Relays) < 2 {
		t.Errorf("hoodi relays = %v", d.Ethereum.MevBoost.Relays)
	}
	if len(p.Ethereum.MevBoost.Relays) != 0 {
		t.Error("Defaults changed its receiver's relays")
	}
}

func TestEIP55(t *testing.T) {
	// Test vectors from EIP-55.
	for _, a := range []string{
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
		"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
		"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
		"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
	} {
		got, err := ChecksumAddress(strings.ToLower(a))
		if err != nil || got != a {
			t.Errorf("ChecksumAddress(%s) = %s, %v", a, got, err)
		}
		if err := ValidateFeeRecipient(a); err != nil {
			t.Errorf("%s: %v", a, err)
		}
		if err := ValidateFeeRecipient("0x" + strings.ToUpper(a[2:])); err != nil {
			t.Errorf("upper-case %s: %v", a, err)
		}
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	data, _ := json.Marshal(base())
	p, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	p = p.Defaults(catalogue(t))
	again, err := Decode(Encode(p))
	if err != nil {
		t.Fatalf("decode of encoded plan: %v", err)
	}
	if string(Encode(again)) != string(Encode(p)) {
		t.Error("Encode/Decode is not a round trip")
	}
}

func TestSchemaIsJSONAndCoversEveryField(t *testing.T) {
	var s map[string]any
	if err := json.Unmarshal(Schema(catalogue(t)), &s); err != nil {
		t.Fatal(err)
	}
	props := s["properties"].(map[string]any)
	eth := props["ethereum"].(map[string]any)["properties"].(map[string]any)
	enum := eth["execution"].(map[string]any)["enum"].([]any)
	if len(enum) != 5 {
		t.Errorf("execution enum = %v", enum)
	}
	if s["additionalProperties"] != false {
		t.Error("the schema must refuse unknown fields, like Decode")
	}
}

func FuzzDecode(f *testing.F) {
	data, _ := json.Marshal(base())
	f.Add(data)
	f.Add([]byte(`{"version":1,"host":{"name":"x"}}`))
	f.Add([]byte(`{"ssh":{"authorizedKeys":[null, 1, {}]}}`))
	f.Add([]byte(`{`))
	c := catalogue(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := Decode(in)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		p = p.Defaults(c)
		_ = p.Validate(c)
		_ = Encode(p)
	})
}
