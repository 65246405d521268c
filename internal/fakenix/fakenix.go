// Package fakenix makes, for tests, a Nix release tarball laid out like the
// official nix-<version>-<system>.tar.xz (nothing can be downloaded in
// tests): a top folder with install, .reginfo and store/, whose nix store
// path holds a shell-script stand-in for bin/nix.
package fakenix

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"path"

	"github.com/ulikunitz/xz"
)

const (
	Version = "2.28.3"
	System  = "x86_64-linux"
	NixPath = "/nix/store/cgjd0gajsh9zwsbkfb7f6zs2p2rsw4gg-nix-2.28.3"
	CACert  = "/nix/store/8ldx0fz4cmxfc3wzi5kydzbh5mfrxyw1-nss-cacert-3.108"
	Reginfo = NixPath + "\n\n0\n" + CACert + "\n\n0\n"
)

// Tarball returns the xz-compressed tarball; extra entries (with the body
// "x") are appended as given.
func Tarball(extra ...tar.Header) ([]byte, error) {
	top := "nix-" + Version + "-" + System + "/"
	nix := top + "store/" + path.Base(NixPath) + "/"
	ca := top + "store/" + path.Base(CACert) + "/"
	var buf bytes.Buffer
	xw, err := xz.NewWriter(&buf)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(xw)
	var werr error
	add := func(h tar.Header, body string) {
		if werr != nil {
			return
		}
		h.Size = int64(len(body))
		if werr = tw.WriteHeader(&h); werr == nil {
			_, werr = io.WriteString(tw, body)
		}
	}
	dir := func(name string) { add(tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o555}, "") }
	file := func(name string, mode int64, body string) {
		add(tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode}, body)
	}
	link := func(name, to string) { add(tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: to}, "") }
	dir(top)
	file(top+"install", 0o555, "#!/bin/sh\n# stand-in for install-nix-from-tarball.sh: homestaker reads it, never runs it\nset -e\ndest=\"/nix\"\nnix=\""+NixPath+"\"\ncacert=\""+CACert+"\"\necho must not run >&2; exit 1\n")
	file(top+".reginfo", 0o444, Reginfo)
	dir(top + "store/")
	dir(nix)
	dir(nix + "bin/")
	file(nix+"bin/nix", 0o555, "#!/bin/sh\necho 'nix (Nix) "+Version+"'\n")
	link(nix+"bin/nix-store", "nix")
	link(nix+"bin/nix-env", "nix")
	dir(nix + "share/")
	file(nix+"share/README", 0o444, "data\n")
	dir(ca)
	file(ca+"ca-bundle.crt", 0o444, "-----BEGIN CERTIFICATE-----\n")
	for _, h := range extra {
		add(h, "x")
	}
	if werr != nil {
		return nil, werr
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := xw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// SHA256 is the hex SHA-256 of b.
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
