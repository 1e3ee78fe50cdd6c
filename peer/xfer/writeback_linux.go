package xfer

import (
	"math"
	"syscall"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing [off, off+n) of f to
// the disk now, without waiting for it: the fsync that stores a received
// file then has only the last stretch left to wait for, instead of the
// whole file at the end of the transfer. A file without a descriptor
// (a test's stand-in) is left alone. The receiver ignores the error: the
// fsync reports what matters.
func startWriteback(f partFile, off, n int64) error {
	sc, ok := f.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	if cerr := rc.Control(func(fd uintptr) {
		err = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	}); cerr != nil {
		return cerr
	}
	return err
}

// reserveSpace allocates [off, off+n) of f on the disk without changing
// its size (FALLOC_FL_KEEP_SIZE: the partial data's size still says how
// much arrived), so that a disk too small for the file is found before its
// data is sent rather than when it fills up, and the file system lays the
// file out in few extents. A file system that cannot (ext4 formatted
// without extents, some network file systems) or a test's stand-in is left
// alone: the writes then find the disk full, if it is. f holds off bytes.
//
// It returns ENOSPC or EDQUOT for a disk (or quota) too small, EFBIG for
// a file larger than the file system can hold, and the error of cutting
// the file back to off should that fail (the file must not be used then:
// its size would claim data that never came). fallocate itself returns
// EFBIG past the file system's limit (FAT32's 4 GiB), but ext4 without
// extents (an ext3-formatted disk), whose files hold 16 GiB to 2 TiB by
// block size, refuses fallocate altogether. There (ext2, ext3 and ext4
// share one magic number) a file of more than sizeProbe bytes is grown to
// its size with ftruncate, which allocates nothing on such a file system
// and which it refuses past its limit, and cut back to off. Only there:
// FAT and exFAT fill a file grown by ftruncate with zeros, gigabytes of
// writes for nothing.
func reserveSpace(f partFile, off, n int64) error {
	sc, ok := f.(syscall.Conn)
	if !ok || n <= 0 {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var cutBack error // the file could not be cut back to off: it must not be used
	if cerr := rc.Control(func(fd uintptr) {
		for {
			err = unix.Fallocate(int(fd), unix.FALLOC_FL_KEEP_SIZE, off, n)
			if err != unix.EINTR {
				break
			}
		}
		if err != unix.EOPNOTSUPP || off+n <= sizeProbe {
			return
		}
		var st unix.Statfs_t
		if unix.Fstatfs(int(fd), &st) != nil || st.Type != unix.EXT4_SUPER_MAGIC {
			return // FAT, exFAT: growing a file writes zeros over it
		}
		if err = unix.Ftruncate(int(fd), off+n); err == nil {
			cutBack = unix.Ftruncate(int(fd), off)
		}
	}); cerr != nil {
		return nil
	}
	if cutBack != nil {
		return cutBack
	}
	switch err {
	case unix.ENOSPC, unix.EDQUOT, unix.EFBIG:
		return err
	}
	return nil
}

// sizeProbe is the file size above which reserveSpace checks that the file
// system can hold a file that large. The check costs two updates of the
// file's metadata, so smaller files skip it: file systems whose files hold
// less (FAT16, minix) are rare, and on them the writes find the limit.
const sizeProbe = 2<<30 - 1

// freeBytes returns the bytes an unprivileged user may still write on the
// file system holding dir; ok is false if it cannot be told.
func freeBytes(dir string) (n int64, ok bool) {
	if freeHook != nil {
		return freeHook(dir)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Bsize <= 0 || st.Blocks == 0 {
		// Some FUSE and network file systems answer zeros: unknown, and
		// the writes find the disk full, if it is.
		return 0, false
	}
	bs := int64(st.Bsize)
	if st.Bavail > uint64(math.MaxInt64/bs) {
		return math.MaxInt64, true
	}
	return int64(st.Bavail) * bs, true
}
