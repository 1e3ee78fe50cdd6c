package usbnet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2plink/p2plink/framing"
	"github.com/p2plink/p2plink/internal/deadline"
	"github.com/p2plink/p2plink/link"
)

// rxQueue is how many received frames wait for ReadFrom. When it is full
// the driver stops reading the IN endpoint, the chip's FIFO fills and the
// far end's writes wait: USB's own flow control.
const rxQueue = 32

var broadcastMAC = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Link is a link.Link over a USB bridge cable. It is safe for one reader
// and many writers at once.
type Link struct {
	cfg    Config
	bus    Bus
	ownBus bool
	log    *slog.Logger
	mac    [6]byte
	local  link.Addr
	sel    Config // what to look for on reopen

	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	sess        *session      // nil while the cable is gone
	sessChanged chan struct{} // closed and replaced when sess changes
	up          bool          // sess present and the far end attached
	downGen     uint64        // incremented on every fall from up
	readGen     uint64        // downGen the reader was last told about
	downCh      chan struct{} // closed and replaced on every fall from up
	failed      *session      // a session a transfer found broken
	resetNext   bool          // it stalled: reset the chip before reopening
	failCh      chan struct{} // wakes the supervisor
	peer        [6]byte
	havePeer    bool

	rsess   *session // the session readOne reads from; reader goroutine only
	lastErr string   // the last reopen error logged; supervisor only

	rx   chan *rxFrame
	free chan *rxFrame
	rdl  *deadline.Deadline
	wdl  *deadline.Deadline

	wmu  sync.Mutex // serialises writers
	wbuf []byte
	xid  uint16

	framesIn, framesOut, bytesIn, bytesOut, dropped, garbage atomic.Uint64

	closeOnce sync.Once
}

type rxFrame struct {
	buf []byte
	n   int
}

// session is one opened device; it is replaced after a replug.
type session struct {
	dev      Device
	info     DeviceInfo
	chip     Chip
	in       EndpointReader
	out      EndpointWriter
	intr     EndpointReader // PL-2301 status; may be nil
	mps      int            // wMaxPacketSize of the OUT endpoint
	inMPS    int            // wMaxPacketSize of the IN endpoint
	inEP     uint8
	outEP    uint8
	noStatus bool // the chip stalls its status request: assume the peer is there
	// statusTimeouts counts status requests in a row that timed out.
	statusTimeouts int

	ctx    context.Context // ends when the session is torn down
	cancel context.CancelFunc
	users  sync.WaitGroup // transfers in flight
	rctx   *xferCtx       // for the reader's transfers
	wctx   *xferCtx       // for the writers' transfers (serialised by wmu)
}

// Open finds the cable Config selects, claims it and returns a Link over
// it. The far end need not be attached yet: the link comes up when it is.
// ctx bounds the opening only.
func Open(ctx context.Context, cfg Config) (*Link, error) {
	cfg = cfg.withDefaults()
	bus, own := cfg.Bus, false
	if bus == nil {
		b, err := OpenLibusb()
		if err != nil {
			return nil, err
		}
		bus, own = b, true
	}
	info, chip, err := cfg.pick(bus)
	if err != nil {
		if own {
			bus.Close()
		}
		return nil, err
	}
	l := &Link{
		cfg: cfg, bus: bus, ownBus: own, log: cfg.Logger,
		local:       link.Addr{Net: "usb", Name: info.ID()},
		sessChanged: make(chan struct{}),
		downCh:      make(chan struct{}),
		failCh:      make(chan struct{}, 1),
		rx:          make(chan *rxFrame, rxQueue),
		free:        make(chan *rxFrame, rxQueue),
		rdl:         deadline.New(),
		wdl:         deadline.New(),
		wbuf:        make([]byte, maxWireFrame+1),
	}
	l.sel = cfg
	l.sel.Vendor, l.sel.Product, l.sel.Address = info.Vendor, info.Product, 0
	if cfg.BusNum != 0 {
		l.sel.BusNum = info.Bus
	}
	if len(cfg.HardwareAddr) == 6 {
		copy(l.mac[:], cfg.HardwareAddr)
	} else {
		rand.Read(l.mac[:])
		l.mac[0] = l.mac[0]&^0x01 | 0x02 // unicast, locally administered
	}
	for range rxQueue {
		l.free <- &rxFrame{buf: make([]byte, MTU)}
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	s, err := l.openSession(ctx, info, chip)
	if err != nil {
		l.cancel()
		if own {
			bus.Close()
		}
		return nil, err
	}
	l.setSession(s)
	l.setUp(l.pollPeer(s))
	l.wg.Add(2)
	go l.supervise()
	go l.readLoop()
	return l, nil
}

// openSession opens and claims the device and runs the chip's handshake.
func (l *Link) openSession(ctx context.Context, info DeviceInfo, chip Chip) (*session, error) {
	dev, err := l.bus.Open(info)
	if err != nil {
		return nil, explainOpen(info, err)
	}
	s := &session{dev: dev, info: info, chip: chip}
	if err := l.handshake(ctx, s); err != nil {
		dev.Close()
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(l.ctx)
	s.rctx, s.wctx = newXferCtx(s.ctx), newXferCtx(s.ctx)
	l.log.Info("usbnet: cable open", "device", info.String(), "chip", chip.Name,
		"in", fmt.Sprintf("%#02x", s.inEP), "out", fmt.Sprintf("%#02x", s.outEP), "maxpacket", s.mps)
	return s, nil
}

func explainOpen(info DeviceInfo, err error) error {
	switch {
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("usbnet: no permission to open %v: install usbnet/udev/70-p2plink.rules (see the comment in it) and replug the cable, or run as root: %w", info, err)
	case errors.Is(err, link.ErrDisconnected), errors.Is(err, ErrNotPresent):
		return fmt.Errorf("usbnet: %v went away while opening it: %w", info, err)
	}
	return fmt.Errorf("usbnet: opening %v: %w", info, err)
}

// handshake claims the interface, finds the endpoints and runs the chip's
// start-up sequence.
func (l *Link) handshake(ctx context.Context, s *session) error {
	fam := s.chip.Family
	l.mu.Lock()
	reset := fam == PL2301 || s.chip.ResetOnOpen || l.resetNext
	l.resetNext = false
	l.mu.Unlock()
	if reset {
		// QuickLink starts from a reset chip, and a stall is cleared by
		// one. A failed reset is not fatal.
		if err := s.dev.Reset(); err != nil {
			if errors.Is(err, link.ErrDisconnected) {
				return fmt.Errorf("usbnet: %v went away during reset: %w", s.info, err)
			}
			l.log.Warn("usbnet: reset failed; going on", "device", s.info.String(), "err", err)
		}
	}
	if err := s.dev.Claim(1, 0, 0); err != nil {
		if errors.Is(err, ErrBusy) {
			return fmt.Errorf("usbnet: %v: the cable is held by another program (another p2plink?) or by the kernel driver %q, which could not be detached: stop the other program, or unload the driver (sudo modprobe -r %s) or use `p2plink eth` on its network interface instead: %w",
				s.info, s.chip.Kernel, s.chip.Kernel, err)
		}
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("usbnet: %v: no permission to claim the interface: install usbnet/udev/70-p2plink.rules and replug, or run as root: %w", s.info, err)
		}
		return fmt.Errorf("usbnet: %v: claiming interface 0: %w", s.info, err)
	}
	info := s.dev.Info()
	if len(info.Interfaces) > 0 {
		s.info.Interfaces = info.Interfaces
	}
	var in, out, intr *EndpointDesc
	for _, it := range s.info.Interfaces {
		if it.Number != 0 || it.Alt != 0 {
			continue
		}
		for i := range it.Endpoints {
			ep := &it.Endpoints[i]
			switch {
			case ep.Type == Bulk && ep.IsIn() && in == nil:
				in = ep
			case ep.Type == Bulk && !ep.IsIn() && out == nil:
				out = ep
			case ep.Type == Interrupt && ep.IsIn() && intr == nil:
				intr = ep
			}
		}
	}
	if in == nil || out == nil {
		return fmt.Errorf("usbnet: %v: interface 0 has no bulk IN and OUT endpoint pair; is it a bridge cable?", s.info)
	}
	if in.MaxPacketSize <= 0 || out.MaxPacketSize <= 0 {
		return fmt.Errorf("usbnet: %v: bulk endpoints report wMaxPacketSize 0", s.info)
	}
	var err error
	if s.in, err = s.dev.In(in.Address); err != nil {
		return fmt.Errorf("usbnet: %v: IN endpoint %#02x: %w", s.info, in.Address, err)
	}
	if s.out, err = s.dev.Out(out.Address); err != nil {
		return fmt.Errorf("usbnet: %v: OUT endpoint %#02x: %w", s.info, out.Address, err)
	}
	s.mps = out.MaxPacketSize
	s.inMPS = in.MaxPacketSize
	s.inEP, s.outEP = in.Address, out.Address

	switch fam {
	case PL25A1:
		var st [2]byte
		if _, err := s.dev.Control(0xC0, 0xFB, 0, 0, st[:]); err != nil {
			if !errors.Is(err, ErrStall) {
				return fmt.Errorf("usbnet: %v: peer status request: %w", s.info, err)
			}
			s.noStatus = true
			l.log.Warn("usbnet: the chip stalls the peer status request (0xFB); far-end attach and leave will only show as transfer errors", "device", s.info.String())
		}
	case PL2301:
		if intr != nil {
			if s.intr, err = s.dev.In(intr.Address); err != nil {
				s.intr = nil
			}
		}
		for _, step := range []struct {
			req  uint8
			feat uint16
		}{{1, plTxReq}, {1, plTxC}, {3, plPeerE}} {
			if _, err := s.dev.Control(0x40, step.req, step.feat, 0, nil); err != nil {
				if !errors.Is(err, ErrStall) {
					return fmt.Errorf("usbnet: %v: QuickLink handshake: %w", s.info, err)
				}
				l.log.Debug("usbnet: QuickLink feature request stalled; tolerated", "req", step.req, "feature", step.feat)
				if step.feat == plPeerE {
					// Without PEER_E the far end cannot see us either:
					// the interrupt endpoint tells nothing useful.
					s.noStatus = true
				}
			}
		}
	case NET1080:
		if _, err := s.dev.Control(0x40, ncRegRequest, ncFlushBoth, ncRegUSBCtl, nil); err != nil && !errors.Is(err, ErrStall) {
			return fmt.Errorf("usbnet: %v: flushing the NET1080 FIFOs: %w", s.info, err)
		}
	}
	l.drain(ctx, s)
	return nil
}

// Chip constants from the reference.
const (
	plPeerE      = 0x01
	plTxReq      = 0x02
	plTxC        = 0x04
	ncRegRequest = 0x10
	ncRegUSBCtl  = 0x04
	ncRegStatus  = 0x11
	ncFlushBoth  = 0x000C
	ncStatusConn = 1 << 14
	drainLimit   = 2048
)

// drain reads and discards what the chip buffered before we came.
func (l *Link) drain(ctx context.Context, s *session) {
	buf := make([]byte, roundUp(drainLimit, s.inMPS))
	total := 0
	for total < drainLimit {
		dctx, cancel := context.WithTimeout(ctx, l.cfg.DrainTimeout)
		n, err := s.in.ReadContext(dctx, buf)
		cancel()
		total += n
		if err != nil || n == 0 {
			break
		}
	}
	if total > 0 {
		l.log.Info("usbnet: discarded stale bytes", "device", s.info.String(), "bytes", total)
	}
}

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// setSession installs s (nil: the cable is gone).
func (l *Link) setSession(s *session) {
	l.mu.Lock()
	l.sess = s
	close(l.sessChanged)
	l.sessChanged = make(chan struct{})
	l.mu.Unlock()
}

// setUp records whether the far end is attached.
func (l *Link) setUp(up bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if up == l.up {
		return
	}
	l.up = up
	if up {
		l.log.Info("usbnet: link up", "device", l.local.Name)
		return
	}
	l.downGen++
	close(l.downCh)
	l.downCh = make(chan struct{})
	l.havePeer = false
	if l.ctx.Err() == nil { // not on Close
		l.log.Warn("usbnet: link down; waiting for the far end", "device", l.local.Name)
	}
}

// fail reports that a transfer found s broken; the supervisor replaces it.
func (l *Link) fail(s *session, err error) {
	l.mu.Lock()
	if l.sess == s && l.failed == nil {
		l.failed = s
		l.resetNext = errors.Is(err, ErrStall)
		l.log.Warn("usbnet: cable lost", "device", s.info.String(), "err", err)
	}
	l.mu.Unlock()
	select {
	case l.failCh <- struct{}{}:
	default:
	}
}

// acquire returns the current session with a transfer registered on it, or
// nil.
func (l *Link) acquire() (*session, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sess
	if s == nil || l.failed == s {
		return nil, false
	}
	s.users.Add(1)
	return s, l.up
}

// teardown closes s after its transfers ended.
func (l *Link) teardown(s *session) {
	l.mu.Lock()
	if l.sess == s {
		l.sess = nil
		close(l.sessChanged)
		l.sessChanged = make(chan struct{})
	}
	if l.failed == s {
		l.failed = nil
	}
	l.mu.Unlock()
	l.setUp(false)
	s.cancel()
	s.users.Wait()
	if s.chip.Family == PL2301 {
		s.dev.Control(0x40, 1, plPeerE, 0, nil) // QuickLink: say goodbye; may fail
	}
	s.dev.Close()
}

// supervise polls the peer status, and reopens the cable when it is lost.
func (l *Link) supervise() {
	defer l.wg.Done()
	t := time.NewTicker(l.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			l.mu.Lock()
			s := l.sess
			l.mu.Unlock()
			if s != nil {
				l.teardown(s)
			}
			return
		case <-l.failCh:
		case <-t.C:
		}
		l.mu.Lock()
		s, failed := l.sess, l.failed
		l.mu.Unlock()
		switch {
		case failed != nil:
			l.teardown(failed) // and reopen at the next tick, not in a tight loop
		case s == nil:
			l.reopen()
		default:
			l.setUp(l.pollPeer(s))
		}
	}
}

// reopen looks for the cable again and opens it.
func (l *Link) reopen() {
	info, chip, err := l.sel.pick(l.bus)
	if err != nil {
		l.log.Debug("usbnet: cable not back yet", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
	defer cancel()
	s, err := l.openSession(ctx, info, chip)
	if err != nil {
		if msg := err.Error(); msg != l.lastErr { // once per distinct error, not every tick
			l.lastErr = msg
			l.log.Warn("usbnet: reopening the cable failed; will retry", "err", err)
		}
		return
	}
	l.lastErr = ""
	if l.ctx.Err() != nil {
		s.cancel()
		s.dev.Close()
		return
	}
	l.setSession(s)
	l.setUp(l.pollPeer(s))
}

// maxStatusTimeouts is how many peer-status requests in a row may time out
// before the cable counts as lost.
const maxStatusTimeouts = 3

// pollPeer asks the chip whether the far end is attached.
func (l *Link) pollPeer(s *session) bool {
	switch s.chip.Family {
	case PL25A1:
		if s.noStatus {
			return true
		}
		var st [2]byte
		if _, err := s.dev.Control(0xC0, 0xFB, 0, 0, st[:]); err != nil {
			if errors.Is(err, ErrStall) {
				return l.Up() // a one-off stall says nothing new
			}
			if errors.Is(err, os.ErrDeadlineExceeded) && s.statusTimeouts < maxStatusTimeouts {
				// A loaded host can let a control request time out
				// with the cable fine: only a run of them means it is gone.
				s.statusTimeouts++
				return l.Up()
			}
			l.fail(s, err)
			return false
		}
		s.statusTimeouts = 0
		return st[1]&0x03 == 0 // neither suspended nor unplugged
	case PL2301:
		if s.intr == nil || s.noStatus {
			return true
		}
		var b [8]byte
		ctx, cancel := context.WithTimeout(s.ctx, l.cfg.PollInterval)
		n, err := s.intr.ReadContext(ctx, b[:])
		cancel()
		if err != nil {
			if errors.Is(err, link.ErrDisconnected) {
				l.fail(s, err)
				return false
			}
			return l.Up()
		}
		return n > 0 && b[0]&plPeerE != 0
	case NET1080:
		var st [2]byte
		if _, err := s.dev.Control(0xC0, ncRegRequest, 0, ncRegStatus, st[:]); err != nil {
			if errors.Is(err, ErrStall) {
				return true
			}
			l.fail(s, err)
			return false
		}
		return (uint16(st[0])|uint16(st[1])<<8)&ncStatusConn != 0
	}
	return true // GL620A and cdc_subset cannot tell
}

// readLoop keeps a read posted on the IN endpoint and queues the frames.
func (l *Link) readLoop() {
	defer l.wg.Done()
	var buf []byte
	for l.ctx.Err() == nil {
		l.mu.Lock()
		s := l.sess
		ch := l.sessChanged
		if s != nil && l.failed != s {
			s.users.Add(1)
		} else {
			s = nil
		}
		l.mu.Unlock()
		if s == nil {
			select {
			case <-ch:
			case <-l.ctx.Done():
			}
			continue
		}
		size := roundUp(maxWireFrame+1, s.inMPS)
		if s.chip.Family == GL620A {
			size = roundUp(maxGLTransfer, s.inMPS)
		}
		if len(buf) != size {
			buf = make([]byte, size)
		}
		l.readOne(s, buf)
		s.users.Done()
	}
}

// readOne runs one IN transfer and delivers what it carried.
func (l *Link) readOne(s *session, buf []byte) {
	s.rctx.begin(l.cfg.TransferTimeout)
	n, err := s.in.ReadContext(s.rctx, buf)
	ctxErr := s.rctx.finish()
	if err != nil {
		if n > 0 {
			// A transfer cut short: the rest arrives as the next transfer.
			l.dropped.Add(1)
			l.garbage.Add(uint64(n))
		}
		if ctxErr != nil {
			return // idle, or torn down
		}
		l.fail(s, err)
		return
	}
	if n == 0 {
		return // a zero-length packet
	}
	l.rsess = s
	bad := decodeFrames(s.chip.Family, buf[:n], l.deliver)
	if bad > 0 {
		l.dropped.Add(uint64(bad))
		l.garbage.Add(uint64(n))
	}
}

// deliver queues one received Ethernet frame for ReadFrom.
func (l *Link) deliver(ether []byte) {
	_, src, payload, err := framing.DecodeEther(ether)
	if err != nil || len(payload) > MTU {
		l.dropped.Add(1)
		l.garbage.Add(uint64(len(ether)))
		return
	}
	var f *rxFrame
	select {
	case f = <-l.free:
	case <-l.rsess.ctx.Done(): // torn down (or closed) while nobody reads
		l.dropped.Add(1)
		return
	}
	f.n = copy(f.buf, payload)
	l.mu.Lock()
	if !l.havePeer || [6]byte(src) != l.peer {
		l.peer, l.havePeer = [6]byte(src), true
	}
	l.mu.Unlock()
	select {
	case l.rx <- f:
	case <-l.rsess.ctx.Done():
		l.free <- f
		l.dropped.Add(1)
	}
}

// ReadFrom copies the next frame into p and returns its length and
// link.PeerAddr. After the far end leaves or the cable is pulled it returns
// an error wrapping link.ErrDisconnected once; later calls wait for frames
// again, which arrive once the link is back.
func (l *Link) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		select {
		case f := <-l.rx:
			return l.take(f, p)
		default:
		}
		if l.ctx.Err() != nil {
			return 0, nil, l.opErr("read", net.ErrClosed)
		}
		l.mu.Lock()
		if l.readGen != l.downGen {
			l.readGen = l.downGen
			l.mu.Unlock()
			return 0, nil, l.opErr("read", fmt.Errorf("the far end left or the cable was pulled; the link comes back by itself: %w", link.ErrDisconnected))
		}
		down := l.downCh
		l.mu.Unlock()
		dl := l.rdl.Wait()
		select {
		case f := <-l.rx:
			return l.take(f, p)
		case <-down:
		case <-dl:
			return 0, nil, l.opErr("read", os.ErrDeadlineExceeded)
		case <-l.ctx.Done():
			return 0, nil, l.opErr("read", net.ErrClosed)
		}
	}
}

func (l *Link) take(f *rxFrame, p []byte) (int, net.Addr, error) {
	defer func() { l.free <- f }()
	if len(p) < f.n {
		l.dropped.Add(1)
		return 0, nil, l.opErr("read", io.ErrShortBuffer)
	}
	n := copy(p, f.buf[:f.n])
	l.framesIn.Add(1)
	l.bytesIn.Add(uint64(n))
	return n, link.PeerAddr, nil
}

// WriteTo sends p as one frame to the far end; addr must be nil or
// link.PeerAddr. While the far end is away it fails at once with an error
// wrapping link.ErrDisconnected. A frame the far end does not take within
// Config.TransferTimeout fails with a timeout error.
func (l *Link) WriteTo(p []byte, addr net.Addr) (int, error) {
	if l.ctx.Err() != nil {
		return 0, l.opErr("write", net.ErrClosed)
	}
	if addr != nil && addr != link.PeerAddr {
		return 0, l.opErr("write", fmt.Errorf("usbnet: a bridge cable has one peer: write to nil or link.PeerAddr, not %v", addr))
	}
	if len(p) > MTU {
		return 0, l.opErr("write", fmt.Errorf("%d-byte frame, MTU %d: %w", len(p), MTU, link.ErrFrameTooLarge))
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.wdl.Passed() {
		return 0, l.opErr("write", os.ErrDeadlineExceeded)
	}
	s, up := l.acquire()
	if s == nil || !up {
		if s != nil {
			s.users.Done()
		}
		return 0, l.opErr("write", fmt.Errorf("the far end is not attached or the cable is out; the link comes back by itself: %w", link.ErrDisconnected))
	}
	defer s.users.Done()
	l.mu.Lock()
	dst := broadcastMAC
	var peer [6]byte
	if l.havePeer {
		peer = l.peer
		dst = peer[:]
	}
	l.mu.Unlock()
	l.xid++
	n, err := encodeFrame(l.wbuf, s.chip.Family, s.mps, dst, l.mac[:], l.xid, p)
	if err != nil {
		return 0, l.opErr("write", err)
	}
	x := s.wctx
	x.begin(l.cfg.TransferTimeout)
	if l.wdl.Arm(x.cancel) {
		x.finish()
		return 0, l.opErr("write", os.ErrDeadlineExceeded)
	}
	_, err = s.out.WriteContext(x, l.wbuf[:n])
	l.wdl.Disarm()
	ctxErr := x.finish()
	if err != nil {
		switch {
		case l.ctx.Err() != nil:
			return 0, l.opErr("write", net.ErrClosed)
		case l.wdl.Passed():
			return 0, l.opErr("write", os.ErrDeadlineExceeded)
		case s.ctx.Err() != nil:
			return 0, l.opErr("write", fmt.Errorf("cable lost mid-frame: %w", link.ErrDisconnected))
		case ctxErr != nil:
			return 0, l.opErr("write", fmt.Errorf("usbnet: the far end did not take the frame within %v: %w", l.cfg.TransferTimeout, os.ErrDeadlineExceeded))
		}
		l.fail(s, err)
		return 0, l.opErr("write", fmt.Errorf("usbnet: OUT transfer failed (%v); resetting the cable: %w", err, link.ErrDisconnected))
	}
	l.framesOut.Add(1)
	l.bytesOut.Add(uint64(len(p)))
	return len(p), nil
}

func (l *Link) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "usb", Source: l.local, Addr: link.PeerAddr, Err: err}
}

// Close releases the cable and stops the link's goroutines. Pending and
// later calls return errors wrapping net.ErrClosed.
func (l *Link) Close() error {
	l.closeOnce.Do(func() {
		l.cancel()
		l.wg.Wait()
		l.rdl.Stop()
		l.wdl.Stop()
		if l.ownBus {
			l.bus.Close()
		}
	})
	return nil
}

// LocalAddr returns the cable's address: network "usb", name "vvvv:pppp".
func (l *Link) LocalAddr() net.Addr { return l.local }

// SetDeadline sets the read and write deadlines.
func (l *Link) SetDeadline(t time.Time) error {
	if l.ctx.Err() != nil {
		return l.opErr("set", net.ErrClosed)
	}
	l.rdl.Set(t)
	l.wdl.Set(t)
	return nil
}

// SetReadDeadline sets the deadline for ReadFrom.
func (l *Link) SetReadDeadline(t time.Time) error {
	if l.ctx.Err() != nil {
		return l.opErr("set", net.ErrClosed)
	}
	l.rdl.Set(t)
	return nil
}

// SetWriteDeadline sets the deadline for WriteTo.
func (l *Link) SetWriteDeadline(t time.Time) error {
	if l.ctx.Err() != nil {
		return l.opErr("set", net.ErrClosed)
	}
	l.wdl.Set(t)
	return nil
}

// MTU returns the largest frame WriteTo accepts: 1497 bytes, so that the
// Ethernet frame fits the 1500-byte MTU of the kernel's usb0.
func (l *Link) MTU() int { return MTU }

// Stats returns the link's counters.
func (l *Link) Stats() link.Stats {
	return link.Stats{
		FramesIn: l.framesIn.Load(), FramesOut: l.framesOut.Load(),
		BytesIn: l.bytesIn.Load(), BytesOut: l.bytesOut.Load(),
		Dropped: l.dropped.Load(), Garbage: l.garbage.Load(),
	}
}

// Up reports whether the cable is open and the far end attached.
func (l *Link) Up() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up
}

// HardwareAddr returns the MAC address this end writes in its frames.
func (l *Link) HardwareAddr() net.HardwareAddr { return net.HardwareAddr(l.mac[:]) }

var _ link.Link = (*Link)(nil)
var _ link.StatsReporter = (*Link)(nil)
