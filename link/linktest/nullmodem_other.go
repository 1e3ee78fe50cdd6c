//go:build !unix

package linktest

import "errors"

// NullModemConfig sets up a NullModem; see the Unix version.
type NullModemConfig struct {
	Baud, BitsPerByte int
	Seed              uint64
	BitErrorRate      float64
	DropRate          float64
	Buffer            int
}

// NullModem needs pseudo-terminals, which only Unix has.
type NullModem struct{}

// NewNullModem fails: there are no ptys on this system.
func NewNullModem(NullModemConfig) (*NullModem, error) {
	return nil, errors.New("linktest: a null modem needs Unix pseudo-terminals")
}

// PortA returns "".
func (*NullModem) PortA() string { return "" }

// PortB returns "".
func (*NullModem) PortB() string { return "" }

// Unplug does nothing.
func (*NullModem) Unplug() {}

// Replug does nothing.
func (*NullModem) Replug() {}

// Stats returns zeros.
func (*NullModem) Stats() ByteStats { return ByteStats{} }

// Close does nothing.
func (*NullModem) Close() error { return nil }
