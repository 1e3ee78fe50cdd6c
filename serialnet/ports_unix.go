//go:build unix

package serialnet

import (
	"errors"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// NoAccess returns, for a port this user may not open, why and what to
// do about it (the group to join, the udev rule to add); "" if the user
// may open it, or if that cannot be told.
func NoAccess(path string) string {
	if err := unix.Access(path, unix.R_OK|unix.W_OK); errors.Is(err, unix.EACCES) {
		return permissionHint(path)
	}
	return ""
}

// builtinPorts names the built-in serial ports; tests point it elsewhere.
var builtinPorts = "/dev/ttyS*"

// Unchecked returns the built-in serial ports (/dev/ttyS*) that Ports
// leaves out because this user may not open them: the library tells a
// real UART from one of the placeholders the kernel makes by opening it,
// so without that permission it cannot tell, and lists neither.
func Unchecked(listed []PortInfo) []string {
	matches, _ := filepath.Glob(builtinPorts)
	seen := map[string]bool{}
	for _, p := range listed {
		seen[p.Path] = true
	}
	var out []string
	for _, m := range matches {
		if !seen[m] && NoAccess(m) != "" {
			out = append(out, m)
		}
	}
	return out
}
