//go:build unix

package serialnet

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// lockPort takes an advisory lock on the open device f for as long as it
// stays open, so that a second p2plink on the same port is refused rather
// than splitting the incoming bytes with the first. The exclusive open of
// the serial library (TIOCEXCL) does not stop root; this does. A device
// that cannot be locked is used unlocked.
func lockPort(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch err {
		case unix.EINTR:
			continue
		case unix.EWOULDBLOCK:
			return fmt.Errorf("another p2plink (or a program that locks it) holds the port: %w", unix.EBUSY)
		}
		return nil
	}
}
