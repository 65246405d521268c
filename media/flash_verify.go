package media

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// digests are the SHA-256 of the image and of the same number of bytes read
// back from the device.
type digests struct {
	Image, Device string
}

// verify hashes size bytes of src and of dev side by side, one buffer each,
// so the two reads and the two hashes run in parallel. dev is read in whole
// sectors (O_DIRECT); only the image's bytes count. A device read error is
// returned as is; the caller turns it into a *VerifyError.
func (s *stream) verify(ctx context.Context, src, dev io.ReaderAt, size int64) (digests, error) {
	type result struct {
		sum string
		err error
	}
	imageDone := make(chan result, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		sum, err := hashRange(ctx, src, size, s.bufs[0], 1, nil)
		if err != nil {
			err = &imageReadError{err}
		}
		imageDone <- result{sum, err}
	}()
	devSum, devErr := hashRange(ctx, dev, size, s.bufs[1], s.sector, s.progress)
	if devErr != nil {
		cancel()
	}
	img := <-imageDone
	if devErr != nil {
		return digests{}, devErr
	}
	if img.err != nil {
		return digests{}, img.err
	}
	return digests{Image: img.sum, Device: devSum}, nil
}

// imageReadError is a failure to read the image (not the device) during the read-back.
type imageReadError struct{ err error }

func (e *imageReadError) Error() string { return "read the image back: " + e.err.Error() }
func (e *imageReadError) Unwrap() error { return e.err }

// hashRange returns the hex SHA-256 of r's first size bytes, read into buf
// in reads of whole units.
func hashRange(ctx context.Context, r io.ReaderAt, size int64, buf []byte, unit int64, progress func(int64)) (string, error) {
	h := sha256.New()
	for off := int64(0); off < size; off += int64(len(buf)) {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		want := min(int64(len(buf)), size-off)
		n, err := r.ReadAt(buf[:roundUp(want, unit)], off)
		if int64(n) < want {
			if err == nil || errors.Is(err, io.EOF) {
				err = fmt.Errorf("it ended at byte %d, before the image's end at byte %d", off+int64(n), size)
			}
			return "", fmt.Errorf("at byte %d: %w", off+int64(n), err)
		}
		h.Write(buf[:want])
		if progress != nil {
			progress(off + want)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
