package xfer

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

type wbCall struct{ off, n int64 }

// watchWriteback records the writeback requests made during a test.
func watchWriteback(t *testing.T) func() []wbCall {
	var mu sync.Mutex
	var calls []wbCall
	old := writeback
	writeback = func(f partFile, off, n int64) error {
		mu.Lock()
		calls = append(calls, wbCall{off, n})
		mu.Unlock()
		return old(f, off, n)
	}
	t.Cleanup(func() { writeback = old })
	return func() []wbCall {
		mu.Lock()
		defer mu.Unlock()
		return append([]wbCall(nil), calls...)
	}
}

// checkRuns: the requests cover [from, to) in order, back to back, each
// writebackStep or a little more (whole chunks), and leave less than a
// step for the fsync.
func checkRuns(t *testing.T, calls []wbCall, from, size int64) {
	t.Helper()
	at := from
	for i, c := range calls {
		if c.off != at || c.n < writebackStep || c.n >= writebackStep+ChunkSize {
			t.Fatalf("writeback request %d: [%d, +%d), want it to start at %d and span one step (%d)", i, c.off, c.n, at, writebackStep)
		}
		at += c.n
	}
	if size-at >= writebackStep {
		t.Fatalf("writeback requested up to %d of %d bytes: %d left for the fsync", at, size, size-at)
	}
}

// TestWritebackDuringReceive: a received file is handed to the disk in
// steps while it arrives, so storing it waits for the last step only; a
// resumed file's steps start where the kept data ends.
func TestWritebackDuringReceive(t *testing.T) {
	calls := watchWriteback(t)
	src, dst := t.TempDir(), t.TempDir()
	size := int64(2*writebackStep + 5*ChunkSize + 77)
	data := randBytes(21, int(size))
	writeFile(t, filepath.Join(src, "f"), data, 0o644)
	o := run(t, []string{filepath.Join(src, "f")}, dst, SendOptions{}, ReceiveOptions{})
	mustOK(t, o)
	checkFile(t, filepath.Join(dst, "f"), data, 0o644)
	if got := calls(); len(got) != 2 {
		t.Fatalf("%d writeback requests for %d bytes, want 2: %v", len(got), size, got)
	}
	checkRuns(t, calls(), 0, size)

	// Cut a second transfer after a step and a half, then resume it.
	dst2 := t.TempDir()
	cutOnce(t, filepath.Join(src, "f"), dst2, writebackStep+writebackStep/2)
	before := len(calls())
	o = run(t, []string{filepath.Join(src, "f")}, dst2, SendOptions{}, ReceiveOptions{})
	mustOK(t, o)
	checkFile(t, filepath.Join(dst2, "f"), data, 0o644)
	if o.rres.Resumed == 0 {
		t.Fatal("the second run did not resume")
	}
	checkRuns(t, calls()[before:], o.rres.Resumed, size)
}

// TestStartWriteback: on a real file the request is accepted; on a closed
// one it fails (and the receiver, which ignores it, loses nothing).
func TestStartWriteback(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "w"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := startWriteback(f, 0, 1<<20); err != nil {
		t.Fatalf("writeback of a written range: %v", err)
	}
	f.Close()
	if runtime.GOOS == "linux" {
		if err := startWriteback(f, 0, 1<<20); err == nil {
			t.Fatal("writeback of a closed file succeeded")
		}
	}
}
