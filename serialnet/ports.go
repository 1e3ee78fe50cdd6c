package serialnet

import (
	"fmt"
	"strings"

	"go.bug.st/serial/enumerator"
)

// PortInfo describes a serial port found on this machine.
type PortInfo struct {
	Path         string // device path, such as /dev/ttyUSB0
	USB          bool   // the port is a USB adapter; the fields below are known
	VID, PID     string // USB vendor and product IDs, four uppercase hex digits
	SerialNumber string // USB serial number, if the adapter has one
	Manufacturer string // USB manufacturer string
	Product      string // USB product string
}

// String returns a one-line description such as
// "/dev/ttyUSB0 (USB 0403:6001 FTDI FT232R USB UART, serial A10K4L3P)".
func (p PortInfo) String() string {
	if !p.USB {
		return p.Path
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (USB %s:%s", p.Path, p.VID, p.PID)
	for _, s := range []string{p.Manufacturer, p.Product} {
		if s != "" {
			b.WriteString(" ")
			b.WriteString(s)
		}
	}
	if p.SerialNumber != "" {
		b.WriteString(", serial ")
		b.WriteString(p.SerialNumber)
	}
	b.WriteString(")")
	return b.String()
}

// Ports lists the serial ports of this machine, with USB details where the
// port is a USB adapter. Ptys are never listed. It reads sysfs and does not
// probe USB devices; on Linux the library does open each /dev/ttyS* port
// briefly to tell real UARTs from placeholders.
func Ports() ([]PortInfo, error) {
	list, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, fmt.Errorf("serialnet: listing serial ports: %w", err)
	}
	out := make([]PortInfo, 0, len(list))
	for _, d := range list {
		if d == nil || d.Name == "" {
			continue // the enumerator reports ports without a sysfs device as empty entries
		}
		out = append(out, PortInfo{
			Path:         d.Name,
			USB:          d.IsUSB,
			VID:          d.VID,
			PID:          d.PID,
			SerialNumber: d.SerialNumber,
			Manufacturer: d.Manufacturer,
			Product:      d.Product,
		})
	}
	return out, nil
}
