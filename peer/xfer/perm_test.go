//go:build unix

package xfer

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestExistingFolderKept: a folder the sender sends that exists in the
// receive directory keeps its own mode and modification time (a sender
// must not open up the receiver's private folders); folders the transfer
// makes get the sender's.
func TestExistingFolderKept(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, "docs", "new", "n.txt"), []byte("x"), 0o644)
	os.Chmod(filepath.Join(src, "docs"), 0o755)
	os.Chmod(filepath.Join(src, "docs", "new"), 0o750)
	theirs := time.Date(2001, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(filepath.Join(src, "docs"), theirs, theirs)
	writeFile(t, filepath.Join(dst, "docs", "private.txt"), []byte("mine"), 0o600)
	os.Chmod(filepath.Join(dst, "docs"), 0o700)
	mustOK(t, run(t, []string{filepath.Join(src, "docs")}, dst, SendOptions{}, ReceiveOptions{}))
	// (Its modification time moves on as the transfer adds to it, as for
	// any folder written into, but it is not the sender's.)
	fi, err := os.Stat(filepath.Join(dst, "docs"))
	if err != nil || fi.Mode().Perm() != 0o700 || fi.ModTime().Equal(theirs) {
		t.Errorf("existing folder docs: %v %v (%v), want 0700 as before, not the sender's time", fi.Mode().Perm(), fi.ModTime(), err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "docs", "new")); err != nil || fi.Mode().Perm() != 0o750&^umask {
		t.Errorf("folder the transfer made: %v (%v), want the sender's 0750 less the umask", fi.Mode().Perm(), err)
	}
}

// TestUmaskApplied: the sender's permission bits are stored less the
// receiver's umask, as for files a program creates here: files and
// folders a Windows sender reports as 0666 and 0777 are not stored
// world-writable under the usual umask 022.
func TestUmaskApplied(t *testing.T) {
	old := umask
	umask = 0o022
	defer func() { umask = old }()
	dst := t.TempDir()
	data := []byte("hello")
	_, err := receiveFrom(t, dst, ReceiveOptions{}, func(f *fakeSender) {
		d := entry{Kind: kindDir, Name: "w", Mode: 0o777, Mtime: testMtime.UnixNano()}
		e := fileEntry("w/f.txt", data)
		e.Mode = 0o666
		x := fileEntry("w/run.sh", data)
		x.Mode = 0o775
		f.manifest(d, e, x)
		f.send(func(w *writer) {
			w.file(1, 0)
			sendChunks(w, data)
			w.indexReason(msgEnd, 1, 0, "")
			w.file(2, 0)
			sendChunks(w, data)
			w.indexReason(msgEnd, 2, 0, "")
			w.msg(msgDone)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{"w": 0o755, "w/f.txt": 0o644, "w/run.sh": 0o755} {
		if fi, err := os.Stat(filepath.Join(dst, name)); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s stored with mode %v (%v), want %v", name, fi.Mode().Perm(), err, want)
		}
	}
}

// TestUmaskRead: the umask read at start is the process's.
func TestUmaskRead(t *testing.T) {
	m := syscall.Umask(0o027)
	defer syscall.Umask(m)
	if got := readUmask(); got != 0o027 {
		t.Errorf("readUmask() = %#o, want 0o027", got)
	}
}
