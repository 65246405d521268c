package media

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// compressions are the signatures of compressed images people download or
// build (NixOS compresses SD-card images with zstd by default). Written raw,
// such a file boots nothing.
var compressions = []struct {
	name, magic, undo string
}{
	{"zstd", "\x28\xb5\x2f\xfd", "unzstd"},
	{"xz", "\xfd7zXZ\x00", "unxz"},
	{"gzip", "\x1f\x8b", "gunzip"},
	{"bzip2", "BZh", "bunzip2"},
}

// checkImage refuses an image that is missing, not a regular file, empty,
// unreadable or compressed, with a *BadImageError that says what to do.
func checkImage(path string) (fs.FileInfo, error) {
	bad := func(format string, a ...any) (fs.FileInfo, error) {
		return nil, &BadImageError{Path: path, Reason: fmt.Sprintf(format, a...)}
	}
	if path == "" {
		return nil, &BadImageError{Path: `""`, Reason: "is not a file name: give the .iso or .img file to write"}
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return bad("does not exist: give the path of the .iso or .img file to write (homestaker build prints it)")
	case err != nil:
		return bad("cannot be read: %v", err)
	case st.IsDir():
		return bad("is a folder: name the .iso or .img file inside it")
	case !st.Mode().IsRegular():
		return bad("is not a regular file (%s): name the .iso or .img file itself", st.Mode().Type())
	case st.Size() == 0:
		return bad("is empty: it holds no image; build or download it again")
	}
	f, err := os.Open(path)
	if err != nil {
		return bad("cannot be read: %v", err)
	}
	defer f.Close()
	head := make([]byte, 8)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return bad("cannot be read: %v", err)
	}
	for _, c := range compressions {
		if bytes.HasPrefix(head[:n], []byte(c.magic)) {
			return bad("is compressed with %s and would boot nothing written as it is: decompress it first (%s %s) and flash the result",
				c.name, c.undo, path)
		}
	}
	return st, nil
}
