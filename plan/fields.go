package plan

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // timezones are checked without relying on the host's zoneinfo
	"unicode"
	"unicode/utf8"

	"filippo.io/age"
	"golang.org/x/crypto/ssh"
)

// The field validators below return one sentence saying what is wrong and
// what is accepted. The wizard uses them at the field; Validate uses them
// for the answers file.

var hostnameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateHostname checks an RFC 1123 label, in lower case because the name
// is also a folder and a Nix attribute in the flake.
func ValidateHostname(name string) error {
	switch {
	case name == "":
		return errors.New("a host name is required: letters, digits and hyphens, e.g. \"beta\"")
	case len(name) > 63:
		return fmt.Errorf("the host name is %d characters; at most 63 are allowed", len(name))
	case strings.ToLower(name) != name && hostnameRe.MatchString(strings.ToLower(name)):
		return fmt.Errorf("use lower case (%q): the name is also a folder and a Nix attribute", strings.ToLower(name))
	case !hostnameRe.MatchString(name):
		return errors.New("a host name has only a-z, 0-9 and hyphens, and does not start or end with a hyphen")
	}
	return nil
}

// ValidateTimezone checks an IANA timezone name such as "Europe/Helsinki".
func ValidateTimezone(tz string) error {
	if tz == "" || tz == "Local" || strings.HasPrefix(tz, "/") || strings.Contains(tz, "..") {
		return errors.New("use an IANA timezone name such as \"UTC\" or \"Europe/Helsinki\"")
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return fmt.Errorf("%q is not a known timezone; use an IANA name such as \"UTC\" or \"Europe/Helsinki\"", tz)
	}
	return nil
}

// ValidateGraffiti checks the block graffiti: at most 32 bytes of printable text.
func ValidateGraffiti(g string) error {
	if !utf8.ValidString(g) {
		return errors.New("the graffiti is not valid UTF-8 text")
	}
	if len(g) > 32 {
		return fmt.Errorf("the graffiti is %d bytes; at most 32 fit in a block (emoji and accents take several bytes)", len(g))
	}
	for _, r := range g {
		if unicode.IsControl(r) {
			return errors.New("the graffiti cannot hold control characters such as newlines or tabs")
		}
	}
	if strings.HasPrefix(g, "-") {
		// Passed as `--graffiti <value>`, a leading dash makes clients such
		// as Lighthouse read the value as another flag and refuse to start.
		return errors.New("the graffiti cannot start with \"-\": the validator client would read it as a flag")
	}
	return nil
}

// ValidateSSHKey checks one public key line as found in authorized_keys.
func ValidateSSHKey(line string) error {
	line = strings.TrimSpace(line)
	if line == "" {
		return errors.New("the key is empty; paste a public key line such as \"ssh-ed25519 AAAA… me@laptop\"")
	}
	if strings.Contains(line, "PRIVATE KEY") {
		return errors.New("this is a private key: never share it; paste the public key (the .pub file) instead")
	}
	if strings.ContainsAny(line, "\r\n") {
		return errors.New("one key per entry: the key spans several lines")
	}
	if _, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(line)); err != nil {
		return errors.New("this is not an SSH public key; paste a line such as \"ssh-ed25519 AAAA… me@laptop\" (from ~/.ssh/id_ed25519.pub)")
	} else if len(rest) > 0 {
		return errors.New("one key per entry: found more than one key")
	}
	return nil
}

// ValidateHostKey checks the node's public SSH host key: ssh-ed25519 only,
// because sops-nix derives the host's age identity from it.
func ValidateHostKey(line string) error {
	if err := ValidateSSHKey(line); err != nil {
		return err
	}
	k, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(line)))
	if k.Type() != ssh.KeyAlgoED25519 {
		return fmt.Errorf("the host key is %s; it must be ssh-ed25519 so the node can derive its age identity from it", k.Type())
	}
	return nil
}

// ValidateAgeRecipient checks an X25519 age recipient ("age1…").
func ValidateAgeRecipient(r string) error {
	r = strings.TrimSpace(r)
	switch {
	case r == "":
		return errors.New("the recipient is empty; paste an age public key (age1…)")
	case strings.HasPrefix(r, "AGE-SECRET-KEY-"):
		return errors.New("this is an age secret key: never share it; paste its public key (age1…, the \"# public key\" line)")
	case strings.HasPrefix(r, "ssh-"):
		return errors.New("this is an SSH key, not an age recipient; convert it to age1… (the wizard can do it) and paste that")
	case strings.HasPrefix(r, "age1pq"):
		return errors.New("post-quantum age recipients cannot share a file with the host's X25519 recipient; use an X25519 key (age-keygen without -pq)")
	}
	if _, err := age.ParseX25519Recipient(r); err != nil {
		return errors.New("this is not an age recipient; paste a public key such as \"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"")
	}
	return nil
}

// ValidateCheckpointURL checks a checkpoint sync endpoint: an https URL.
func ValidateCheckpointURL(u string) error {
	parsed, err := url.Parse(u)
	if err != nil || parsed.Host == "" {
		return errors.New("use the https:// address of a beacon node that serves checkpoints, e.g. https://beaconstate.info")
	}
	if parsed.Scheme != "https" {
		return fmt.Errorf("the checkpoint sync URL must use https (got %q): the checkpoint decides which chain you follow", parsed.Scheme)
	}
	if parsed.User != nil {
		return errors.New("put no credentials in the checkpoint sync URL: the flake is meant to be readable by anyone")
	}
	return nil
}

var relayRe = regexp.MustCompile(`^https://0x[0-9a-fA-F]{96}@[A-Za-z0-9.-]+(:[0-9]+)?(/[^\s]*)?$`)

// ValidateRelay checks a MEV-boost relay URL: https://0x<BLS public key>@host.
func ValidateRelay(u string) error {
	if !relayRe.MatchString(u) {
		return errors.New("a relay URL is https://0x<96 hex digits of the relay's public key>@<host>, as the relay publishes it")
	}
	return nil
}

// ValidateDevice checks the data-disk path: a device under /dev, ideally a
// stable /dev/disk/by-id name.
func ValidateDevice(dev string) error {
	switch {
	case dev == "":
		return errors.New("choose the disk for chain data, preferably by its /dev/disk/by-id/… name (see `homestaker detect`)")
	case !strings.HasPrefix(dev, "/dev/") || strings.Contains(dev, "..") || strings.ContainsAny(dev, " \t\n\"'\\$"):
		return errors.New("the disk must be a device path under /dev, e.g. /dev/disk/by-id/nvme-Samsung_SSD_990_PRO_4TB_S7DNNJ0X123456")
	}
	return nil
}
