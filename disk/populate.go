package disk

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// maxHostKeyBytes bounds the host key file: an OpenSSH ed25519 private key is
// about 400 bytes.
const maxHostKeyBytes = 16 << 10

// checkHostKey makes sure path is a small regular file before it is copied
// onto the data disk. It never reads the key into an error message.
func checkHostKey(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("host key %s: %w", path, err)
	}
	if !st.Mode().IsRegular() || st.Size() == 0 || st.Size() > maxHostKeyBytes {
		return fmt.Errorf("host key %s: not an SSH private key file (regular, 1 byte to 16 KiB)", path)
	}
	return nil
}

// stage builds the folder tree of fsys under dir, with the host key (0600)
// and its .pub (0644) in secrets/ssh when hostKey is set. mke2fs -d and
// btrfs population copy it; for xfs it supplies the key file.
func stage(dir string, fsys Filesystem, hostKey string) error {
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	for _, d := range fsys.Folders {
		p := filepath.Join(dir, filepath.FromSlash(d.Path))
		if err := os.Mkdir(p, d.Mode); err != nil {
			return fmt.Errorf("create folder %s: %w", d.Path, err)
		}
		if err := os.Chmod(p, d.Mode); err != nil { // the umask trimmed it
			return err
		}
	}
	if hostKey == "" {
		return nil
	}
	if err := copyFile(hostKey, filepath.Join(dir, filepath.FromSlash(SSHHostKeyPath)), 0o600); err != nil {
		return err
	}
	if _, err := os.Stat(hostKey + ".pub"); err == nil {
		return copyFile(hostKey+".pub", filepath.Join(dir, filepath.FromSlash(SSHHostKeyPath+".pub")), 0o644)
	}
	return nil
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if _, err := io.Copy(out, io.LimitReader(in, maxHostKeyBytes)); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := out.Chmod(mode); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// xfsProtofile describes the staged tree in mkfs.xfs's prototype language
// (mkfs.xfs -p): every entry owned by root, with the folder modes of fsys.
func xfsProtofile(stageDir string, fsys Filesystem) (string, error) {
	if strings.ContainsAny(stageDir, " \t\n:$") {
		return "", fmt.Errorf("staging folder %q contains a space, colon or $, which mkfs.xfs prototype files cannot hold; set TMPDIR to a plain path", stageDir)
	}
	var b strings.Builder
	b.WriteString("homestaker\n0 0\nd--755 0 0\n")
	var walk func(rel string, depth int) error
	walk = func(rel string, depth int) error {
		entries, err := os.ReadDir(filepath.Join(stageDir, rel))
		if err != nil {
			return err
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
		indent := strings.Repeat(" ", depth)
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				return err
			}
			perm := fmt.Sprintf("%03o", uint32(info.Mode().Perm()))
			p := filepath.Join(rel, e.Name())
			switch {
			case info.IsDir():
				fmt.Fprintf(&b, "%s%s d--%s 0 0\n", indent, e.Name(), perm)
				if err := walk(p, depth+1); err != nil {
					return err
				}
				fmt.Fprintf(&b, "%s$\n", indent)
			case info.Mode().IsRegular():
				fmt.Fprintf(&b, "%s%s ---%s 0 0 %s\n", indent, e.Name(), perm, filepath.Join(stageDir, p))
			default:
				return fmt.Errorf("staged %s is neither a folder nor a file", p)
			}
		}
		return nil
	}
	if err := walk("", 1); err != nil {
		return "", err
	}
	b.WriteString("$\n")
	return b.String(), nil
}

// populateMounted creates fsys's folders (subvolumes with the btrfs tool) and
// copies the staged host key into a filesystem mounted at mnt.
func populateMounted(mnt string, fsys Filesystem, stageDir string) error {
	for _, d := range fsys.Folders {
		p := filepath.Join(mnt, filepath.FromSlash(d.Path))
		if !d.Subvolume {
			if err := os.Mkdir(p, d.Mode); err != nil {
				return fmt.Errorf("create folder %s: %w", d.Path, err)
			}
		}
		if err := os.Chmod(p, d.Mode); err != nil {
			return fmt.Errorf("set mode of %s: %w", d.Path, err)
		}
	}
	for _, rel := range []string{SSHHostKeyPath, SSHHostKeyPath + ".pub"} {
		src := filepath.Join(stageDir, filepath.FromSlash(rel))
		st, err := os.Stat(src)
		if err != nil {
			continue
		}
		if err := copyFile(src, filepath.Join(mnt, filepath.FromSlash(rel)), st.Mode().Perm()); err != nil {
			return err
		}
	}
	return os.Chmod(mnt, 0o755)
}
