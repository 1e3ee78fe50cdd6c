//go:build unix

package serialnet

import (
	"os/exec"
	"syscall"
)

// runAsNobody makes cmd run as user nobody (uid and gid 65534).
func runAsNobody(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
}
