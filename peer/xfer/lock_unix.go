//go:build unix

package xfer

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockPartial takes an exclusive lock on f, a file of partial data, for
// as long as it stays open, so that two transfers of the same file into
// one folder (two peers at once, or a rerun while the first stream has not
// yet been seen dead) never write, cut or store the same partial data. It
// returns errPartialBusy when another open file holds the lock, in this
// process or another.
func lockPartial(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	if cerr := rc.Control(func(fd uintptr) {
		for {
			err = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB)
			if err != unix.EINTR {
				break
			}
		}
	}); cerr != nil {
		return nil
	}
	switch {
	case errors.Is(err, unix.EWOULDBLOCK):
		return errPartialBusy
	case err != nil:
		return nil // a file system without locks (some network ones): go on unlocked
	}
	return nil
}

// holdWhileStoring says that the partial data stays open, and so locked,
// until it has been linked into place and its name removed.
const holdWhileStoring = true
