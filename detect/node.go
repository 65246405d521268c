package detect

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
)

// Running is what the running system says it is: its /etc/os-release ID
// and its kernel's host name.
type Running struct {
	OSID, Hostname string
}

// ReadRunning reads /etc/os-release and /proc/sys/kernel/hostname under
// root ("" is /); what cannot be read stays empty.
func ReadRunning(root string) Running {
	if root == "" {
		root = "/"
	}
	var r Running
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		data, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "ID="); ok {
				r.OSID = strings.Trim(v, `"'`)
			}
		}
		break
	}
	if data, err := os.ReadFile(filepath.Join(root, "proc/sys/kernel/hostname")); err == nil {
		r.Hostname = strings.TrimSpace(string(data))
	}
	return r
}

// IsNode reports whether this system is the NixOS node named host: NixOS
// by its os-release, with that host name.
func (r Running) IsNode(host string) bool {
	return r.OSID == "nixos" && host != "" && r.Hostname == host
}
