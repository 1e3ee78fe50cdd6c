package usbnet

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"
)

// Config selects a cable and tunes the driver. The zero Config opens the
// only known bridge cable present through libusb.
type Config struct {
	// Bus is the USB stack to use; nil means libusb (which needs a binary
	// built with cgo). Tests pass an end of a usbtest cable.
	Bus Bus
	// Vendor and Product select the cable by ids (--device VID:PID); zero
	// means any known bridge cable.
	Vendor, Product uint16
	// BusNum and Address select the cable by position (--bus N --addr M);
	// zero means anywhere. After a replug the address changes: the driver
	// then looks for the same ids on the same bus.
	BusNum, Address int
	// Family says how to drive a device whose ids are not in Chips; zero
	// refuses such devices.
	Family Family
	// HardwareAddr is this end's MAC address in the Ethernet headers; nil
	// means a random locally administered one.
	HardwareAddr net.HardwareAddr
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
	// TransferTimeout bounds every bulk transfer; default 2s. A write the
	// far end does not take within it fails with a timeout.
	TransferTimeout time.Duration
	// PollInterval is how often the driver polls the peer status and, while
	// the cable is gone, looks for it again; default 250ms.
	PollInterval time.Duration
	// DrainTimeout is how long the driver reads stale bytes on open;
	// default 50ms.
	DrainTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.TransferTimeout <= 0 {
		c.TransferTimeout = 2 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 250 * time.Millisecond
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 50 * time.Millisecond
	}
	return c
}

// Cable is a bridge cable found on the bus.
type Cable struct {
	DeviceInfo
	Chip Chip
}

// String describes the cable: "067b:25a1 on bus 1 address 4 (Prolific PL-25A1)".
func (c Cable) String() string { return fmt.Sprintf("%v (%s)", c.DeviceInfo, c.Chip.Name) }

// Cables lists the known bridge cables present, through libusb. A binary
// built without cgo returns ErrNoLibusb.
func Cables() ([]Cable, error) {
	bus, err := OpenLibusb()
	if err != nil {
		return nil, err
	}
	defer bus.Close()
	return ListCables(bus)
}

// ListCables lists the known bridge cables on bus.
func ListCables(bus Bus) ([]Cable, error) {
	devs, err := bus.Devices()
	if err != nil {
		return nil, fmt.Errorf("usbnet: listing USB devices: %w", err)
	}
	var out []Cable
	for _, d := range devs {
		if chip, ok := LookupChip(d.Vendor, d.Product); ok {
			out = append(out, Cable{d, chip})
		}
	}
	return out, nil
}

// criteria describes what Config looks for, for messages.
func (c Config) criteria() string {
	var parts []string
	if c.Vendor != 0 || c.Product != 0 {
		parts = append(parts, fmt.Sprintf("device %04x:%04x", c.Vendor, c.Product))
	}
	if c.BusNum != 0 {
		parts = append(parts, fmt.Sprintf("bus %d", c.BusNum))
	}
	if c.Address != 0 {
		parts = append(parts, fmt.Sprintf("address %d", c.Address))
	}
	if len(parts) == 0 {
		ids := make([]string, len(Chips))
		for i, ch := range Chips {
			ids[i] = ch.ID()
		}
		return "a known USB bridge cable (" + strings.Join(ids, ", ") + ")"
	}
	return strings.Join(parts, ", ")
}

func (c Config) matches(d DeviceInfo) bool {
	if (c.Vendor != 0 || c.Product != 0) && (d.Vendor != c.Vendor || d.Product != c.Product) {
		return false
	}
	if c.BusNum != 0 && d.Bus != c.BusNum {
		return false
	}
	if c.Address != 0 && d.Address != c.Address {
		return false
	}
	if c.Vendor == 0 && c.Product == 0 && c.Address == 0 {
		// No ids and no exact position: only known cables (a bus number
		// alone would also match the bus's root hub).
		_, ok := LookupChip(d.Vendor, d.Product)
		return ok
	}
	return true
}

// chipFor returns how to drive d.
func (c Config) chipFor(d DeviceInfo) (Chip, error) {
	if chip, ok := LookupChip(d.Vendor, d.Product); ok {
		return chip, nil
	}
	if c.Family != 0 {
		return Chip{Vendor: d.Vendor, Product: d.Product, Name: "unlisted " + c.Family.String() + " cable", Family: c.Family}, nil
	}
	return Chip{}, fmt.Errorf("usbnet: %v is not a known USB bridge cable; known ids: %s", d, c.criteria())
}

// pick chooses the one device Config selects on bus.
func (c Config) pick(bus Bus) (DeviceInfo, Chip, error) {
	devs, err := bus.Devices()
	if err != nil {
		return DeviceInfo{}, Chip{}, fmt.Errorf("usbnet: listing USB devices: %w", err)
	}
	var found []DeviceInfo
	for _, d := range devs {
		if c.matches(d) {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return DeviceInfo{}, Chip{}, fmt.Errorf("%w: looked for %s; USB devices present: %s", ErrNotPresent, c.criteria(), describe(devs))
	case 1:
		chip, err := c.chipFor(found[0])
		return found[0], chip, err
	}
	return DeviceInfo{}, Chip{}, fmt.Errorf("%w: %s; choose one with --device VID:PID or --bus N --addr M", ErrAmbiguous, describe(found))
}

func describe(devs []DeviceInfo) string {
	if len(devs) == 0 {
		return "none"
	}
	s := make([]string, len(devs))
	for i, d := range devs {
		s[i] = d.String()
		if chip, ok := LookupChip(d.Vendor, d.Product); ok {
			s[i] += " (" + chip.Name + ")"
		}
	}
	return strings.Join(s, "; ")
}
