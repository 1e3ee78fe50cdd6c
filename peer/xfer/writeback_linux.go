package xfer

import (
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
// file out in few extents. A file system that cannot (FAT, some network
// file systems) or a test's stand-in is left alone: the writes then find
// the disk full, if it is.
func reserveSpace(f partFile, off, n int64) error {
	sc, ok := f.(syscall.Conn)
	if !ok || n <= 0 {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	if cerr := rc.Control(func(fd uintptr) {
		for {
			err = unix.Fallocate(int(fd), unix.FALLOC_FL_KEEP_SIZE, off, n)
			if err != unix.EINTR {
				break
			}
		}
	}); cerr != nil {
		return nil
	}
	switch err {
	case unix.ENOSPC, unix.EDQUOT, unix.EFBIG:
		return err
	}
	return nil
}
