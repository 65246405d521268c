package boot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/homestaker/homestaker/disk"
	"github.com/homestaker/homestaker/netstate"
)

func parseAuthorizedKey(s string) (ssh.PublicKey, string, []string, []byte, error) {
	return ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(s)))
}

// KnownHostsPath is where the node's known_hosts line sits in the carry-over
// archive (and so in the node's initrd root).
const KnownHostsPath = "homestaker/carry/known_hosts"

// Carry is what a kexec hands to the node, ready to load.
type Carry struct {
	// Initrd is the copy of the node's initrd with the carry-over archive
	// appended: the initrd to load.
	Initrd string
	// Files are the archive's files.
	Files []CarryFile
	// ArchiveBytes is the archive's size.
	ArchiveBytes int
}

// PrepareCarry writes the carry-over archive (the carried network state
// and, when known, the node's known_hosts line) and appends it to a copy
// of the initrd in req.TempDir.
func (k *Kexec) PrepareCarry(req KexecRequest, pre Preflight) (Carry, error) {
	network, err := pre.Carried.CarryJSON()
	if err != nil {
		return Carry{}, fmt.Errorf("encode the carried network: %w", err)
	}
	files := []CarryFile{{Path: netstate.CarryPath, Data: network}}
	if kh := strings.TrimSpace(req.KnownHosts); kh != "" {
		files = append(files, CarryFile{Path: KnownHostsPath, Data: []byte(kh + "\n")})
	}
	var buf bytes.Buffer
	if err := WriteCarryArchive(&buf, files, k.now()); err != nil {
		return Carry{}, err
	}
	if req.TempDir == "" {
		return Carry{}, errors.New("no folder for the initrd copy (KexecRequest.TempDir)")
	}
	initrd, err := AppendCarry(req.Image.Initrd, req.TempDir, buf.Bytes())
	if err != nil {
		return Carry{}, err
	}
	return Carry{Initrd: initrd, Files: files, ArchiveBytes: buf.Len()}, nil
}

// LoadError is a failed kernel load, with what it means for the user.
type LoadError struct {
	// Call is the call that failed, with its arguments.
	Call string
	Err  error
	// Meaning says what the error means here; Fix what to do.
	Meaning, Fix string
}

func (e *LoadError) Error() string {
	return fmt.Sprintf("%s: %v: %s %s", e.Call, e.Err, e.Meaning, e.Fix)
}

func (e *LoadError) Unwrap() error { return e.Err }

// errNoFileLoad marks a kernel without kexec_file_load.
var errNoFileLoad = errors.New("kexec_file_load is not available")

// Load loads the kernel, initrd and command line with kexec_file_load.
// A kernel without kexec_file_load (ENOSYS, EOPNOTSUPP) is handed to
// kexec-tools' `kexec -c -l`, which uses the older kexec_load, when it is
// installed. Errors are *LoadError with a sentence for the user.
func (k *Kexec) Load(ctx context.Context, img KexecImage) (method string, err error) {
	kf, err := os.Open(img.Kernel)
	if err != nil {
		return "", fmt.Errorf("open the kernel: %w", err)
	}
	defer kf.Close()
	inf, err := os.Open(img.Initrd)
	if err != nil {
		return "", fmt.Errorf("open the initrd: %w", err)
	}
	defer inf.Close()
	call := fmt.Sprintf("kexec_file_load(kernel=%s, initrd=%s)", img.Kernel, img.Initrd)
	err = k.sys().KexecFileLoad(int(kf.Fd()), int(inf.Fd()), img.Cmdline, 0)
	if err == nil {
		return "kexec_file_load", nil
	}
	le := explainLoadError(call, err)
	if !errors.Is(le, errNoFileLoad) {
		return "", le
	}
	lookPath := k.LookPath
	if lookPath == nil {
		lookPath = exec.LookPath
	}
	tool, lerr := lookPath("kexec")
	if lerr != nil {
		return "", le
	}
	var run Runner = disk.ExecRunner{}
	if k.Run != nil {
		run = k.Run
	}
	args := []string{"-c", "-l", img.Kernel, "--initrd=" + img.Initrd, "--command-line=" + img.Cmdline}
	out, rerr := run.Run(ctx, append([]string{tool}, args...))
	if rerr != nil {
		return "", &LoadError{
			Call:    tool + " " + strings.Join(args[:3], " ") + " …",
			Err:     rerr,
			Meaning: "kexec-tools could not load the kernel either (" + strings.TrimSpace(lastLines(string(out), 3)) + ").",
			Fix:     "Boot the node from its ISO on a USB stick instead.",
		}
	}
	return "kexec_load (kexec-tools)", nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}

// explainLoadError turns a kexec_file_load errno into a LoadError.
func explainLoadError(call string, err error) *LoadError {
	le := &LoadError{Call: call, Err: err}
	var errno unix.Errno
	if !errors.As(err, &errno) {
		le.Meaning = "the kernel could not be loaded."
		return le
	}
	switch errno {
	case unix.EPERM:
		le.Meaning = "the kernel does not permit kexec: it is locked down (Secure Boot), or kexec was disabled (kernel.kexec_load_disabled)."
		le.Fix = "Disable Secure Boot in the firmware setup and boot the rescue system again."
	case unix.EKEYREJECTED, unix.EBADMSG, unix.ENOKEY:
		le.Meaning = "the running kernel demands a signed kernel (Secure Boot), and the node's kernel is not signed."
		le.Fix = "Disable Secure Boot in the firmware setup and boot the rescue system again."
	case unix.ENOSYS, unix.EOPNOTSUPP:
		le.Err = fmt.Errorf("%w (%w)", errNoFileLoad, err)
		le.Meaning = "the running kernel has no kexec_file_load (Linux before 3.17, or built without KEXEC_FILE)."
		le.Fix = "Install kexec-tools (apt install kexec-tools) so homestaker can use the older kexec_load, or boot the node's ISO from a USB stick."
	case unix.ENOEXEC:
		le.Meaning = "the running kernel does not recognise the image as a kernel it can boot (wrong format or architecture)."
		le.Fix = "Check that the node was built for this machine's architecture (host.arch) and build again."
	case unix.ENOMEM:
		le.Meaning = "the kernel ran out of memory while loading the image."
		le.Fix = "Free memory (stop services, empty tmpfs folders) or use a machine with more RAM."
	case unix.EFBIG:
		le.Meaning = "the initrd is larger than the 2 GiB the kernel reads."
		le.Fix = "Make the system smaller and build again."
	case unix.EBUSY:
		le.Meaning = "another kexec is being loaded or run right now."
		le.Fix = "Wait for it to finish, then try again."
	case unix.EINVAL:
		le.Meaning = "the kernel rejected the image or the command line as invalid."
		le.Fix = "Build the host again; if it persists, the kernel and this rescue system do not fit together."
	default:
		le.Meaning = "the kernel could not be loaded."
	}
	return le
}

// Jump waits delay, flushes the filesystems and starts the loaded kernel.
// It returns only when the reboot call fails.
func (k *Kexec) Jump(ctx context.Context, delay time.Duration) error {
	sleep := k.Sleep
	if sleep == nil {
		sleep = func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if err := sleep(ctx, delay); err != nil {
		return err
	}
	s := k.sys()
	s.Sync()
	if err := s.Reboot(unix.LINUX_REBOOT_CMD_KEXEC); err != nil {
		return fmt.Errorf("reboot(LINUX_REBOOT_CMD_KEXEC): %w; the node's kernel is still loaded: 'kexec -e' starts it", err)
	}
	return errors.New("reboot(LINUX_REBOOT_CMD_KEXEC) returned without starting the new kernel")
}

// HostKeyFingerprint returns the SHA256 fingerprint ("SHA256:…") and key
// type of the host key in a known_hosts line or public key line.
func HostKeyFingerprint(line string) (fingerprint, keyType string, err error) {
	line = strings.TrimSpace(line)
	if _, _, key, _, _, err := ssh.ParseKnownHosts([]byte(line)); err == nil {
		return ssh.FingerprintSHA256(key), key.Type(), nil
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return "", "", fmt.Errorf("not a known_hosts line or public key: %w", err)
	}
	return ssh.FingerprintSHA256(key), key.Type(), nil
}

// WriteReconnect tells the user how to reach the node after the jump.
func WriteReconnect(w io.Writer, carried netstate.State, knownHosts string) {
	addrs := CarriedAddresses(carried)
	fmt.Fprintln(w, "After the jump, reconnect with:")
	if len(addrs) > 0 {
		fmt.Fprintf(w, "  ssh root@%s\n", addrs[0])
	} else {
		fmt.Fprintln(w, "  ssh root@<the address DHCP gives the node>")
	}
	fp, typ, err := HostKeyFingerprint(knownHosts)
	if knownHosts == "" || err != nil {
		writeWrapped(w, "", "", "The node's host key is not known here: check the fingerprint ssh shows against the node's key before you answer yes.")
		return
	}
	fmt.Fprintf(w, "The node's host key (%s) has the fingerprint\n  %s\n", typ, fp)
	target := "<address>"
	if len(addrs) > 0 {
		target = addrs[0]
	}
	writeWrapped(w, "", "", fmt.Sprintf("It differs from this rescue system's key, so ssh will warn that the host key changed: remove the old entry with 'ssh-keygen -R %s', connect again, and check the fingerprint matches.", target))
}
