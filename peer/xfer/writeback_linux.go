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
