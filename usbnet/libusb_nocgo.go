//go:build !cgo

package usbnet

// OpenLibusb would open the host's USB stack through libusb, but this binary
// was built without cgo: it returns ErrNoLibusb.
func OpenLibusb() (Bus, error) { return nil, ErrNoLibusb }
