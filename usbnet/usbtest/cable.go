// Package usbtest is an in-memory USB host-to-host bridge cable for tests:
// two ends, each a usbnet.Bus holding one device, joined by a chip that keeps
// USB's rules.
//
//   - Data moves in packets of wMaxPacketSize; a transfer ends at a short
//     packet (or when the reader's buffer is full), so two writes can merge
//     into one read when the first is a multiple of wMaxPacketSize.
//   - A write of exactly a multiple of wMaxPacketSize sends no zero-length
//     packet after it (libusb's default); a zero-length write sends one,
//     unless Config.DropZLP says the chip loses them, as real chips do.
//   - Each direction is a bounded FIFO (2 KiB, as in the PL-25A1). A writer
//     whose packet does not fit waits until the far side reads; its context
//     ends the wait. A read buffer too small for a full packet overflows.
//   - The descriptors carry the endpoint addresses you choose.
//   - Control requests: the PL-25A1 peer status (0xC0/0xFB), the PL-2301
//     feature bits (0x40, requests 1 and 3) shown on the interrupt endpoint,
//     and NET1080 register reads (0xC0/0x10, STATUS 0x11 bit 14); the rest
//     stall.
//   - Either end can be unplugged (its device vanishes from its bus and every
//     call on an open handle fails with link.ErrDisconnected) and plugged in
//     again at a new address.
package usbtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"

	"github.com/p2plink/p2plink/link"
	"github.com/p2plink/p2plink/usbnet"
)

// Config chooses the cable's identity and behaviour. Zero fields take the
// defaults given.
type Config struct {
	Vendor, Product uint16 // default 067b:25a1 (PL-25A1)
	MaxPacketSize   int    // wMaxPacketSize of the bulk endpoints; default 512
	BulkIn          uint8  // default 0x83
	BulkOut         uint8  // default 0x02
	IntrIn          uint8  // default 0x81
	FIFO            int    // bytes buffered per direction; default 2048
	Speed           string // default "high"
	BusNum          int    // the bus number both ends report; default 1
	// DropZLP makes the chip lose zero-length packets.
	DropZLP bool
	// StallControl makes the chip stall every control request.
	StallControl bool
	// Others are further devices present on both buses (a keyboard, a
	// hub), listed by Devices but not openable.
	Others []usbnet.DeviceInfo
}

// Cable is the fake bridge cable. Its methods are safe for concurrent use.
type Cable struct {
	cfg  Config
	ends [2]*End

	mu      sync.Mutex
	waiters int
	changed chan struct{} // closed and replaced on a change, when someone waits
	fifo    [2]fifo       // fifo[i] carries what end i writes to end 1-i
}

// End is one end of the cable: the device as one host sees it, and that
// host's bus. It implements usbnet.Bus.
type End struct {
	c    *Cable
	i    int
	addr int // USB address; changes on replug

	// Under c.mu.
	plugged  bool
	gen      int   // incremented on unplug; handles of older generations are dead
	features uint8 // PL-2301 feature bits this end's host set
	claimed  bool
	busy     bool
	denied   bool
	halted   bool // bulk endpoints stall until a reset

	controlTimeouts int // the next control requests that time out
}

// New returns a cable with both ends plugged in.
func New(cfg Config) *Cable {
	if cfg.Vendor == 0 && cfg.Product == 0 {
		cfg.Vendor, cfg.Product = 0x067b, 0x25a1
	}
	if cfg.MaxPacketSize == 0 {
		cfg.MaxPacketSize = 512
	}
	if cfg.BulkIn == 0 {
		cfg.BulkIn = 0x83
	}
	if cfg.BulkOut == 0 {
		cfg.BulkOut = 0x02
	}
	if cfg.IntrIn == 0 {
		cfg.IntrIn = 0x81
	}
	if cfg.FIFO == 0 {
		cfg.FIFO = 2048
	}
	if cfg.BusNum == 0 {
		cfg.BusNum = 1
	}
	if cfg.Speed == "" {
		cfg.Speed = "high"
	}
	c := &Cable{cfg: cfg, changed: make(chan struct{})}
	for i := range c.ends {
		c.ends[i] = &End{c: c, i: i, addr: 4 + i, plugged: true}
		c.fifo[i] = newFIFO(cfg.FIFO)
	}
	return c
}

// A and B return the cable's two ends.
func (c *Cable) A() *End { return c.ends[0] }

// B returns the second end.
func (c *Cable) B() *End { return c.ends[1] }

// broadcast wakes every waiter. Called with c.mu held.
func (c *Cable) broadcast() {
	if c.waiters > 0 {
		close(c.changed)
		c.changed = make(chan struct{})
	}
}

// wait releases c.mu until something changes or ctx ends; c.mu is held
// again on return.
func (c *Cable) wait(ctx context.Context) error {
	c.waiters++
	ch := c.changed
	c.mu.Unlock()
	var err error
	select {
	case <-ch:
	case <-ctx.Done():
		err = ctx.Err()
	}
	c.mu.Lock()
	c.waiters--
	return err
}

func (e *End) far() *End { return e.c.ends[1-e.i] }

// Unplug pulls this end out of its host: the device leaves the bus, open
// handles fail with link.ErrDisconnected, and the far end's peer status
// shows this side unplugged. Bytes already in the FIFO towards this end stay
// there (stale bytes a reopening driver must drain).
func (e *End) Unplug() {
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	if !e.plugged {
		return
	}
	e.plugged = false
	e.gen++
	e.features = 0
	e.claimed = false
	e.c.broadcast()
}

// Plug puts this end back; the device appears at a new address.
func (e *End) Plug() {
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	if e.plugged {
		return
	}
	e.plugged = true
	e.addr += 2
	e.c.broadcast()
}

// TimeOutControl makes the next n control requests on this end time out,
// as a loaded host or a slow chip can.
func (e *End) TimeOutControl(n int) { e.c.mu.Lock(); e.controlTimeouts = n; e.c.mu.Unlock() }

// SetBusy makes Claim fail as if a kernel driver held the interface and
// could not be detached.
func (e *End) SetBusy(busy bool) { e.c.mu.Lock(); e.busy = busy; e.c.mu.Unlock() }

// Halt wedges this end's chip, as PL-2301s do under load: its bulk
// endpoints answer STALL (usbnet.ErrStall) until the device is reset.
func (e *End) Halt() { e.c.mu.Lock(); e.halted = true; e.c.broadcast(); e.c.mu.Unlock() }

// SetDenied makes Open fail as if the device node were not accessible.
func (e *End) SetDenied(denied bool) { e.c.mu.Lock(); e.denied = denied; e.c.mu.Unlock() }

// Write puts p into the FIFO towards this end as if the far host wrote it,
// without a far driver: handy for injecting garbage. It follows the same
// packet rules as a write on the far end's OUT endpoint.
func (e *End) Write(ctx context.Context, p []byte) (int, error) {
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	return e.c.write(ctx, 1-e.i, p)
}

// Buffered returns the bytes waiting in the FIFO towards this end.
func (e *End) Buffered() int {
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	return e.c.fifo[1-e.i].used
}

func (e *End) info() usbnet.DeviceInfo {
	cfg := e.c.cfg
	mps := cfg.MaxPacketSize
	return usbnet.DeviceInfo{
		Bus: cfg.BusNum, Address: e.addr, Vendor: cfg.Vendor, Product: cfg.Product, Speed: cfg.Speed,
		Interfaces: []usbnet.InterfaceDesc{{Number: 0, Alt: 0, Class: 0xff, Endpoints: []usbnet.EndpointDesc{
			{Address: cfg.IntrIn, Type: usbnet.Interrupt, MaxPacketSize: 1},
			{Address: cfg.BulkOut, Type: usbnet.Bulk, MaxPacketSize: mps},
			{Address: cfg.BulkIn, Type: usbnet.Bulk, MaxPacketSize: mps},
		}}},
	}
}

// Devices lists the cable's device, when plugged, and Config.Others.
func (e *End) Devices() ([]usbnet.DeviceInfo, error) {
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	var list []usbnet.DeviceInfo
	list = append(list, e.c.cfg.Others...)
	if e.plugged {
		list = append(list, e.info())
	}
	return list, nil
}

// Open opens the cable's device.
func (e *End) Open(info usbnet.DeviceInfo) (usbnet.Device, error) {
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	if !e.plugged || info.Bus != e.c.cfg.BusNum || info.Address != e.addr {
		return nil, fmt.Errorf("usbtest: open %v: %w", info, usbnet.ErrNotPresent)
	}
	if e.denied {
		return nil, fmt.Errorf("usbtest: open /dev/bus/usb/%03d/%03d: %w", e.c.cfg.BusNum, e.addr, os.ErrPermission)
	}
	return &handle{e: e, gen: e.gen}, nil
}

// Close does nothing; it completes usbnet.Bus.
func (e *End) Close() error { return nil }

// handle is an opened device.
type handle struct {
	e      *End
	gen    int
	closed bool
	claim  bool
}

// check reports why the handle cannot be used. Called with c.mu held.
func (h *handle) check() error {
	if h.closed {
		return fmt.Errorf("usbtest: device handle used after Close: %w", net.ErrClosed)
	}
	if !h.e.plugged || h.e.gen != h.gen {
		return fmt.Errorf("usbtest: device gone: %w", link.ErrDisconnected)
	}
	return nil
}

func (h *handle) Info() usbnet.DeviceInfo {
	h.e.c.mu.Lock()
	defer h.e.c.mu.Unlock()
	return h.e.info()
}

func (h *handle) Control(rType, request uint8, value, index uint16, data []byte) (int, error) {
	c := h.e.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := h.check(); err != nil {
		return 0, err
	}
	if c.cfg.StallControl {
		return 0, fmt.Errorf("usbtest: control %#02x/%#02x: %w", rType, request, usbnet.ErrStall)
	}
	if h.e.controlTimeouts > 0 {
		h.e.controlTimeouts--
		return 0, fmt.Errorf("usbtest: control %#02x/%#02x: %w", rType, request, os.ErrDeadlineExceeded)
	}
	far := h.e.far()
	switch {
	case rType == 0xC0 && request == 0xFB && len(data) >= 2:
		data[0] = 0
		data[1] = 0
		if !far.plugged {
			data[1] = 0x02
		}
		return 2, nil
	case rType == 0x40 && (request == 3 || request == 1) && len(data) == 0:
		if request == 3 {
			h.e.features |= uint8(value)
		} else {
			h.e.features &^= uint8(value)
		}
		c.broadcast()
		return 0, nil
	case rType == 0xC0 && request == 0x10 && len(data) >= 2:
		data[0], data[1] = 0, 0
		if index == 0x11 && far.plugged && far.claimed {
			data[1] = 0x40 // STATUS bit 14: the other side is connected
		}
		return 2, nil
	case rType == 0x40 && request == 0x10:
		return 0, nil
	}
	return 0, fmt.Errorf("usbtest: control %#02x/%#02x: %w", rType, request, usbnet.ErrStall)
}

func (h *handle) Claim(cfg, intf, alt int) error {
	c := h.e.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := h.check(); err != nil {
		return err
	}
	if h.e.busy {
		return fmt.Errorf("usbtest: claim interface %d: %w", intf, usbnet.ErrBusy)
	}
	if cfg != 1 || intf != 0 || alt != 0 {
		return fmt.Errorf("usbtest: no configuration %d interface %d alt %d", cfg, intf, alt)
	}
	h.claim = true
	h.e.claimed = true
	c.broadcast()
	return nil
}

func (h *handle) In(addr uint8) (usbnet.EndpointReader, error) {
	cfg := h.e.c.cfg
	switch {
	case !h.claim:
		return nil, fmt.Errorf("usbtest: endpoint %#02x: interface not claimed", addr)
	case addr == cfg.BulkIn:
		return bulkIn{h}, nil
	case addr == cfg.IntrIn:
		return intrIn{h}, nil
	}
	return nil, fmt.Errorf("usbtest: no IN endpoint %#02x (the cable has %#02x)", addr, cfg.BulkIn)
}

func (h *handle) Out(addr uint8) (usbnet.EndpointWriter, error) {
	cfg := h.e.c.cfg
	switch {
	case !h.claim:
		return nil, fmt.Errorf("usbtest: endpoint %#02x: interface not claimed", addr)
	case addr == cfg.BulkOut:
		return bulkOut{h}, nil
	}
	return nil, fmt.Errorf("usbtest: no OUT endpoint %#02x (the cable has %#02x)", addr, cfg.BulkOut)
}

// Reset clears the PL-2301 feature bits and a halt; the handle stays usable.
func (h *handle) Reset() error {
	c := h.e.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := h.check(); err != nil {
		return err
	}
	h.e.features = 0
	h.e.halted = false
	c.broadcast()
	return nil
}

// checkBulk is check plus the halt condition. Called with c.mu held.
func (h *handle) checkBulk() error {
	if err := h.check(); err != nil {
		return err
	}
	if h.e.halted {
		return fmt.Errorf("usbtest: bulk endpoint halted: %w", usbnet.ErrStall)
	}
	return nil
}

func (h *handle) Close() error {
	c := h.e.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	if h.claim && h.e.gen == h.gen {
		h.e.claimed = false
	}
	c.broadcast()
	return nil
}

type bulkIn struct{ h *handle }

func (b bulkIn) ReadContext(ctx context.Context, p []byte) (int, error) {
	c := b.h.e.c
	mps := c.cfg.MaxPacketSize
	c.mu.Lock()
	defer c.mu.Unlock()
	f := &c.fifo[1-b.h.e.i]
	n := 0
	for {
		if err := b.h.checkBulk(); err != nil {
			return n, err
		}
		if f.packets > 0 {
			size := f.peekLen()
			if size > len(p)-n {
				f.pop(nil)
				c.broadcast()
				return n, fmt.Errorf("usbtest: %d-byte packet with %d bytes of buffer left: %w", size, len(p)-n, usbnet.ErrOverflow)
			}
			f.pop(p[n : n+size])
			n += size
			c.broadcast()
			if size < mps || n == len(p) {
				return n, nil
			}
			continue
		}
		if err := c.wait(ctx); err != nil {
			return n, err
		}
	}
}

type bulkOut struct{ h *handle }

func (b bulkOut) WriteContext(ctx context.Context, p []byte) (int, error) {
	c := b.h.e.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := b.h.checkBulk(); err != nil {
		return 0, err
	}
	return c.write(ctx, b.h.e.i, p, b.h.checkBulk)
}

// write sends p as one transfer from end i. Called with c.mu held.
func (c *Cable) write(ctx context.Context, from int, p []byte, checks ...func() error) (int, error) {
	mps := c.cfg.MaxPacketSize
	f := &c.fifo[from]
	n := 0
	for {
		size := min(mps, len(p)-n)
		if size == 0 && (n > 0 || c.cfg.DropZLP) {
			return n, nil // no ZLP after a full packet; a lone ZLP may be lost
		}
		for !f.fits(size) {
			if err := c.wait(ctx); err != nil {
				return n, err
			}
			for _, check := range checks {
				if err := check(); err != nil {
					return n, err
				}
			}
		}
		f.push(p[n : n+size])
		n += size
		c.broadcast()
		if size < mps {
			return n, nil
		}
	}
}

type intrIn struct{ h *handle }

// ReadContext returns one byte: the feature bits the far end's host set.
func (r intrIn) ReadContext(ctx context.Context, p []byte) (int, error) {
	c := r.h.e.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := r.h.check(); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = 0
	if far := r.h.e.far(); far.plugged {
		p[0] = far.features
	}
	return 1, nil
}

// fifo is a ring of bytes and a ring of packet lengths.
type fifo struct {
	buf        []byte
	head, used int
	lens       []int
	lhead      int
	packets    int
}

func newFIFO(size int) fifo {
	return fifo{buf: make([]byte, size), lens: make([]int, size+1)}
}

func (f *fifo) fits(n int) bool {
	return f.packets < len(f.lens) && (f.used+n <= len(f.buf) || f.used == 0 && n <= len(f.buf))
}

func (f *fifo) push(p []byte) {
	tail := (f.head + f.used) % len(f.buf)
	k := copy(f.buf[tail:], p)
	copy(f.buf, p[k:])
	f.used += len(p)
	f.lens[(f.lhead+f.packets)%len(f.lens)] = len(p)
	f.packets++
}

func (f *fifo) peekLen() int { return f.lens[f.lhead] }

// pop removes the first packet, copying it to dst unless dst is nil.
func (f *fifo) pop(dst []byte) {
	n := f.lens[f.lhead]
	if dst != nil {
		k := copy(dst[:n], f.buf[f.head:])
		copy(dst[k:n], f.buf)
	}
	f.head = (f.head + n) % len(f.buf)
	f.used -= n
	f.lhead = (f.lhead + 1) % len(f.lens)
	f.packets--
}
