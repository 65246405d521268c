package plan

import (
	"encoding/json"
	"reflect"
	"strings"
)

// fieldDoc describes one answers-file field for the JSON Schema.
type fieldDoc struct {
	description string
	enum        []string
	pattern     string
	required    bool
}

func fieldDocs(c *Catalogue) map[string]fieldDoc {
	nets := make([]string, 0)
	for _, n := range c.NetworkNames() {
		nets = append(nets, string(n))
	}
	return map[string]fieldDoc{
		"version":                               {description: "Answers-file format version.", enum: []string{"1"}, required: true},
		"host":                                  {description: "The machine and the image it boots.", required: true},
		"host.name":                             {description: "Host name: lower-case letters, digits and hyphens (RFC 1123 label). Also the folder hosts/<name>/ in the flake.", pattern: `^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`, required: true},
		"host.timezone":                         {description: "IANA timezone, e.g. Europe/Helsinki. Default: UTC."},
		"host.arch":                             {description: "CPU architecture. Default: aarch64 for a Raspberry Pi 4, x86_64 otherwise.", enum: []string{"x86_64", "aarch64"}},
		"host.board":                            {description: "generic PC/server or Raspberry Pi 4 (implies aarch64). Default: generic.", enum: []string{"generic", "rpi4"}},
		"host.format":                           {description: "kexec: boot from the running system; iso: boot from a USB stick; sd: a Raspberry Pi 4's SD card. All run from RAM. Default: kexec (sd for a Raspberry Pi 4).", enum: []string{"kexec", "iso", "sd"}},
		"host.firmware":                         {description: "uefi: the boot entry on the data disk uses systemd-boot; bios: GRUB from the BIOS boot partition. Default: the firmware of the machine homestaker runs on.", enum: []string{"uefi", "bios"}},
		"host.memoryBytes":                      {description: "The node's RAM in bytes, when known; only used for warnings."},
		"ethereum":                              {description: "Network and clients.", required: true},
		"ethereum.network":                      {description: "Ethereum network. Default: mainnet.", enum: nets},
		"ethereum.execution":                    {description: "Execution client.", enum: c.Names(Execution), required: true},
		"ethereum.consensus":                    {description: "Consensus (beacon) client.", enum: c.Names(Consensus), required: true},
		"ethereum.checkpointSyncUrl":            {description: "https URL of a beacon node serving checkpoints. Default: per network.", pattern: "^https://"},
		"ethereum.validator":                    {description: "The validator client, paired with the consensus client."},
		"ethereum.validator.enable":             {description: "Run a validator client."},
		"ethereum.validator.feeRecipient":       {description: "0x address receiving priority fees and MEV (EIP-55 checksummed, or all lower/upper case).", pattern: "^0x[0-9a-fA-F]{40}$"},
		"ethereum.validator.graffiti":           {description: "Text written into proposed blocks, at most 32 bytes."},
		"ethereum.validator.keystoreDir":        {description: "Absolute path of the validator_keys folder a deposit tool wrote (keystore-*.json, optionally deposit_data-*.json). Its keys are encrypted into the node's secrets.", pattern: "^/"},
		"ethereum.validator.passwordFile":       {description: "Absolute path of a file holding the keystores' password (a trailing newline is not part of it). Required with keystoreDir.", pattern: "^/"},
		"ethereum.validator.slashingProtection": {description: "Absolute path of an EIP-3076 slashing-protection file from the machine these keys ran on before.", pattern: "^/"},
		"ethereum.validator.doppelganger":       {description: "Wait a few epochs after each start to check that no other machine runs these keys. Default: true."},
		"ethereum.mevBoost":                     {description: "MEV-boost (x86_64 only)."},
		"ethereum.mevBoost.enable":              {description: "Run mev-boost and use it from the beacon node."},
		"ethereum.mevBoost.relays":              {description: "Relay URLs (https://0x<pubkey>@host). Empty: the network's default relays."},
		"ethereum.mevBoost.relays[]":            {pattern: "^https://0x[0-9a-fA-F]{96}@"},
		"disk":                                  {description: "The data disk: erased, then holds chain data and the host's secrets.", required: true},
		"disk.device":                           {description: "The disk, preferably /dev/disk/by-id/….", pattern: "^/dev/", required: true},
		"disk.filesystem":                       {description: "Filesystem of the data partition. Default: ext4.", enum: []string{"ext4", "xfs", "btrfs"}},
		"disk.sizeBytes":                        {description: "The disk's size in bytes, when known; only used for warnings."},
		"ssh":                                   {description: "SSH access to the node.", required: true},
		"ssh.authorizedKeys":                    {description: "Public keys allowed to log in as root. At least one.", required: true},
		"ssh.authorizedKeys[]":                  {description: "One authorized_keys line, e.g. ssh-ed25519 AAAA… me@laptop."},
		"ssh.hostKey":                           {description: "The node's public ssh-ed25519 host key; filled in by homestaker.", pattern: "^ssh-ed25519 "},
		"secrets":                               {description: "Who can open the host's secrets besides the host."},
		"secrets.adminRecipients":               {description: "age recipients (age1…) of the admins who may edit the secrets."},
		"secrets.adminRecipients[]":             {pattern: "^age1"},
	}
}

// Schema returns a JSON Schema (draft 2020-12) of the answers file, for
// editors that complete and check it as it is typed.
func Schema(c *Catalogue) []byte {
	docs := fieldDocs(c)
	s := schemaFor(reflect.TypeOf(Plan{}), "", docs)
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = "https://homestaker.invalid/answers.schema.json"
	s["title"] = "homestaker answers file"
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		panic("plan: the schema is plain data: " + err.Error())
	}
	return append(out, '\n')
}

func schemaFor(t reflect.Type, path string, docs map[string]fieldDoc) map[string]any {
	s := map[string]any{}
	d := docs[path]
	if d.description != "" {
		s["description"] = d.description
	}
	switch t.Kind() {
	case reflect.Struct:
		s["type"] = "object"
		s["additionalProperties"] = false
		props := map[string]any{}
		var required []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			child := joinPath(path, name)
			props[name] = schemaFor(f.Type, child, docs)
			if docs[child].required {
				required = append(required, name)
			}
		}
		s["properties"] = props
		if len(required) > 0 {
			s["required"] = required
		}
	case reflect.Slice:
		s["type"] = "array"
		s["items"] = schemaFor(t.Elem(), path+"[]", docs)
	case reflect.String:
		s["type"] = "string"
		if len(d.enum) > 0 {
			s["enum"] = d.enum
		}
		if d.pattern != "" {
			s["pattern"] = d.pattern
		}
	case reflect.Bool:
		s["type"] = "boolean"
	case reflect.Int, reflect.Uint64:
		s["type"] = "integer"
		s["minimum"] = 0
		if len(d.enum) > 0 {
			s["const"] = 1
		}
	}
	return s
}
