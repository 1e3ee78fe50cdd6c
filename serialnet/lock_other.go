//go:build !unix

package serialnet

import "os"

// lockPort does nothing here: the system opens a serial port exclusively.
func lockPort(f *os.File) error { return nil }
