package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"unsafe"
)

// bufferAlign is the memory alignment of flash buffers: O_DIRECT needs the
// buffer aligned to the device's logical block size, and 4096 covers the
// sector sizes of USB sticks, SD cards and NVMe drives.
const bufferAlign = 4096

// alignedBuffer returns size bytes whose first byte sits on an align boundary.
func alignedBuffer(size, align int) []byte {
	b := make([]byte, size+align)
	off := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) % uintptr(align)); r != 0 {
		off = align - r
	}
	return b[off : off+size : off+size]
}

// stream is the write half of a flash: it copies an image to a device in
// large blocks through two buffers, so reading the next block overlaps
// writing the current one, and memory stays at two blocks whatever the
// image's size.
type stream struct {
	bufs [2][]byte
	// sector is the device's logical sector size: the last block is padded
	// with zeros to a whole sector, as O_DIRECT requires.
	sector int64
	// progress is told the image bytes written so far after every write.
	progress func(done int64)
}

// span is a range of the image: Off and N in bytes.
type span struct{ Off, N int64 }

// writeOrder is the order in which the image's bytes reach the device: from
// its second MiB to its end in blocks, then its first MiB.
func writeOrder(size int64, block int) []span {
	head := min(int64(flashHead), size)
	var order []span
	for off := head; off < size; off += int64(block) {
		order = append(order, span{off, min(int64(block), size-off)})
	}
	return append(order, span{0, head})
}

// clearSpans are the device ranges zeroed before the image is written: the
// first MiB (so an interrupted write leaves no partition table or boot code
// behind, old or new) and the last MiB beyond the image (where an old
// backup GPT would otherwise describe partitions that are gone).
func clearSpans(size, devSize, sector int64) []span {
	head := roundUp(min(int64(flashHead), size), sector)
	spans := []span{{0, head}}
	if start := max(roundUp(size, sector), devSize-flashHead); start < devSize {
		spans = append(spans, span{start, devSize - start})
	}
	return spans
}

// write copies size bytes of src to dst, which holds devSize bytes: it
// clears clearSpans, then writes the image in writeOrder, the first MiB
// last. It returns the image bytes written; when it stops early (ctx, an
// error) dst is left with its first MiB cleared.
func (s *stream) write(ctx context.Context, src io.ReaderAt, size int64, dst io.WriterAt, devSize int64) (int64, error) {
	zero := s.bufs[0]
	clear(zero)
	// The clears are not interrupted: once the device is opened, an
	// interrupted flash always leaves it unbootable rather than half-old.
	for _, c := range clearSpans(size, devSize, s.sector) {
		if _, err := dst.WriteAt(zero[:c.N], c.Off); err != nil {
			return 0, fmt.Errorf("clear bytes %d–%d: %w", c.Off, c.Off+c.N, err)
		}
	}

	type block struct {
		buf []byte
		span
	}
	free := make(chan []byte, len(s.bufs))
	for _, b := range s.bufs {
		free <- b
	}
	filled := make(chan block, len(s.bufs))
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	// The reader fills a free buffer with the next block while the writer
	// below writes the other one.
	go func() {
		defer close(filled)
		for _, sp := range writeOrder(size, len(s.bufs[0])) {
			var buf []byte
			select {
			case buf = <-free:
			case <-stop:
				return
			}
			if n, err := src.ReadAt(buf[:sp.N], sp.Off); int64(n) != sp.N {
				if err == nil || errors.Is(err, io.EOF) {
					err = fmt.Errorf("it ended at byte %d instead of %d: did it change while being written?", sp.Off+int64(n), size)
				}
				readErr <- fmt.Errorf("read the image at byte %d: %w", sp.Off, err)
				return
			}
			select {
			case filled <- block{buf, sp}:
			case <-stop:
				return
			}
		}
	}()
	defer func() {
		close(stop)
		for range filled { // let the reader finish
		}
	}()

	var done int64
	for b := range filled {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		n := roundUp(b.N, s.sector) // zero-pad the image's last partial sector
		clear(b.buf[b.N:n])
		if _, err := dst.WriteAt(b.buf[:n], b.Off); err != nil {
			return done, fmt.Errorf("write bytes %d–%d: %w", b.Off, b.Off+n, err)
		}
		done += b.N
		if s.progress != nil {
			s.progress(done)
		}
		free <- b.buf
	}
	select {
	case err := <-readErr:
		return done, err
	default:
	}
	if done != size {
		return done, fmt.Errorf("wrote %d of %d bytes", done, size)
	}
	return done, nil
}
