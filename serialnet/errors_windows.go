//go:build windows

package serialnet

// permissionHint says why Windows may refuse a port: another program has it
// open (Windows opens serial ports exclusively), or it needs an
// administrator.
func permissionHint(path string) string {
	return path + " is open in another program (a terminal, a modem or sync tool: close it), or needs an administrator"
}
