//go:build unix

package xfer

import (
	"bufio"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// umask is the process's file mode creation mask, read when the package
// is loaded: received files and folders get the sender's permission bits
// less these, as files a program creates here do.
var umask = readUmask()

func readUmask() fs.FileMode {
	// Linux says it without changing it; elsewhere it is read by setting
	// it, once, before any file is made.
	if f, err := os.Open("/proc/self/status"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return fs.FileMode(m) & fs.ModePerm
				}
			}
		}
	}
	m := syscall.Umask(0o022)
	syscall.Umask(m)
	return fs.FileMode(m) & fs.ModePerm
}
