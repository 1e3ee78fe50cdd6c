//go:build unix

package serialnet

import (
	"os"
	"syscall"
)

// permissionHint says who may open path and how to become one of them.
func permissionHint(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "check the device's owner and mode with `ls -l " + path + "`"
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "check the device's owner and mode with `ls -l " + path + "`"
	}
	return permissionHintFor(path, fi.Mode().Perm(), userName(st.Uid), groupName(st.Gid))
}
