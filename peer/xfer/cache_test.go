package xfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestPreparedHashesReused: Send takes the roots Prepare computed. A file
// whose content then changes with neither its size nor its modification
// time fails verification once (the stale root was used), is dropped from
// the Hashes, and goes through on the next run.
func TestPreparedHashesReused(t *testing.T) {
	src := t.TempDir()
	path := filepath.Join(src, "f")
	old, fresh := randBytes(21, 3*ChunkSize+5), randBytes(22, 3*ChunkSize+5)
	writeFile(t, path, old, 0o644)
	h := Prepare(context.Background(), []string{path})
	h.waitFor(context.Background()) // else a late-root Send stops the pass
	dst := t.TempDir()
	mustOK(t, run(t, []string{path}, dst, SendOptions{Hashes: h}, ReceiveOptions{}))
	checkFile(t, filepath.Join(dst, "f"), old, 0o644)

	writeFile(t, path, fresh, 0o644) // same size, same mtime (testMtime)
	o := run(t, []string{path}, t.TempDir(), SendOptions{Hashes: h}, ReceiveOptions{})
	if !errors.Is(o.serr, ErrVerify) {
		t.Fatalf("a file changed under the same size and mtime, sent with its kept root: %v, want ErrVerify", o.serr)
	}
	dst = t.TempDir()
	mustOK(t, run(t, []string{path}, dst, SendOptions{Hashes: h}, ReceiveOptions{}))
	checkFile(t, filepath.Join(dst, "f"), fresh, 0o644)
}

// TestHashesFollowChanges: a file changed since Prepare (another size or
// mtime) is hashed again, and a transfer that agrees on another hash than
// Prepare used hashes with that one.
func TestHashesFollowChanges(t *testing.T) {
	src := t.TempDir()
	path := filepath.Join(src, "f")
	writeFile(t, path, randBytes(23, 2*ChunkSize), 0o644)
	h := Prepare(context.Background(), []string{src})
	data := randBytes(24, 2*ChunkSize+1)
	writeFile(t, path, data, 0o644)
	later := testMtime.Add(time.Hour)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	mustOK(t, run(t, []string{src}, dst, SendOptions{Hashes: h}, ReceiveOptions{}))
	if got, err := os.ReadFile(filepath.Join(dst, filepath.Base(src), "f")); err != nil || string(got) != string(data) {
		t.Fatalf("stored %d bytes (%v), want the changed file's %d", len(got), err, len(data))
	}
	for _, alg := range allHashes {
		dst := t.TempDir()
		o := run(t, []string{path}, dst, SendOptions{Hashes: h, hashes: []hashAlg{alg}}, ReceiveOptions{hashes: allHashes})
		mustOK(t, o)
		if o.sres.Hash != alg.String() {
			t.Errorf("agreed on %s, want %v", o.sres.Hash, alg)
		}
	}
}

// TestPassStoppedByLateRoots: Send to a receiver that takes late roots
// does not wait for Prepare's pass: it stops it and hashes the file as it
// sends it. To one that does not, it waits for the pass.
func TestPassStoppedByLateRoots(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	data := randBytes(25, 5*ChunkSize)
	writeFile(t, path, data, 0o644)
	release := make(chan struct{})
	passHook = func(ctx context.Context) {
		select { // a pass that takes until it is stopped, or released
		case <-ctx.Done():
		case <-release:
		}
	}
	t.Cleanup(func() { passHook = nil })
	h := Prepare(context.Background(), []string{path})
	late := lateRoots.Load()
	dst := t.TempDir()
	first := make(chan outcome, 1)
	go func() { first <- run(t, []string{path}, dst, SendOptions{Hashes: h}, ReceiveOptions{}) }()
	select {
	case o := <-first:
		mustOK(t, o)
	case <-time.After(20 * time.Second):
		close(release)
		t.Fatal("Send to a receiver that takes late roots waited for Prepare's pass")
	}
	checkFile(t, filepath.Join(dst, "f"), data, 0o644)
	if lateRoots.Load() != late+1 {
		t.Error("the file was not sent with a late root")
	}

	for _, c := range []struct {
		what string
		so   SendOptions
		ro   ReceiveOptions
	}{
		{"to a receiver without late roots", SendOptions{}, ReceiveOptions{noLateRoots: true}},
		{"with HashFirst", SendOptions{HashFirst: true}, ReceiveOptions{}},
	} {
		release = make(chan struct{})
		h = Prepare(context.Background(), []string{path})
		c.so.Hashes = h
		done := make(chan outcome, 1)
		go func() { done <- run(t, []string{path}, t.TempDir(), c.so, c.ro) }()
		select {
		case o := <-done:
			t.Fatalf("Send %s did not wait for the pass: %v %v", c.what, o.serr, o.rerr)
		case <-time.After(100 * time.Millisecond):
		}
		close(release)
		mustOK(t, <-done)
	}
}

// TestPrepareMissing: Prepare of a path that does not exist leaves the
// error to Send, which reports it as without Prepare.
func TestPrepareMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nothing")
	h := Prepare(context.Background(), []string{path})
	o := run(t, []string{path}, t.TempDir(), SendOptions{Hashes: h}, ReceiveOptions{})
	if !errors.Is(o.serr, os.ErrNotExist) {
		t.Errorf("Send of a missing file: %v, want ErrNotExist", o.serr)
	}
}

// TestPrefixRootFromKeptSums: the root of a prefix computed from the chunk
// hashes kept in Hashes equals the root read from the file, for prefixes
// of whole chunks and for the whole file (whose last chunk is short).
func TestPrefixRootFromKeptSums(t *testing.T) {
	for _, alg := range []hashAlg{hashBLAKE3, hashSHA256} {
		data := randBytes(31, 9*ChunkSize+777)
		path := filepath.Join(t.TempDir(), "f")
		writeFile(t, path, data, 0o644)
		h := NewHashes()
		files := []srcFile{{path: path, entry: entry{Kind: kindFile}}}
		if err := hashFiles(context.Background(), files, alg, h, false); err != nil {
			t.Fatal(err)
		}
		k := hashKey{path, files[0].Size, files[0].Mtime, alg}
		for _, off := range []int64{ChunkSize, 4 * ChunkSize, 9 * ChunkSize, int64(len(data))} {
			got, ok := h.prefixRoot(k, off)
			want, _, _ := fileRoot(alg, bytes.NewReader(data[:off]), make([]byte, ChunkSize))
			if !ok || got != want {
				t.Errorf("%v: prefix root of %d bytes from kept hashes: %x (kept %v), want %x", alg, off, got, ok, want)
			}
		}
		if _, ok := h.prefixRoot(hashKey{path, files[0].Size, files[0].Mtime + 1, alg}, ChunkSize); ok {
			t.Errorf("%v: a prefix root for another modification time", alg)
		}
	}
}

// TestResumeWithKeptSums: a rerun given the Hashes of the cut run checks
// the receiver's kept prefix without reading it; without them the sender
// reads it again.
//
// The hashes of a late-root send's prefix are kept only under the file's
// full identity (statID), and not for a file changed in the racyWindow
// before: the test's file was written a moment ago.
func TestResumeWithKeptSums(t *testing.T) {
	oldRacy := racyWindow
	racyWindow = 0
	t.Cleanup(func() { racyWindow = oldRacy })
	src := t.TempDir()
	data := randBytes(32, 40*ChunkSize+123)
	path := filepath.Join(src, "big")
	writeFile(t, path, data, 0o644)
	if _, ok := statID(path); !ok {
		t.Skip("no file identity here: prefix hashes are not kept")
	}
	for _, keep := range []bool{true, false} {
		dst := t.TempDir()
		so := SendOptions{}
		if keep {
			so.Hashes = NewHashes()
		}
		a, b := cutPair(20*ChunkSize + 1000)
		if o := transfer(t, a, b, []string{path}, dst, so, ReceiveOptions{}); o.rerr == nil {
			t.Fatal("cut transfer succeeded")
		}
		before := prefixReads.Load()
		o := run(t, []string{path}, dst, so, ReceiveOptions{})
		mustOK(t, o)
		checkFile(t, filepath.Join(dst, "big"), data, 0o644)
		if o.sres.Resumed == 0 {
			t.Fatalf("kept hashes %v: nothing resumed", keep)
		}
		if reads := prefixReads.Load() - before; (reads == 0) != keep {
			t.Errorf("kept hashes %v: the prefix was read %d times", keep, reads)
		}
	}
}

// TestKeptSumsBounded: chunk hashes are kept up to maxKeptChunks in all;
// past that a file keeps its root only, and forgetting a file frees its
// share.
func TestKeptSumsBounded(t *testing.T) {
	h := NewHashes()
	big := make([][hashLen]byte, maxKeptChunks-10)
	k1 := hashKey{path: "/a", size: 1}
	k2 := hashKey{path: "/b", size: 1}
	h.put(k1, [hashLen]byte{1}, big)
	h.put(k2, [hashLen]byte{2}, make([][hashLen]byte, 20))
	if _, ok := h.prefixRoot(k2, ChunkSize); ok {
		t.Error("the hashes past the bound were kept")
	}
	if r, ok := h.get(k2); !ok || r != [hashLen]byte{2} {
		t.Error("the root of a file whose hashes were not kept was lost")
	}
	h.forget("/a")
	h.put(k2, [hashLen]byte{2}, make([][hashLen]byte, 20))
	if _, ok := h.prefixRoot(k2, ChunkSize); !ok || h.kept != 20 {
		t.Errorf("after forgetting the first file: kept %d hashes, prefix root found %v", h.kept, ok)
	}
}

// TestRootsBounded: a Hashes keeps at most maxRoots files, dropping one
// kept before for each new one past that, with its chunk hashes' count.
func TestRootsBounded(t *testing.T) {
	old := maxRoots
	maxRoots = 100
	defer func() { maxRoots = old }()
	h := NewHashes()
	for i := range 250 {
		h.put(hashKey{path: fmt.Sprint("/f", i), size: 1}, [hashLen]byte{byte(i)}, make([][hashLen]byte, 3))
	}
	if len(h.roots) != 100 || h.kept != 300 {
		t.Fatalf("%d files and %d chunk hashes kept, want 100 and 300", len(h.roots), h.kept)
	}
	if r, ok := h.get(hashKey{path: "/f249", size: 1}); !ok || r[0] != 249 {
		t.Error("the newest file was not kept")
	}
	h.put(hashKey{path: "/f249", size: 1}, [hashLen]byte{1}, nil) // replacing drops nothing else
	if len(h.roots) != 100 || h.kept != 297 {
		t.Fatalf("after replacing one: %d files and %d chunk hashes, want 100 and 297", len(h.roots), h.kept)
	}
}

// TestProgressKept: a resumed transfer's progress says, on both sides, how
// much of Done it did not move (the resumed prefix), so that a rate
// counts only what moved.
func TestProgressKept(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	data := randBytes(75, 12*ChunkSize)
	path := filepath.Join(src, "f")
	writeFile(t, path, data, 0o644)
	cutOnce(t, path, dst, 6*ChunkSize+100)
	var sent, got Progress
	o := run(t, []string{path}, dst, SendOptions{Progress: func(p Progress) { sent = p }}, ReceiveOptions{Progress: func(p Progress) { got = p }})
	mustOK(t, o)
	if o.sres.Resumed == 0 {
		t.Fatal("nothing resumed")
	}
	for side, p := range map[string]Progress{"sender": sent, "receiver": got} {
		if p.Kept != o.sres.Resumed || p.Done != int64(len(data)) {
			t.Errorf("%s's last progress: done %d, kept %d; want %d and the %d bytes resumed", side, p.Done, p.Kept, len(data), o.sres.Resumed)
		}
	}
}

// TestPassStopsOnOneThread: on one thread (the command's send on a machine
// of two CPUs or fewer) a file is hashed one chunk at a time, and that
// loop too stops when the pass is stopped (found by the bench: it ran to
// the end of the file, and the send waited for it, the file then hashed a
// second time as it was sent).
func TestPassStopsOnOneThread(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	if hashWorkers() != 1 {
		t.Fatalf("hashWorkers %d on one thread", hashWorkers())
	}
	path := filepath.Join(t.TempDir(), "f")
	writeFile(t, path, randBytes(26, 8*ChunkSize), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var e entry
	err := hashFile(ctx, hashBLAKE3, path, &e, make([]byte, ChunkSize), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("hashFile with its pass stopped: %v, root %x; want it stopped", err, e.Root[:4])
	}
	if err := hashFile(context.Background(), hashBLAKE3, path, &e, make([]byte, ChunkSize), nil); err != nil || e.Size != 8*ChunkSize {
		t.Fatalf("hashFile: %v, size %d", err, e.Size)
	}
}
