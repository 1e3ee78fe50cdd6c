package xfer

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// allocated is how many bytes the file system gave path.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// TestCutGivesRoomBack: the receiver reserves a file's whole size when the
// file starts; a transfer cut midway keeps what arrived and gives the rest
// of the room back, so that a transfer left partial (or refused) does not
// hold disk space it will not fill.
func TestCutGivesRoomBack(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	// The file system must reserve (fallocate) for the check to mean
	// anything.
	probe := filepath.Join(dst, "probe")
	f, err := os.Create(probe)
	if err != nil {
		t.Fatal(err)
	}
	err = reserveSpace(f, 0, 4<<20)
	f.Close()
	if err != nil || allocated(t, probe) < 4<<20 {
		t.Skipf("this file system does not reserve room (%v)", err)
	}
	os.Remove(probe)

	data := randBytes(21, 40*ChunkSize)
	writeFile(t, filepath.Join(src, "big"), data, 0o644)
	part := cutOnce(t, filepath.Join(src, "big"), dst, 20*ChunkSize+1000)
	fi, err := os.Stat(part)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() == 0 || fi.Size() >= int64(len(data)) {
		t.Fatalf("partial data of %d bytes; want some of the %d", fi.Size(), len(data))
	}
	if a := allocated(t, part); a > fi.Size()+256<<10 {
		t.Errorf("the partial data (%d bytes) holds %d bytes of disk: the room reserved for the rest was not given back", fi.Size(), a)
	}
}
