//go:build !unix

package serialnet

import "os/exec"

// runAsNobody does nothing here: the tests that use it need root on Unix
// and skip elsewhere.
func runAsNobody(cmd *exec.Cmd) {}
