package xfer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// eioAt fails every read past off.
type eioAt struct {
	r   io.ReaderAt
	off int64
}

func (e eioAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > e.off {
		return 0, syscall.EIO
	}
	return e.r.ReadAt(p, off)
}

// chunkyBytes returns n bytes whose chunks all differ, faster to make than
// randBytes for files of many chunks.
func chunkyBytes(n int) []byte {
	block := randBytes(uint64(n), ChunkSize)
	b := bytes.Repeat(block, n/ChunkSize+1)[:n]
	for off := 0; off+1 < n; off += ChunkSize {
		b[off], b[off+1] = byte(off/ChunkSize), byte(off/ChunkSize>>8)
	}
	return b
}

func TestFileRootParallel(t *testing.T) {
	sizes := []int{2 * ChunkSize, 2*ChunkSize + 1, 5*ChunkSize - 3, hashSpan * ChunkSize, (hashSpan+1)*ChunkSize + 7}
	for _, n := range sizes {
		data := chunkyBytes(n)
		alg := allHashes[n%len(allHashes)]
		want := specRoot(alg, data)
		for _, workers := range []int{1, 2, 3} {
			root, got, err := fileRootParallel(context.Background(), alg, bytes.NewReader(data), int64(n), workers)
			if err != nil || got != int64(n) || root != want {
				t.Errorf("%d bytes, %d workers: root %x of %d bytes, %v; want %x of %d", n, workers, root, got, err, want, n)
			}
		}
		// The file is shorter than announced: fewer bytes come back.
		if _, got, err := fileRootParallel(context.Background(), alg, bytes.NewReader(data), int64(n)+1, 2); err != nil || got == int64(n)+1 {
			t.Errorf("%d bytes announced as %d: %d bytes, %v; want fewer and no error", n, n+1, got, err)
		}
		// The file is longer than announced: more bytes come back.
		if _, got, err := fileRootParallel(context.Background(), alg, bytes.NewReader(data), int64(n)-1, 2); err != nil || got != int64(n) {
			t.Errorf("%d bytes announced as %d: %d bytes, %v; want %d", n, n-1, got, err, n)
		}
	}
	data := randBytes(1, 4*ChunkSize)
	if _, _, err := fileRootParallel(context.Background(), hashBLAKE3, eioAt{bytes.NewReader(data), 3 * ChunkSize}, int64(len(data)), 2); !errors.Is(err, syscall.EIO) {
		t.Errorf("read error: %v, want EIO", err)
	}
}

// TestHashFileParallel checks that the manifest's hash of a file of many
// chunks is the spec's root whatever the number of hashing goroutines.
func TestHashFileParallel(t *testing.T) {
	data := randBytes(7, 9*ChunkSize+11)
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, alg := range allHashes {
		var e entry
		if err := hashFile(context.Background(), alg, path, &e, make([]byte, ChunkSize), nil); err != nil {
			t.Fatal(err)
		}
		if e.Size != int64(len(data)) || e.Root != specRoot(alg, data) {
			t.Errorf("hashFile %v: size %d root %x; want %d %x", alg, e.Size, e.Root, len(data), specRoot(alg, data))
		}
	}
}

// BenchmarkChunkHash hashes one chunk with each hash the package knows;
// SHA-256 is the anchor (x-sha256: how many times its speed).
func BenchmarkChunkHash(b *testing.B) {
	p := chunkyBytes(ChunkSize)
	var anchor float64
	for _, alg := range allHashes {
		b.Run(alg.String(), func(b *testing.B) {
			b.SetBytes(ChunkSize)
			b.ReportAllocs()
			for b.Loop() {
				alg.sum(p)
			}
			per := b.Elapsed().Seconds() / float64(b.N)
			if alg == hashSHA256 {
				anchor = per
			} else if anchor > 0 {
				b.ReportMetric(anchor/per, "x-sha256")
			}
		})
	}
}

// BenchmarkHashFile hashes a 32 MiB file (in the page cache) for the
// manifest: one goroutine (fileRoot, the anchor) against hashWorkers.
func BenchmarkHashFile(b *testing.B) {
	const n = 32 << 20
	_, f := openChunky(b, n)
	buf := make([]byte, ChunkSize)
	alg := localHashes()[0]
	b.Logf("hash: %v", alg)
	b.Run("serial", func(b *testing.B) {
		b.SetBytes(n)
		for b.Loop() {
			if _, got, err := fileRoot(alg, io.NewSectionReader(f, 0, n), buf); err != nil || got != n {
				b.Fatal(got, err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetBytes(n)
		b.ReportMetric(float64(hashWorkers()), "workers")
		for b.Loop() {
			if _, got, err := fileRootParallel(context.Background(), alg, f, n, hashWorkers()); err != nil || got != n {
				b.Fatal(got, err)
			}
		}
	})
}

// TestFileRootMapped: a file hashed through its memory mapping has the
// spec's root, and one that grew is seen to have grown.
func TestFileRootMapped(t *testing.T) {
	for i, n := range []int{1, ChunkSize, 2*ChunkSize + 1, (hashSpan+1)*ChunkSize + 7} {
		alg := allHashes[i%len(allHashes)]
		data := chunkyBytes(n)
		_, f := openChunky(t, n)
		m, unmap := mapFile(f, int64(n))
		if m == nil && runtime.GOOS != "windows" {
			t.Fatalf("%d bytes: the file was not mapped", n)
		}
		root, got, err := rootOfChunks(context.Background(), alg, f, m, int64(n), 2, nil)
		unmap()
		if err != nil || got != int64(n) || root != specRoot(alg, data) {
			t.Errorf("%d bytes mapped: root %x of %d bytes, %v; want %x of %d", n, root, got, err, specRoot(alg, data), n)
		}
		if n > 1 {
			if _, got, err := fileRootParallel(context.Background(), alg, f, int64(n)-1, 2); err != nil || got != int64(n) {
				t.Errorf("%d bytes announced as %d: %d bytes, %v; want %d", n, n-1, got, err, n)
			}
		}
	}
}

// TestMappedFileShrinks: a file cut short under its mapping while it is
// hashed faults on the pages it lost; that ends the hashing as a file
// found shorter, and the program goes on.
func TestMappedFileShrinks(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no mapping here")
	}
	n := 40 * ChunkSize
	path, f := openChunky(t, n)
	m, unmap := mapFile(f, int64(n))
	defer unmap()
	if m == nil {
		t.Fatal("the file was not mapped")
	}
	if err := os.Truncate(path, int64(n/4)); err != nil {
		t.Fatal(err)
	}
	_, got, err := rootOfChunks(context.Background(), hashBLAKE3, f, m, int64(n), 3, nil)
	if err != nil || got >= int64(n) {
		t.Fatalf("a file cut to a quarter under its mapping: %d bytes, %v; want fewer than %d and no error", got, err, n)
	}
}

// TestMappedFileShrinksInLastPage: a file cut short inside the last page
// of its mapping reads as zeros there instead of faulting; the pass still
// finds it shorter (found by the review of 17a133e).
func TestMappedFileShrinksInLastPage(t *testing.T) {
	n := 2*ChunkSize + 3000
	path, f := openChunky(t, n)
	if err := os.Truncate(path, int64(n-2000)); err != nil {
		t.Fatal(err)
	}
	if _, got, err := fileRootParallel(context.Background(), hashBLAKE3, f, int64(n), 2); err != nil || got >= int64(n) {
		t.Fatalf("a file cut from %d to %d bytes: the pass found %d bytes, %v; want fewer than %d", n, n-2000, got, err, n)
	}
}

// openChunky writes n bytes of chunkyBytes to a file and opens it; the
// file is closed when tb ends.
func openChunky(tb testing.TB, n int) (string, *os.File) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "f")
	if err := os.WriteFile(path, chunkyBytes(n), 0o600); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return path, f
}

// TestHashingStops: a hashing pass ends when its context does, between
// spans of chunks, rather than reading the whole file.
func TestHashingStops(t *testing.T) {
	n := 3 * hashSpan * ChunkSize
	_, f := openChunky(t, n)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, got, err := fileRootParallel(ctx, hashBLAKE3, f, int64(n), 2); !errors.Is(err, context.Canceled) || got != 0 {
		t.Fatalf("hashing under a cancelled context: %d bytes, %v; want context.Canceled", got, err)
	}
}

// TestReceiverLeavesDuringHashing: a receiver that sends its hello and
// then gives up ('!') ends the sender's transfer with the receiver's
// reason, and no data is sent.
func TestReceiverLeavesDuringHashing(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), chunkyBytes(2*hashSpan*ChunkSize), 0o644)
	a, b := streamPair()
	go func() {
		f := newFakeSender(t, b) // plays a receiver that leaves
		f.w.hello(roleReceiver, []hashAlg{hashBLAKE3, hashSHA256}, 0)
		f.w.fatal("the user pressed Ctrl-C")
		f.w.flush()
		f.drain("a receiver that left")
		b.Close()
	}()
	res, err := Send(context.Background(), a, []string{filepath.Join(src, "f")}, SendOptions{})
	if !errors.Is(err, ErrPeer) || !strings.Contains(err.Error(), "Ctrl-C") {
		t.Errorf("Send: %v; want ErrPeer with the receiver's reason", err)
	}
	if res.Bytes != 0 {
		t.Errorf("sent %d bytes", res.Bytes)
	}
}

// TestSameRoleBothSides: two senders, or two receivers, are refused, and
// both sides (not just one, as before the refusing sender drained and sent
// its reason) get a message that says which verb to run on one side.
func TestSameRoleBothSides(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), []byte("x"), 0o644)
	a, b := streamPair()
	errs := make(chan error, 2)
	go func() {
		_, err := Send(context.Background(), b, []string{filepath.Join(src, "f")}, SendOptions{})
		errs <- err
	}()
	_, err := Send(context.Background(), a, []string{filepath.Join(src, "f")}, SendOptions{})
	for _, err := range []error{err, <-errs} {
		if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "both sides are sending; run receive on one of them") {
			t.Errorf("two senders: %v", err)
		}
	}
	a, b = streamPair()
	go func() { _, err := Receive(context.Background(), b, t.TempDir(), ReceiveOptions{}); errs <- err }()
	_, err = Receive(context.Background(), a, t.TempDir(), ReceiveOptions{})
	for _, err := range []error{err, <-errs} {
		if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "both sides are receiving; run send on one of them") {
			t.Errorf("two receivers: %v", err)
		}
	}
}

// TestPreferBLAKE3: BLAKE3 comes first unless the CPU has SHA-256
// instructions that BLAKE3's vector code does not outrun.
func TestPreferBLAKE3(t *testing.T) {
	for _, c := range []struct {
		arch                  string
		avx2, shaX86, sha2ARM bool
		want                  bool
	}{
		{"amd64", true, true, false, true},   // this machine: AVX2 BLAKE3 3.7 GB/s against SHA-NI 1.8
		{"amd64", false, true, false, false}, // SHA-NI, portable BLAKE3
		{"amd64", false, false, false, true}, // both portable: BLAKE3 2.3 x
		{"arm64", false, false, true, false}, // ARMv8 SHA2 instructions
		{"arm64", false, false, false, true},
		{"arm", false, false, false, true},
		{"386", false, false, false, true},
	} {
		if got := preferBLAKE3(c.arch, c.avx2, c.shaX86, c.sha2ARM); got != c.want {
			t.Errorf("%+v: BLAKE3 first %v, want %v", c, got, c.want)
		}
	}
	if got := localHashes(); len(got) != 2 || !slices.Contains(got, hashSHA256) || !slices.Contains(got, hashBLAKE3) {
		t.Errorf("localHashes() = %v, want both hashes", got)
	}
}
