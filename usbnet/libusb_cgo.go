//go:build cgo

package usbnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/gousb"

	"github.com/p2plink/p2plink/link"
)

// OpenLibusb opens the host's USB stack through libusb (gousb). Close the
// Bus when done.
func OpenLibusb() (b Bus, err error) {
	defer func() {
		if r := recover(); r != nil { // gousb.NewContext panics when libusb cannot start
			b, err = nil, fmt.Errorf("usbnet: libusb could not start (%v); is /dev/bus/usb present?", r)
		}
	}()
	return &libusbBus{ctx: gousb.NewContext()}, nil
}

type libusbBus struct {
	mu  sync.Mutex
	ctx *gousb.Context
}

func speedName(s gousb.Speed) string {
	switch s {
	case gousb.SpeedLow:
		return "low"
	case gousb.SpeedFull:
		return "full"
	case gousb.SpeedHigh:
		return "high"
	case gousb.SpeedSuper:
		return "super"
	}
	return ""
}

func infoOf(d *gousb.DeviceDesc) DeviceInfo {
	info := DeviceInfo{Bus: d.Bus, Address: d.Address, Vendor: uint16(d.Vendor), Product: uint16(d.Product), Speed: speedName(d.Speed)}
	cfg, ok := d.Configs[1]
	if !ok {
		return info
	}
	for _, it := range cfg.Interfaces {
		for _, alt := range it.AltSettings {
			desc := InterfaceDesc{Number: alt.Number, Alt: alt.Alternate, Class: uint8(alt.Class)}
			for _, ep := range alt.Endpoints {
				desc.Endpoints = append(desc.Endpoints, EndpointDesc{
					Address:       uint8(ep.Address),
					Type:          TransferType(ep.TransferType),
					MaxPacketSize: ep.MaxPacketSize,
				})
			}
			sort.Slice(desc.Endpoints, func(i, j int) bool { return desc.Endpoints[i].Address < desc.Endpoints[j].Address })
			info.Interfaces = append(info.Interfaces, desc)
		}
	}
	return info
}

func (b *libusbBus) Devices() ([]DeviceInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var list []DeviceInfo
	_, err := b.ctx.OpenDevices(func(d *gousb.DeviceDesc) bool {
		list = append(list, infoOf(d))
		return false
	})
	if err != nil && len(list) == 0 {
		return nil, translate(err)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].Bus != list[j].Bus {
			return list[i].Bus < list[j].Bus
		}
		return list[i].Address < list[j].Address
	})
	return list, nil
}

func (b *libusbBus) Open(info DeviceInfo) (Device, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var seen bool
	devs, err := b.ctx.OpenDevices(func(d *gousb.DeviceDesc) bool {
		if d.Bus == info.Bus && d.Address == info.Address {
			seen = true
			return true
		}
		return false
	})
	if len(devs) == 0 {
		if err != nil {
			return nil, translate(err)
		}
		if !seen {
			return nil, fmt.Errorf("usbnet: %v: %w", info, ErrNotPresent)
		}
		return nil, fmt.Errorf("usbnet: %v could not be opened", info)
	}
	for _, d := range devs[1:] {
		d.Close()
	}
	d := devs[0]
	d.ControlTimeout = time.Second
	if err := d.SetAutoDetach(true); err != nil {
		d.Close()
		return nil, fmt.Errorf("usbnet: %v: turning on kernel driver auto-detach: %w", info, translate(err))
	}
	return &libusbDevice{d: d, info: infoOf(d.Desc)}, nil
}

func (b *libusbBus) Close() error { return b.ctx.Close() }

type libusbDevice struct {
	d    *gousb.Device
	info DeviceInfo
	cfg  *gousb.Config
	intf *gousb.Interface
}

func (d *libusbDevice) Info() DeviceInfo { return d.info }

func (d *libusbDevice) Control(rType, request uint8, value, index uint16, data []byte) (int, error) {
	n, err := d.d.Control(rType, request, value, index, data)
	if err != nil {
		return n, translate(err)
	}
	return n, nil
}

// gone reports whether the device has left the bus.
func (d *libusbDevice) gone() bool {
	_, err := d.d.ActiveConfigNum()
	return errors.Is(err, gousb.ErrorNoDevice)
}

func (d *libusbDevice) Claim(cfg, intf, alt int) error {
	c, err := d.d.Config(cfg)
	if err != nil {
		return claimError(d.info, err, d.gone())
	}
	it, err := c.Interface(intf, alt)
	if err != nil {
		c.Close()
		return claimError(d.info, err, d.gone())
	}
	d.cfg, d.intf = c, it
	return nil
}

// claimError classifies a failure to select the configuration or claim
// the interface of the device described by info (gone: it left the bus).
// gousb writes libusb's error into its own text (%v), so the code is
// looked for in the text: busy (a kernel driver that could not be
// detached, or another program, another p2plink among them), no access
// (permissions), or something else, which is said as it is.
func claimError(info any, err error, gone bool) error {
	msg := err.Error()
	switch {
	case gone:
		return fmt.Errorf("usbnet: %v: %v: %w", info, err, link.ErrDisconnected)
	case strings.Contains(msg, gousb.ErrorAccess.Error()):
		return fmt.Errorf("usbnet: %v: %v: %w", info, err, os.ErrPermission)
	case strings.Contains(msg, gousb.ErrorBusy.Error()), strings.Contains(msg, "detach kernel driver"), strings.Contains(msg, "already claimed"):
		return fmt.Errorf("usbnet: %v: %v: %w", info, err, ErrBusy)
	}
	return fmt.Errorf("usbnet: %v: %v", info, err)
}

func (d *libusbDevice) In(addr uint8) (EndpointReader, error) {
	if d.intf == nil {
		return nil, errors.New("usbnet: endpoint opened before Claim")
	}
	ep, err := d.intf.InEndpoint(int(addr & 0x0f))
	if err != nil {
		return nil, translate(err)
	}
	return libusbIn{ep}, nil
}

func (d *libusbDevice) Out(addr uint8) (EndpointWriter, error) {
	if d.intf == nil {
		return nil, errors.New("usbnet: endpoint opened before Claim")
	}
	ep, err := d.intf.OutEndpoint(int(addr & 0x0f))
	if err != nil {
		return nil, translate(err)
	}
	return libusbOut{ep}, nil
}

func (d *libusbDevice) Reset() error {
	if err := d.d.Reset(); err != nil {
		return translate(err)
	}
	return nil
}

func (d *libusbDevice) Close() error {
	if d.intf != nil {
		d.intf.Close()
		d.intf = nil
	}
	if d.cfg != nil {
		d.cfg.Close()
		d.cfg = nil
	}
	if d.d != nil {
		err := d.d.Close()
		d.d = nil
		return err
	}
	return nil
}

type libusbIn struct{ ep *gousb.InEndpoint }

func (e libusbIn) ReadContext(ctx context.Context, p []byte) (int, error) {
	n, err := e.ep.ReadContext(ctx, p)
	if err != nil {
		if ctx.Err() != nil {
			return n, fmt.Errorf("usbnet: read: %w", ctx.Err())
		}
		return n, translate(err)
	}
	return n, nil
}

type libusbOut struct{ ep *gousb.OutEndpoint }

func (e libusbOut) WriteContext(ctx context.Context, p []byte) (int, error) {
	n, err := e.ep.WriteContext(ctx, p)
	if err != nil {
		if ctx.Err() != nil {
			return n, fmt.Errorf("usbnet: write: %w", ctx.Err())
		}
		return n, translate(err)
	}
	return n, nil
}

// translate maps libusb's errors to the seam's, once, here.
func translate(err error) error {
	var sentinel error
	var ue gousb.Error
	var ts gousb.TransferStatus
	switch {
	case errors.As(err, &ue):
		switch ue {
		case gousb.ErrorAccess:
			sentinel = os.ErrPermission
		case gousb.ErrorNoDevice:
			sentinel = link.ErrDisconnected
		case gousb.ErrorBusy:
			sentinel = ErrBusy
		case gousb.ErrorPipe:
			sentinel = ErrStall
		case gousb.ErrorTimeout:
			sentinel = os.ErrDeadlineExceeded
		case gousb.ErrorOverflow:
			sentinel = ErrOverflow
		}
	case errors.As(err, &ts):
		switch ts {
		case gousb.TransferStall:
			sentinel = ErrStall
		case gousb.TransferNoDevice:
			sentinel = link.ErrDisconnected
		case gousb.TransferOverflow:
			sentinel = ErrOverflow
		case gousb.TransferTimedOut:
			sentinel = os.ErrDeadlineExceeded
		case gousb.TransferCancelled:
			sentinel = context.Canceled
		}
	}
	if sentinel == nil {
		return fmt.Errorf("usbnet: libusb: %w", err)
	}
	return fmt.Errorf("usbnet: libusb: %w: %w", sentinel, err)
}
