//go:build unix

package xfer

import "syscall"

// mkfifo makes a named pipe, a special file Send must skip.
func mkfifo(path string) error { return syscall.Mkfifo(path, 0o644) }
