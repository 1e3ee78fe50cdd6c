//go:build !unix

package serialnet

// NoAccess returns "": whether a port may be opened is found by opening
// it here.
func NoAccess(path string) string { return "" }

// Unchecked returns nothing here: Ports lists every port.
func Unchecked(listed []PortInfo) []string { return nil }
