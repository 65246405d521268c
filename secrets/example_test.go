package secrets_test

import (
	"fmt"
	"os"
	"path/filepath"

	"filippo.io/age"
	"github.com/homestaker/homestaker/secrets"
)

// How render sets up one host's keys and secrets. privateDir is --private,
// flake is --out; admins holds the plan's admin recipients (age1… or
// ssh-ed25519 keys).
func Example() {
	privateDir, _ := os.MkdirTemp("", "private")
	flake, _ := os.MkdirTemp("", "flake")
	defer os.RemoveAll(privateDir)
	defer os.RemoveAll(flake)
	host := "node1"
	var admins []string

	hk, _, err := secrets.EnsureHostKey(privateDir, host)
	if err != nil {
		panic(err)
	}
	if len(admins) == 0 {
		// No admin key given: generate one; tell the user to copy it off the machine.
		r, path, created, err := secrets.EnsureAdminIdentity(privateDir)
		if err != nil {
			panic(err)
		}
		if created {
			fmt.Println("admin key written to", filepath.Base(path), "- copy it off this machine")
		}
		admins = append(admins, r)
	}
	recipients := []string{hk.Recipient}
	for _, a := range admins {
		r, err := secrets.AdminRecipient(a) // age1… as is, ssh-ed25519 converted
		if err != nil {
			panic(err)
		}
		recipients = append(recipients, r)
	}

	id, err := hk.Identity() // opens an existing file; stays in memory
	if err != nil {
		panic(err)
	}
	secretsPath := filepath.Join(flake, filepath.FromSlash(secrets.SecretsPath(host)))
	changed, err := secrets.EnsureSecretsFile(secretsPath, recipients, []age.Identity{id},
		map[string]secrets.Generator{"jwt": secrets.NewJWTSecret})
	if err != nil {
		panic(err)
	}
	fmt.Println("secrets.yaml written:", changed)

	cfg := secrets.RenderSopsConfig([]secrets.HostRule{{Host: host, Recipients: recipients}})
	if err := secrets.WriteFileAtomic(filepath.Join(flake, ".sops.yaml"), cfg, 0o644); err != nil {
		panic(err)
	}
	line, err := hk.KnownHostsLine(host, "192.0.2.10")
	if err != nil {
		panic(err)
	}
	_ = line // written next to the flake and shown in the review

	// Rendering again changes nothing.
	changed, _ = secrets.EnsureSecretsFile(secretsPath, recipients, []age.Identity{id},
		map[string]secrets.Generator{"jwt": secrets.NewJWTSecret})
	fmt.Println("second render wrote:", changed)
	// Output:
	// admin key written to keys.txt - copy it off this machine
	// secrets.yaml written: true
	// second render wrote: false
}
