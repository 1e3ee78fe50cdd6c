//go:build !linux

package xfer

// startWriteback does nothing where sync_file_range(2) does not exist: the
// fsync that stores a received file writes all of it.
func startWriteback(f partFile, off, n int64) error { return nil }

// reserveSpace does nothing where fallocate(2) does not exist: the writes
// find the disk full, if it is.
func reserveSpace(f partFile, off, n int64) error { return nil }

// freeBytes cannot tell the free space here: the writes find the disk
// full, if it is.
func freeBytes(dir string) (n int64, ok bool) {
	if freeHook != nil {
		return freeHook(dir)
	}
	return 0, false
}
