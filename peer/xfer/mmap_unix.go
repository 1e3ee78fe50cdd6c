//go:build unix

package xfer

import (
	"io"
	"math"
	"os"
	"syscall"
)

// mapFile maps the first size bytes of f, when f is an open regular file,
// into memory for reading, and returns them with the function that unmaps
// them. Where that cannot be done (another reader, an empty or huge file,
// a system call that fails) it returns nil and a no-op: the caller reads.
// Touching a page past the file's end (it shrank) faults: callers hash it
// with debug.SetPanicOnFault.
func mapFile(r io.ReaderAt, size int64) ([]byte, func()) {
	f, ok := r.(*os.File)
	if !ok || size <= 0 || size > math.MaxInt/2 {
		return nil, func() {}
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, func() {}
	}
	var m []byte
	if cerr := sc.Control(func(fd uintptr) {
		m, err = syscall.Mmap(int(fd), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	}); cerr != nil || err != nil {
		return nil, func() {}
	}
	return m, func() { syscall.Munmap(m) }
}
