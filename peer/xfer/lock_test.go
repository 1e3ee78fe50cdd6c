//go:build unix

package xfer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSameFileTwiceAtOnce: while one transfer receives a file into a
// folder, a second transfer of the same file into the same folder (a
// second peer, or a rerun while the first stream is not yet seen dead) is
// refused, saying why and what to do, and touches nothing of the first's
// partial data; once the first has ended, a rerun resumes from what it
// kept. Without the lock, the second stored the file as a hard link to the
// shared partial data, which the first then cut to what it had received:
// a stored, verified file lost its tail.
//
// The first transfer is scripted with its root in the manifest; the
// second sends it so too, or the two would not share partial data.
func TestSameFileTwiceAtOnce(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	data := randBytes(31, 30*ChunkSize)
	p := filepath.Join(src, "f")
	writeFile(t, p, data, 0o644)
	sha := []hashAlg{scriptHash}

	first, firstDone := receiving(t, dst, ReceiveOptions{hashes: sha})
	first.startFile(data, 5*ChunkSize)

	o := run(t, []string{p}, dst, SendOptions{hashes: sha, HashFirst: true}, ReceiveOptions{hashes: sha})
	if o.rerr == nil || !strings.Contains(o.rerr.Error(), "another transfer is receiving this file into this folder right now") ||
		!strings.Contains(o.rerr.Error(), "rerun once that one has ended") {
		t.Fatalf("second transfer: receive %v; want it refused, saying why and what to do", o.rerr)
	}
	if !errors.Is(o.serr, ErrPeer) {
		t.Errorf("second transfer: send %v, want the receiver's reason", o.serr)
	}
	if _, err := os.Stat(filepath.Join(dst, "f")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the file was stored while the first transfer still received it: %v", err)
	}

	first.s.Close() // the first transfer's stream dies
	<-firstDone
	o = run(t, []string{p}, dst, SendOptions{hashes: sha, HashFirst: true}, ReceiveOptions{hashes: sha})
	mustOK(t, o)
	checkFile(t, filepath.Join(dst, "f"), data, 0o644)
	if o.rres.Resumed == 0 {
		t.Error("the rerun did not resume from the first transfer's data")
	}
}

// TestOtherVersionsPartialDropped: once a file is stored, partial data
// kept for earlier versions of it under the same name, of other sizes, is
// removed, but not the one another transfer holds.
func TestOtherVersionsPartialDropped(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	p := filepath.Join(src, "log")
	writeFile(t, p, randBytes(21, 40*ChunkSize), 0o644)
	cutOnce(t, p, dst, 20*ChunkSize)
	// Partial data of an earlier version of "log", which another
	// transfer holds right now.
	other := filepath.Join(t.TempDir(), "log")
	writeFile(t, other, randBytes(23, 30*ChunkSize), 0o644)
	a, b := cutPair(10 * ChunkSize)
	if o := transfer(t, a, b, []string{other}, dst, SendOptions{}, ReceiveOptions{}); o.rerr == nil {
		t.Fatal("cut transfer succeeded")
	}
	held := partials(t, dst)
	if len(held) != 2 {
		t.Fatalf("%d partial files kept after two cuts, want 2", len(held))
	}
	var otherPart string
	for _, h := range held {
		if fi, _ := os.Stat(h); fi.Size() < 15*ChunkSize {
			otherPart = h
		}
	}
	hold, err := os.OpenFile(otherPart, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	if err := lockPartial(hold); err != nil {
		t.Fatal(err)
	}

	data := randBytes(22, 41*ChunkSize) // the log grew
	writeFile(t, p, data, 0o644)
	mustOK(t, run(t, []string{p}, dst, SendOptions{}, ReceiveOptions{}))
	checkFile(t, filepath.Join(dst, "log"), data, 0o644)
	if left := partials(t, dst); len(left) != 1 || left[0] != otherPart {
		t.Errorf("partial files left: %v, want only the held one %s", left, otherPart)
	}
}

// partials lists the partial data files kept in dst.
func partials(t *testing.T, dst string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dst, partialDir, "*.part"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestResumeAfterOtherStored: a transfer that planned to resume from
// partial data another transfer then stored (and removed) is refused when
// its data starts, saying to rerun, and the stored file stays intact. It
// made a new, empty partial file, padded it with zeros to the offset it
// had offered and stored that, verified against the hashes it had read
// (found by review of the lock).
func TestResumeAfterOtherStored(t *testing.T) {
	dst := t.TempDir()
	data := randBytes(31, 30*ChunkSize)
	ro := ReceiveOptions{hashes: []hashAlg{scriptHash}, Overwrite: true}

	// A receives 10 chunks and holds its partial data.
	fa, aDone := receiving(t, dst, ro)
	if off := fa.startFile(data, 10*ChunkSize); off != 0 {
		t.Fatal("A offered", off)
	}

	// B plans a resume from A's partial data.
	fb, bDone := receiving(t, dst, ro)
	off := fb.manifest(fileEntry("f", data))[0].Offset
	if off == 0 {
		t.Skip("B was offered no prefix (A's data had not reached the file yet)")
	}

	// A ends and stores the file; then B's data starts.
	sendChunks(fa.w, data[10*ChunkSize:])
	fa.w.indexReason(msgEnd, 0, 0, "")
	fa.w.msg(msgDone)
	fa.w.flush()
	fa.s.CloseWrite()
	if err := <-aDone; err != nil {
		t.Fatal("A:", err)
	}
	fb.send(func(w *writer) {
		w.file(0, off)
		sendChunks(w, data[off:])
		w.indexReason(msgEnd, 0, 0, "")
		w.msg(msgDone)
	})
	err := <-bDone
	if err == nil || !strings.Contains(err.Error(), "partial data changed") || !strings.Contains(err.Error(), "run the same command again") {
		t.Errorf("B: %v; want a refusal saying to rerun", err)
	}
	checkFile(t, filepath.Join(dst, "f"), data, 0o644)
}

// TestResumeOfRewrittenPartial: a transfer that planned to resume from
// kept partial data, which another transfer of the same file then
// rewrote (its sender declined the resume, sent other bytes and was cut),
// is refused when its data starts: the chunk hashes kept for the prefix
// are checked again under the lock. It stored the other bytes as a
// verified file (found by review).
func TestResumeOfRewrittenPartial(t *testing.T) {
	dst := t.TempDir()
	data := randBytes(31, 30*ChunkSize)
	bad := randBytes(99, 25*ChunkSize)
	ro := ReceiveOptions{hashes: []hashAlg{scriptHash}, Overwrite: true}
	// A keeps 20 chunks, then C plans a resume from them.
	fa, aDone := receiving(t, dst, ro)
	fa.startFile(data, 20*ChunkSize)
	fa.s.Close()
	t.Log("A:", <-aDone)
	fc, cDone := receiving(t, dst, ro)
	off := fc.manifest(fileEntry("f", data))[0].Offset
	t.Log("C offered", off/ChunkSize, "chunks")
	// B, declining the resume, rewrites them with other bytes and is cut.
	fb, bDone := receiving(t, dst, ro)
	fb.startFile(data, 0)
	sendChunks(fb.w, bad)
	fb.w.flush()
	fb.s.Close()
	t.Log("B:", <-bDone)
	fc.send(func(w *writer) {
		w.file(0, off)
		sendChunks(w, data[off:])
		w.indexReason(msgEnd, 0, 0, "")
		w.msg(msgDone)
	})
	if err := <-cDone; err == nil || !strings.Contains(err.Error(), "partial data changed") {
		t.Errorf("C: %v; want a refusal saying to rerun", err)
	}
	if got, err := os.ReadFile(filepath.Join(dst, "f")); err == nil && !bytes.Equal(got, data) {
		t.Errorf("stored f differs from the verified data: first 20 chunks equal B's bytes? %v", bytes.Equal(got[:20*ChunkSize], bad[:20*ChunkSize]))
	}
}

// receiving starts a Receive into dst from a scripted sender; Receive's
// error arrives on the channel.
func receiving(t *testing.T, dst string, ro ReceiveOptions) (*fakeSender, <-chan error) {
	a, b := streamPair()
	done := make(chan error, 1)
	go func() { _, err := Receive(context.Background(), b, dst, ro); done <- err }()
	return newFakeSender(t, a), done
}

// startFile announces data as the file "f", sends its first n bytes from
// offset 0 (whatever the receiver offered) and returns the offered offset.
func (f *fakeSender) startFile(data []byte, n int) int64 {
	off := f.manifest(fileEntry("f", data))[0].Offset
	go io.Copy(io.Discard, f.r.br)
	f.w.file(0, 0)
	sendChunks(f.w, data[:n])
	f.w.flush()
	return off
}

// TestTouchedWhileOldHeld: a touched file's transfer, while another
// transfer holds the partial data of its earlier modification time (the
// first one not yet seen dead, another peer), goes from 0 under its own id
// rather than ending the transfer on that lock (found by review).
func TestTouchedWhileOldHeld(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	p := filepath.Join(src, "f")
	data := randBytes(123, 12*ChunkSize+9)
	writeFile(t, p, data, 0o644)
	held := cutOnce(t, p, dst, 6*ChunkSize+1000)
	hold, err := os.OpenFile(held, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	if err := lockPartial(hold); err != nil {
		t.Skipf("no lock here: %v", err)
	}
	later := testMtime.Add(time.Hour)
	os.Chtimes(p, later, later)
	o := run(t, []string{p}, dst, SendOptions{}, ReceiveOptions{})
	mustOK(t, o)
	if got, err := os.ReadFile(filepath.Join(dst, "f")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored file differs (%v)", err)
	}
	if o.rres.Resumed != 0 {
		t.Errorf("resumed %d bytes from data another transfer holds", o.rres.Resumed)
	}
}
