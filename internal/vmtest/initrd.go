package vmtest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// initScript is the guest's /init: load modules, mount the host root, chroot
// into it to run the script, print its exit status, and stop the guest.
const initScript = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /host
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
export PATH=/bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do insmod "/modules/$m" || echo "vmtest: insmod $m failed"; done < /modules.list
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /host || echo "vmtest: cannot mount the host root"
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -t devtmpfs devtmpfs /host/dev
mount -t tmpfs tmpfs /host/tmp
mount -t tmpfs tmpfs /host/run
if [ -e /share.on ]; then
	mkdir -p /host` + GuestShareDir + `
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share /host` + GuestShareDir + `
fi
cp /script.sh /host/tmp/vmtest-script.sh
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
echo /bin/modprobe-host > /proc/sys/kernel/modprobe
if [ -s /extra-modules ]; then chroot /host modprobe -a $(cat /extra-modules) || echo "vmtest: modprobe failed"; fi
echo "VMTEST-BEGIN"
chroot /host /bin/sh -c 'cd /tmp && exec /bin/sh /tmp/vmtest-script.sh' </dev/console >/dev/console 2>&1
rc=$?
sync
echo "` + exitMarker + `$rc"
reboot -f
`

// buildInitrd writes an uncompressed newc cpio archive with busybox, the
// named modules and their dependencies (in load order), /init and the script.
// The extra modules are loaded with the host's modprobe once the host root
// is mounted, which also follows soft dependencies (btrfs needs crc32c).
func buildInitrd(path, modDir string, modules, extra []string, script string, share bool) error {
	order, err := moduleOrder(modDir, modules)
	if err != nil {
		return err
	}
	bb, err := busybox()
	if err != nil {
		return err
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	w := newCpio(bufio.NewWriter(out))
	w.dir("bin")
	w.dir("modules")
	if err := w.fileFrom("bin/busybox", bb, 0o755); err != nil {
		return err
	}
	w.symlink("bin/sh", "busybox")
	// The kernel loads modules on demand (a filesystem's crc32c, say) with
	// the host's modprobe, inside the host root.
	w.file("bin/modprobe-host", []byte("#!/bin/busybox sh\nexec /bin/busybox chroot /host /sbin/modprobe \"$@\"\n"), 0o755)
	w.file("init", []byte(initScript), 0o755)
	w.file("script.sh", []byte(script), 0o755)
	w.file("extra-modules", []byte(strings.Join(extra, " ")), 0o644)
	if share {
		w.file("share.on", nil, 0o644)
	}
	var list strings.Builder
	for _, m := range order {
		name := filepath.Base(m)
		if err := w.fileFrom("modules/"+name, filepath.Join(modDir, m), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(&list, name)
	}
	w.file("modules.list", []byte(list.String()), 0o644)
	if err := w.close(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// moduleOrder resolves module names (as in "virtio_blk") to their paths in
// modules.dep with dependencies first. Built-in modules are skipped.
func moduleOrder(modDir string, names []string) ([]string, error) {
	depText, err := os.ReadFile(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	builtin, _ := os.ReadFile(filepath.Join(modDir, "modules.builtin"))
	deps := map[string][]string{}
	byName := map[string]string{}
	for _, line := range strings.Split(string(depText), "\n") {
		mod, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		byName[modName(mod)] = mod
	}
	isBuiltin := map[string]bool{}
	for _, line := range strings.Split(string(builtin), "\n") {
		if line != "" {
			isBuiltin[modName(line)] = true
		}
	}
	var order []string
	seen := map[string]bool{}
	var visit func(mod string)
	visit = func(mod string) {
		if seen[mod] {
			return
		}
		seen[mod] = true
		// modules.dep lists every (transitive) dependency; load them deepest first.
		for _, d := range deps[mod] {
			visit(d)
		}
		order = append(order, mod)
	}
	for _, n := range names {
		n = strings.ReplaceAll(n, "-", "_")
		if isBuiltin[n] {
			continue
		}
		mod, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("kernel module %s is not in %s/modules.dep", n, modDir)
		}
		if strings.HasSuffix(mod, ".xz") || strings.HasSuffix(mod, ".zst") || strings.HasSuffix(mod, ".gz") {
			return nil, fmt.Errorf("kernel module %s is compressed (%s); the test initrd needs plain .ko files", n, mod)
		}
		visit(mod)
	}
	return order, nil
}

func modName(path string) string {
	base := filepath.Base(path)
	base = base[:strings.Index(base+".ko", ".ko")]
	return strings.ReplaceAll(base, "-", "_")
}

// cpioWriter writes the "newc" cpio format the kernel unpacks as initramfs.
type cpioWriter struct {
	w   *bufio.Writer
	ino int
	err error
}

func newCpio(w *bufio.Writer) *cpioWriter { return &cpioWriter{w: w, ino: 1} }

func (c *cpioWriter) header(name string, mode uint32, size int) {
	if c.err != nil {
		return
	}
	c.ino++
	_, c.err = fmt.Fprintf(c.w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	if c.err == nil {
		_, c.err = c.w.WriteString(name + "\x00")
	}
	c.pad(110 + len(name) + 1)
}

func (c *cpioWriter) pad(n int) {
	if c.err == nil && n%4 != 0 {
		_, c.err = c.w.Write(make([]byte, 4-n%4))
	}
}

func (c *cpioWriter) dir(name string) { c.header(name, 0o040755, 0) }

func (c *cpioWriter) file(name string, data []byte, perm uint32) {
	c.header(name, 0o100000|perm, len(data))
	if c.err == nil {
		_, c.err = c.w.Write(data)
	}
	c.pad(len(data))
}

func (c *cpioWriter) fileFrom(name, src string, perm uint32) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	c.header(name, 0o100000|perm, int(st.Size()))
	if c.err == nil {
		_, c.err = io.Copy(c.w, f)
	}
	c.pad(int(st.Size()))
	return c.err
}

func (c *cpioWriter) symlink(name, target string) {
	c.header(name, 0o120777, len(target))
	if c.err == nil {
		_, c.err = c.w.WriteString(target)
	}
	c.pad(len(target))
}

func (c *cpioWriter) close() error {
	c.header("TRAILER!!!", 0, 0)
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}
