package xfer

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

var bigSize = flag.Int64("xfer.bigsize", 1<<30, "file size for BenchmarkPeakMemory")

const benchSize = 32 << 20

// BenchmarkIoCopy is the anchor: io.Copy over the same in-memory stream.
func BenchmarkIoCopy(b *testing.B) {
	data := randBytes(30, benchSize)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		a, c := streamPair()
		done := make(chan struct{})
		go func() { io.Copy(io.Discard, c); close(done) }()
		io.Copy(a, bytes.NewReader(data))
		a.CloseWrite()
		<-done
	}
}

// anchors measures, in the running process, the two yardsticks a transfer
// is reported against: io.Copy of benchSize bytes over the in-memory stream,
// and one SHA-256 pass over them. Each is the best of a few runs.
func anchors(data []byte) (copyTime, shaTime time.Duration) {
	copyTime, shaTime = time.Hour, time.Hour
	for range 5 {
		start := time.Now()
		a, c := streamPair()
		done := make(chan struct{})
		go func() { io.Copy(io.Discard, c); close(done) }()
		io.Copy(a, bytes.NewReader(data))
		a.CloseWrite()
		<-done
		copyTime = min(copyTime, time.Since(start))
		start = time.Now()
		sha256.Sum256(data)
		shaTime = min(shaTime, time.Since(start))
	}
	return copyTime, shaTime
}

// BenchmarkTransfer sends one file with Send and Receive, hashing, writing
// to disk and verifying, over the in-memory stream. Besides MB/s it reports
// the time per transfer as a multiple of two anchors measured in the same
// run: x-iocopy (io.Copy of the same bytes over the same stream) and
// x-sha256 (one SHA-256 pass over them; each side hashes every byte once, so
// at least 2 on a machine with the cores to spare, more on fewer).
func BenchmarkTransfer(b *testing.B) {
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog, 0123456789\n"), benchSize/56+1)[:benchSize]
	for _, c := range []struct {
		name     string
		data     []byte
		compress bool
	}{
		{"random", randBytes(31, benchSize), false},
		{"random-zstd", randBytes(31, benchSize), true},
		{"text-zstd", text, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			src := b.TempDir()
			writeFile(b, filepath.Join(src, "f"), c.data, 0o644)
			b.SetBytes(benchSize)
			b.ReportAllocs()
			copyTime, shaTime := anchors(c.data)
			var wire int64
			for b.Loop() {
				dst := b.TempDir()
				o := run(b, []string{filepath.Join(src, "f")}, dst, SendOptions{Compress: c.compress}, ReceiveOptions{})
				if o.serr != nil || o.rerr != nil {
					b.Fatal(o.serr, o.rerr)
				}
				wire = o.sres.WireBytes
				os.RemoveAll(dst)
			}
			b.ReportMetric(float64(wire)/benchSize, "wire/byte")
			per := float64(b.Elapsed()) / float64(b.N)
			b.ReportMetric(per/float64(copyTime), "x-iocopy")
			b.ReportMetric(per/float64(shaTime), "x-sha256")
		})
	}
}

// BenchmarkPeakMemory sends a large file (1 GiB by default, see
// -xfer.bigsize) and reports the peak heap in use during the transfer.
func BenchmarkPeakMemory(b *testing.B) {
	src := b.TempDir()
	path := filepath.Join(src, "big")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	// A sparse file: reading it costs no disk, the transfer is the same.
	if err := f.Truncate(*bigSize); err != nil {
		b.Fatal(err)
	}
	f.Close()
	b.SetBytes(*bigSize)
	var peakHeap, peakSys uint64
	for b.Loop() {
		dst := b.TempDir()
		runtime.GC()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				peakHeap = max(peakHeap, ms.HeapInuse+ms.StackInuse)
				peakSys = max(peakSys, ms.Sys)
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		o := run(b, []string{path}, dst, SendOptions{}, ReceiveOptions{})
		close(stop)
		wg.Wait()
		if o.serr != nil || o.rerr != nil {
			b.Fatal(o.serr, o.rerr)
		}
		os.RemoveAll(dst)
	}
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(peakSys)/(1<<20), "peak-sys-MiB")
}
