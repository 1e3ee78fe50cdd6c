package xfer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
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
