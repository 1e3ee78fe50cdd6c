package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FunctionFS constants from <linux/usb/functionfs.h>.
const (
	ffsDescriptorsMagicV2 = 3
	ffsStringsMagic       = 2
	ffsHasFSDesc          = 1
	ffsHasHSDesc          = 2
	ffsAllCtrlRecip       = 64

	ffsEventBind    = 0
	ffsEventUnbind  = 1
	ffsEventEnable  = 2
	ffsEventDisable = 3
	ffsEventSetup   = 4
	ffsEventSuspend = 5
	ffsEventResume  = 6

	ffsEventSize = 12 // struct usb_functionfs_event

	// FUNCTIONFS_ENDPOINT_DESC = _IOR('g', 130, struct usb_endpoint_descriptor /* 9 bytes */)
	ffsIoctlEndpointDesc = 2<<30 | 9<<16 | 'g'<<8 | 130
)

// Peer status: the PL-25A1 vendor request and its bits.
const (
	reqTypeVendorIn  = 0xC0
	reqPeerStatus    = 0xFB
	statusSuspended  = 1 << 0
	statusUnplugged  = 1 << 1
	gadgetConfigRoot = "/sys/kernel/config/usb_gadget"
)

// descriptors returns the FunctionFS v2 descriptor blob: one vendor-class
// interface with an interrupt IN, a bulk OUT and a bulk IN endpoint, at
// full and high speed, like a PL-25A1. ALL_CTRL_RECIP routes the
// device-recipient vendor request 0xFB to us.
func descriptors() []byte {
	intf := []byte{9, 4, 0, 0, 3, 0xff, 0, 0, 0}
	ep := func(addr, attr byte, maxPacket uint16, interval byte) []byte {
		return []byte{7, 5, addr, attr, byte(maxPacket), byte(maxPacket >> 8), interval}
	}
	var fs, hs []byte
	fs = append(fs, intf...)
	fs = append(fs, ep(0x81, 3, 8, 10)...)
	fs = append(fs, ep(0x02, 2, 64, 0)...)
	fs = append(fs, ep(0x83, 2, 64, 0)...)
	hs = append(hs, intf...)
	hs = append(hs, ep(0x81, 3, 8, 4)...)
	hs = append(hs, ep(0x02, 2, 512, 0)...)
	hs = append(hs, ep(0x83, 2, 512, 0)...)

	b := binary.LittleEndian.AppendUint32(nil, ffsDescriptorsMagicV2)
	b = binary.LittleEndian.AppendUint32(b, 0) // length, below
	b = binary.LittleEndian.AppendUint32(b, ffsHasFSDesc|ffsHasHSDesc|ffsAllCtrlRecip)
	b = binary.LittleEndian.AppendUint32(b, 4) // fs_count
	b = binary.LittleEndian.AppendUint32(b, 4) // hs_count
	b = append(b, fs...)
	b = append(b, hs...)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
	return b
}

// noStrings is a FunctionFS strings blob with no strings and no languages.
func noStrings() []byte {
	b := binary.LittleEndian.AppendUint32(nil, ffsStringsMagic)
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint32(b, 0) // str_count
	b = binary.LittleEndian.AppendUint32(b, 0) // lang_count
	return b
}

// end is one end of the cable: a configfs gadget with one FunctionFS
// function, bound to one dummy UDC, enumerating on its own virtual bus.
type end struct {
	name      string // "a" or "b"
	udc       string // e.g. dummy_udc.0
	gadgetDir string
	ep0       int
	intrIn    int
	bulkOut   *aioFile
	bulkIn    *aioFile
	bulkOutFD int

	enabled   atomic.Bool // configured by its host: the cable end is attached
	suspended atomic.Bool

	peer   *end
	toward *fifo // packets waiting for this end's bulk IN
}

func writeFile(path, s string) error {
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		return fmt.Errorf("write %q to %s: %w", s, path, err)
	}
	return nil
}

// setup creates the configfs gadget, mounts FunctionFS, writes the
// descriptors and opens the endpoint files. It does not bind the UDC.
func (e *end) setup(vid, pid uint16, serial string) error {
	g := filepath.Join(gadgetConfigRoot, "p2p"+e.name)
	e.gadgetDir = g
	fn := "ffs.p2p" + e.name
	for _, d := range []string{g, filepath.Join(g, "strings/0x409"), filepath.Join(g, "configs/c.1"),
		filepath.Join(g, "configs/c.1/strings/0x409"), filepath.Join(g, "functions", fn)} {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("mkdir %s: %w (is configfs mounted and libcomposite/usb_f_fs loaded?)", d, err)
		}
	}
	for _, kv := range [][2]string{
		{"idVendor", fmt.Sprintf("0x%04x", vid)},
		{"idProduct", fmt.Sprintf("0x%04x", pid)},
		{"bcdDevice", "0x0100"},
		{"bcdUSB", "0x0200"},
		{"strings/0x409/manufacturer", "p2plink usbrig"},
		{"strings/0x409/product", "PL-25A1-like bridge end " + e.name},
		{"strings/0x409/serialnumber", serial},
		{"configs/c.1/MaxPower", "100"},
		{"configs/c.1/strings/0x409/configuration", "bridge"},
	} {
		if err := writeFile(filepath.Join(g, kv[0]), kv[1]); err != nil {
			return err
		}
	}
	link := filepath.Join(g, "configs/c.1", fn)
	if err := os.Symlink(filepath.Join(g, "functions", fn), link); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("link function into config: %w", err)
	}
	mnt := "/dev/ffs-" + e.name
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("p2p"+e.name, mnt, "functionfs", 0, ""); err != nil && err != unix.EBUSY {
		return fmt.Errorf("mount functionfs at %s: %w", mnt, err)
	}
	ep0, err := unix.Open(mnt+"/ep0", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s/ep0: %w", mnt, err)
	}
	e.ep0 = ep0
	if _, err := unix.Write(ep0, descriptors()); err != nil {
		return fmt.Errorf("write descriptors to %s/ep0: %w", mnt, err)
	}
	if _, err := unix.Write(ep0, noStrings()); err != nil {
		return fmt.Errorf("write strings to %s/ep0: %w", mnt, err)
	}
	// Endpoint files are numbered in descriptor order.
	open := func(n int, flags int) (int, error) {
		fd, err := unix.Open(fmt.Sprintf("%s/ep%d", mnt, n), flags|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, fmt.Errorf("open %s/ep%d: %w", mnt, n, err)
		}
		return fd, nil
	}
	if e.intrIn, err = open(1, unix.O_RDWR); err != nil {
		return err
	}
	if e.bulkOutFD, err = open(2, unix.O_RDWR); err != nil {
		return err
	}
	if e.bulkOut, err = newAIOFile(e.bulkOutFD); err != nil {
		return err
	}
	inFD, err := open(3, unix.O_RDWR)
	if err != nil {
		return err
	}
	if e.bulkIn, err = newAIOFile(inFD); err != nil {
		return err
	}
	return nil
}

func (e *end) plug() error   { return writeFile(filepath.Join(e.gadgetDir, "UDC"), e.udc) }
func (e *end) unplug() error { return writeFile(filepath.Join(e.gadgetDir, "UDC"), "\n") }

func (e *end) status() byte {
	var s byte
	if !e.enabled.Load() {
		s |= statusUnplugged
	}
	if e.suspended.Load() {
		s |= statusSuspended
	}
	return s
}

// serveEP0 reads FunctionFS events and answers control requests. ep0 is
// driven with blocking read/write; main turns asynchronous preemption off
// so that no runtime signal interrupts a reply half way.
func (e *end) serveEP0(verbose bool) {
	buf := make([]byte, ffsEventSize*16)
	for {
		n, err := unix.Read(e.ep0, buf)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			log.Printf("end %s: read ep0: %v; events stop", e.name, err)
			return
		}
		for off := 0; off+ffsEventSize <= n; off += ffsEventSize {
			ev := buf[off : off+ffsEventSize]
			e.handleEvent(ev[8], ev[:8], verbose)
		}
	}
}

func (e *end) handleEvent(typ byte, setup []byte, verbose bool) {
	switch typ {
	case ffsEventBind:
		logf(verbose, "end %s: bind", e.name)
	case ffsEventUnbind:
		logf(true, "end %s: unbind (unplugged)", e.name)
		e.enabled.Store(false)
		e.toward.flush()
	case ffsEventEnable:
		logf(true, "end %s: enable (attached)", e.name)
		e.suspended.Store(false)
		e.enabled.Store(true)
	case ffsEventDisable:
		logf(verbose, "end %s: disable", e.name)
		e.enabled.Store(false)
		e.toward.flush()
	case ffsEventSuspend:
		e.suspended.Store(true)
	case ffsEventResume:
		e.suspended.Store(false)
	case ffsEventSetup:
		e.handleSetup(setup, verbose)
	}
}

func (e *end) handleSetup(s []byte, verbose bool) {
	reqType, req := s[0], s[1]
	wLength := int(binary.LittleEndian.Uint16(s[6:]))
	logf(verbose, "end %s: setup %02x %02x len %d", e.name, reqType, req, wLength)
	if reqType == reqTypeVendorIn && req == reqPeerStatus {
		reply := []byte{e.status(), e.peer.status()}
		if wLength < len(reply) {
			reply = reply[:wLength]
		}
		if _, err := unix.Write(e.ep0, reply); err != nil {
			log.Printf("end %s: peer status reply: %v", e.name, err)
		}
		return
	}
	if reqType&0x80 != 0 {
		// Unknown IN request: stall it (FunctionFS halts ep0 on a read
		// during an IN setup).
		_, _ = unix.Read(e.ep0, nil)
		return
	}
	// OUT request (e.g. PL-2301 SET/CLEAR_FEATURE): accept its data.
	data := make([]byte, wLength)
	if _, err := unix.Read(e.ep0, data); err != nil {
		log.Printf("end %s: ack OUT request %02x: %v", e.name, req, err)
	}
}

// maxPacket asks FunctionFS for the active descriptor of an endpoint; it
// blocks until the endpoint is enabled.
func maxPacket(fd int) int {
	var d [9]byte
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), ffsIoctlEndpointDesc, uintptr(unsafe.Pointer(&d[0])))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 512
		}
		mp := int(binary.LittleEndian.Uint16(d[4:]) & 0x7ff)
		if mp == 0 {
			return 512
		}
		return mp
	}
}

// pumpOut reads e's bulk OUT endpoint packet by packet into the FIFO
// toward the peer. A packet is read only when the FIFO has room for a
// full one, so a full FIFO NAKs the writing host.
func (e *end) pumpOut() {
	for {
		mp := maxPacket(e.bulkOutFD)
		e.peer.toward.reserve(mp)
		buf := make([]byte, mp)
		n, err := e.bulkOut.read(buf)
		if err != nil {
			e.peer.toward.commit(mp, nil)
			time.Sleep(5 * time.Millisecond) // the end went away; wait for it
			continue
		}
		e.peer.toward.commit(mp, buf[:n])
	}
}

// pumpIn writes packets from the FIFO toward e into e's bulk IN endpoint,
// one packet per request, so short and zero-length packets stay exact.
func (e *end) pumpIn() {
	for {
		pkt, gen := e.toward.peek()
		if _, err := e.bulkIn.write(pkt); err != nil {
			// The end was disabled; its FIFO is flushed by the event.
			time.Sleep(5 * time.Millisecond)
			continue
		}
		e.toward.pop(gen)
	}
}

func logf(on bool, format string, args ...any) {
	if on {
		log.Printf(format, args...)
	}
}
