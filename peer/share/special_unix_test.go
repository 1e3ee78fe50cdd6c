//go:build unix

package share

import "syscall"

// mkfifo makes a named pipe, a special file a share must not serve.
func mkfifo(path string) error { return syscall.Mkfifo(path, 0o644) }

// mknodNull makes a character device like /dev/null (root only).
func mknodNull(path string) error { return syscall.Mknod(path, syscall.S_IFCHR|0o666, 1<<8|3) }
