package xfer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// TestFileTooLargeForFileSystem: a file larger than the receiving file
// system can hold is refused when it starts, before any of its data, with
// an error that says so and what to do, and no room is held for it. The
// file system is an ext4 image without extents on 1 KiB blocks, whose
// files hold at most about 16 GiB (as FAT32's hold under 4 GiB); the
// scripted sender announces 20 GiB.
func TestFileTooLargeForFileSystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a file system image")
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("needs mkfs.ext4 (Debian package e2fsprogs)")
	}
	img := filepath.Join(t.TempDir(), "small.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-b", "1024", "-O", "^extent,^huge_file,^has_journal,^64bit", img, "8M").CombinedOutput(); err != nil {
		t.Skipf("cannot make an ext4 image: %v: %s", err, out)
	}
	dst := t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop", img, dst).CombinedOutput(); err != nil {
		t.Skipf("cannot mount an ext4 image (loop devices): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dst).Run() })

	// The room check before the transfer would refuse 20 GiB on an 8 MiB
	// disk first, as a full disk: this test is about the file system's
	// limit, which a file meets on a disk with room for it (a 5 GiB file
	// for a 32 GB FAT32 stick).
	freeHook = func(string) (int64, bool) { return 1 << 50, true }
	t.Cleanup(func() { freeHook = nil })
	const size = int64(20 << 30)
	in := script(func(w *writer) {
		w.hello(roleSender, []hashAlg{scriptHash}, 0)
		e := entry{Kind: kindFile, Name: "disk.img", Size: size, Mode: 0o644, Mtime: testMtime.UnixNano()}
		w.entry(&e)
		w.manifestEnd(1, size)
		w.file(0, 0)
		w.data(0, []byte("never reached"))
	})
	_, err := Receive(context.Background(), &scripted{r: bytes.NewReader(in)}, dst, ReceiveOptions{})
	if !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("Receive: %v, want EFBIG", err)
	}
	var de *DiskFullError
	if errors.As(err, &de) {
		t.Errorf("a file too large for the file system reported as a full disk: %v", err)
	}
	for _, want := range []string{`"disk.img" has 21474836480 bytes`, "more than a file on this file system can hold", "onto another file system"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "disk.img")); err == nil {
		t.Error("the file was stored")
	}
	parts, _ := filepath.Glob(filepath.Join(dst, ".p2plink-partial", "*.part"))
	for _, p := range parts {
		if n := allocated(t, p); n != 0 {
			t.Errorf("%s holds %d bytes of disk, want 0", p, n)
		}
	}
}
