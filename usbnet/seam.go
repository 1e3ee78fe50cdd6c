package usbnet

import (
	"context"
	"errors"
	"fmt"
)

// This file is the seam between the driver and the USB library. The driver
// knows only these interfaces; the libusb implementation (files built with
// cgo) and the fake cable in package usbtest fill them. A test rig with its
// own USB stack may fill them too and pass its Bus in Config.Bus.

// Bus is one host's view of its USB devices.
type Bus interface {
	// Devices lists the devices present now, without opening them.
	Devices() ([]DeviceInfo, error)
	// Open opens the device described by info (matched by bus and
	// address). It returns an error wrapping os.ErrPermission when the
	// device node may not be opened, and one wrapping ErrNotPresent when
	// the device is gone.
	Open(info DeviceInfo) (Device, error)
	// Close releases the bus. Devices opened from it must be closed first.
	Close() error
}

// Device is one opened USB device.
//
// Errors from every method wrap link.ErrDisconnected when the device has
// gone away, ErrStall when the device answered with a STALL, and
// os.ErrPermission when the operating system refused access.
type Device interface {
	// Info describes the device.
	Info() DeviceInfo
	// Control runs a control transfer on endpoint 0. rType is
	// bmRequestType; for device-to-host requests (bit 7 set) data receives
	// up to len(data) bytes. It returns the bytes transferred. Control
	// transfers must time out by themselves (a second is plenty).
	Control(rType, request uint8, value, index uint16, data []byte) (int, error)
	// Claim detaches any kernel driver from interface intf, selects
	// configuration cfg if it is not active, claims the interface and
	// selects alternate setting alt. An error wrapping ErrBusy means a
	// kernel driver or another program holds the interface.
	Claim(cfg, intf, alt int) error
	// In returns the claimed interface's IN endpoint with address addr
	// (bit 7 set).
	In(addr uint8) (EndpointReader, error)
	// Out returns the claimed interface's OUT endpoint with address addr.
	Out(addr uint8) (EndpointWriter, error)
	// Reset resets the device (a USB port reset). The handle may be
	// unusable afterwards; the caller closes it and opens the device anew.
	Reset() error
	// Close releases the interface and the device. It is safe to call more
	// than once.
	Close() error
}

// EndpointReader is an IN endpoint. One ReadContext is one USB transfer: it
// ends when a packet shorter than the endpoint's wMaxPacketSize arrives or p
// is full, so len(p) should be a multiple of wMaxPacketSize (a full packet
// that does not fit is an overflow error). When ctx ends first it returns
// the bytes received so far and an error wrapping ctx.Err().
type EndpointReader interface {
	ReadContext(ctx context.Context, p []byte) (int, error)
}

// EndpointWriter is an OUT endpoint. One WriteContext is one USB transfer,
// sent as packets of wMaxPacketSize; a transfer whose length is a multiple
// of wMaxPacketSize is not terminated by a zero-length packet. When ctx ends
// first it returns the bytes sent so far and an error wrapping ctx.Err().
type EndpointWriter interface {
	WriteContext(ctx context.Context, p []byte) (int, error)
}

// DeviceInfo describes a USB device as enumeration sees it.
type DeviceInfo struct {
	Bus, Address int    // where the device sits now; changes on replug
	Vendor       uint16 // idVendor
	Product      uint16 // idProduct
	Speed        string // "full", "high", "super", ... ("" if unknown)
	// Interfaces lists the interfaces of configuration 1 with their
	// alternate settings (nil when the descriptors could not be read).
	Interfaces []InterfaceDesc
}

// ID returns "vvvv:pppp", the form --device takes.
func (d DeviceInfo) ID() string { return fmt.Sprintf("%04x:%04x", d.Vendor, d.Product) }

// String describes the device for messages: "067b:25a1 on bus 1 address 4".
func (d DeviceInfo) String() string {
	return fmt.Sprintf("%s on bus %d address %d", d.ID(), d.Bus, d.Address)
}

// InterfaceDesc is one alternate setting of an interface.
type InterfaceDesc struct {
	Number, Alt int
	Class       uint8
	Endpoints   []EndpointDesc
}

// EndpointDesc is an endpoint descriptor.
type EndpointDesc struct {
	Address       uint8 // bit 7 set for IN
	Type          TransferType
	MaxPacketSize int // wMaxPacketSize
}

// IsIn reports whether the endpoint moves data from device to host.
func (e EndpointDesc) IsIn() bool { return e.Address&0x80 != 0 }

// TransferType is an endpoint's transfer type (bmAttributes bits 0–1).
type TransferType uint8

// Transfer types.
const (
	Control     TransferType = 0
	Isochronous TransferType = 1
	Bulk        TransferType = 2
	Interrupt   TransferType = 3
)

// Errors of the seam and of device selection. Test with errors.Is.
var (
	// ErrStall reports a STALL handshake: the endpoint halted or the chip
	// does not support a control request.
	ErrStall = errors.New("usbnet: the device stalled the request")
	// ErrBusy reports an interface held by a kernel driver that could not
	// be detached, or by another program.
	ErrBusy = errors.New("usbnet: the interface is held by a kernel driver or another program")
	// ErrOverflow reports a packet larger than the room left in a read
	// buffer (babble).
	ErrOverflow = errors.New("usbnet: transfer overflow (read buffer not a multiple of wMaxPacketSize)")
	// ErrNotPresent reports that no device matched what was looked for.
	ErrNotPresent = errors.New("usbnet: no USB bridge cable found")
	// ErrAmbiguous reports several cables where one was expected.
	ErrAmbiguous = errors.New("usbnet: several USB bridge cables found")
	// ErrNoLibusb reports a binary built without cgo, so without libusb.
	ErrNoLibusb = errors.New("p2plink was built without libusb (CGO_ENABLED=0); rebuild with cgo and libusb-1.0-0-dev to use USB cables")
)
