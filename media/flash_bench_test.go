package media

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkFlash flashes a 256 MiB image to a loop device (needs root) and
// reports the write and read-back throughputs separately. The loop device's
// file is written once before timing, so the file system's block allocation
// is not measured.
func BenchmarkFlash(b *testing.B) {
	const size = 256 << 20
	dev, backing := loopStick(b, size+(16<<20), 0xAA)
	iso := filepath.Join(b.TempDir(), "nixos.iso")
	if err := os.WriteFile(iso, randomImage(b, size), 0o644); err != nil {
		b.Fatal(err)
	}
	f := &Flasher{LoopBackingFile: backing}
	job, err := f.Prepare(iso, dev)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Flash(context.Background(), job, FlashOptions{}); err != nil { // warm-up
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	var write, verify float64
	for b.Loop() {
		res, err := f.Flash(context.Background(), job, FlashOptions{})
		if err != nil {
			b.Fatal(err)
		}
		write += res.Write.Seconds()
		verify += res.Verify.Seconds()
	}
	b.ReportMetric(float64(b.N)*size/1e6/write, "write-MB/s")
	b.ReportMetric(float64(b.N)*size/1e6/verify, "verify-MB/s")
}
