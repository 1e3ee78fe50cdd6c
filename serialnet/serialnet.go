// Package serialnet is p2plink's serial-line driver: it turns a serial port
// (a USB-serial adapter, a UART, a pty) into a link.Link that moves whole
// frames, using go.bug.st/serial for the port and package framing (COBS and
// CRC-32C) for the bytes on the line.
//
// # Against the link.Link contract
//
//   - WriteTo encodes p into a buffer the Link reuses and writes it to the
//     port in one write. When the line has been idle for more than two
//     character times it first sends a lone 0x00 in the same write, so noise
//     picked up while idle cannot spoil the frame. Frames are framing type
//     FrameType. addr must be nil or link.PeerAddr.
//   - ReadFrom returns frames a reader goroutine decoded, with link.PeerAddr
//     as the sender. Frames whose check failed, of another framing type, or
//     longer than the MTU are dropped and counted in Stats: Dropped counts
//     them, Garbage their bytes (the closing delimiter included), and noise
//     between frames counts as a dropped frame of its own.
//   - The reader goroutine hands frames over through a small queue. When the
//     queue is full the reader stops reading the port: the kernel and the
//     UART buffer the bytes meanwhile (on a pty the far writer even blocks, so
//     nothing is lost). A reader that dropped the oldest frame instead would
//     lose frames silently even where the line itself could hold them. If the
//     consumer stalls long enough for the kernel's buffer to overflow, the
//     lost bytes spoil frames that the check then drops and counts.
//   - Deadlines behave as in package net, and may be set while calls wait.
//     Write deadlines need no goroutine: the driver opens the device a second
//     time, non-blocking, and writes through that descriptor with the Go
//     runtime's poller, so a write stuck behind a full UART still returns at
//     its deadline. (The library's own Write is a blocking write(2) that
//     nothing can interrupt.) A frame cut short by a deadline is ended by a
//     0x00 before the next one; the far end drops and counts it.
//   - Close unblocks ReadFrom and WriteTo at once and waits for the reader
//     goroutine, which notices within Config.ReadTimeout.
//   - When the port goes away (an adapter unplugged, a pty hung up) a waiting
//     ReadFrom returns an error wrapping link.ErrDisconnected, and WriteTo
//     returns one until the port is back. The driver tries to reopen the same
//     path (or Config.ReopenPath) every Config.ReopenInterval and resumes by
//     itself, logging both events to Config.Logger.
//
// The serial library's odd results are translated in one place: a read
// timeout (0 bytes, nil error) is not an end of file; its PortClosed error is
// net.ErrClosed after our Close and a disconnection otherwise; modem-line
// calls that a pty answers with ENOTTY return errors.ErrUnsupported.
//
// Open's errors tell the user what to do: a missing port lists the ports that
// exist, a permission error names the group that owns the device. They are
// *OpenError values matching ErrNoSuchPort, ErrPermission, ErrBusy,
// ErrNotSerialPort or ErrInvalidConfig with errors.Is.
//
// # Limits
//
// go.bug.st/serial waits for input with select(2), so the port's descriptors
// must be below 1024: open the port before the program opens a thousand
// files. Ports lists ports through the library's enumerator, which on Linux
// briefly opens each /dev/ttyS* to tell real UARTs from placeholders.
package serialnet

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.bug.st/serial"

	"github.com/p2plink/p2plink/framing"
	"github.com/p2plink/p2plink/internal/deadline"
	"github.com/p2plink/p2plink/link"
)

// FrameType is the framing type of the frames a Link sends and delivers;
// frames of other types are dropped and counted.
const FrameType framing.Type = 1

const (
	queueLen  = 4     // frames decoded ahead of ReadFrom
	readBuf   = 16384 // bytes per read of the port
	idleChars = 2     // idle character times after which a frame starts with 0x00
	uartQueue = 4096  // bytes a UART driver typically queues before write blocks
)

var errNotPeer = errors.New("serialnet: a serial link has one peer: write to nil or link.PeerAddr")

// Link is a serial port carrying frames. It implements link.Link and
// link.StatsReporter. Create it with Open.
type Link struct {
	s          settings
	path       string
	reopenPath string
	addr       link.Addr
	log        *slog.Logger

	closing   chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu      sync.Mutex  // guards the fields below
	port    serial.Port // nil while disconnected; Read only by the reader goroutine
	wf      *os.File    // non-blocking descriptor for writes; nil while disconnected
	wdl     time.Time   // write deadline, applied to every new wf
	discErr error       // why the port went away, while it is away

	// Writer state, guarded by wmu.
	wmu        sync.Mutex
	wbuf       []byte
	lineFreeAt time.Time // when the UART will have sent what we wrote, estimated
	idleGap    time.Duration
	needSync   atomic.Bool // the line may hold a partial frame: start with 0x00

	// Reader state: rdl, the queues and discEv are shared with ReadFrom;
	// dec, rbuf and cand belong to the reader goroutine.
	rdl    *deadline.Deadline
	free   chan *slot
	full   chan *slot
	discEv chan error
	dec    *framing.Decoder
	rbuf   []byte
	cand   int // bytes of the candidate frame seen so far

	framesIn, framesOut, bytesIn, bytesOut, dropped, garbage atomic.Uint64
	lineBytes, changed                                       atomic.Uint64 // see LineDamage
	corr                                                     atomic.Int32  // see SetCorrection
}

// slot holds one decoded frame on its way to ReadFrom.
type slot struct {
	b []byte
	n int
}

// Open opens the serial port at path with cfg and starts the Link's reader
// goroutine. A zero Config is 115200 baud, 8N1, MTU 4096. The error is an
// *OpenError that says what to do.
func Open(path string, cfg Config) (*Link, error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, &OpenError{Path: path, Err: ErrInvalidConfig, Hint: err.Error()}
	}
	l := &Link{
		s:          s,
		path:       path,
		reopenPath: path,
		addr:       link.Addr{Net: "serial", Name: path},
		log:        s.Logger,
		closing:    make(chan struct{}),
		wbuf:       make([]byte, 1+framing.EncodedLenFEC(s.MTU, framing.MaxCorrection)),
		idleGap:    idleChars * s.charTime,
		rdl:        deadline.New(),
		free:       make(chan *slot, queueLen),
		full:       make(chan *slot, queueLen),
		discEv:     make(chan error, 1),
		dec:        framing.NewDecoder(s.MTU),
		rbuf:       make([]byte, readBuf),
	}
	if s.ReopenPath != "" {
		l.reopenPath = s.ReopenPath
	}
	for range queueLen {
		l.free <- &slot{b: make([]byte, s.MTU)}
	}
	port, wf, err := l.openDevice(path)
	if err != nil {
		return nil, openError(path, &s, err, Ports)
	}
	l.needSync.Store(true)
	l.attach(port, wf)
	l.wg.Add(1)
	go l.run(port)
	return l, nil
}

// openDevice opens path twice: a non-blocking descriptor for writes with
// deadlines, then the library's port, which configures the line and takes
// exclusive access (so the order matters).
func (l *Link) openDevice(path string) (serial.Port, *os.File, error) {
	wf, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := lockPort(wf); err != nil {
		wf.Close()
		return nil, nil, err
	}
	mode := l.s.mode
	port, err := serial.Open(path, &mode)
	if err != nil {
		wf.Close()
		return nil, nil, err
	}
	if err := port.SetReadTimeout(l.s.ReadTimeout); err != nil {
		port.Close()
		wf.Close()
		return nil, nil, err
	}
	if err := wf.SetWriteDeadline(time.Time{}); errors.Is(err, os.ErrNoDeadline) {
		l.log.Warn("serialnet: the device cannot be polled; write deadlines will not interrupt a blocked write", "path", path)
	}
	return port, wf, nil
}

// attach installs an opened port. It reports false, closing the port, when
// the Link was closed meanwhile.
func (l *Link) attach(port serial.Port, wf *os.File) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		port.Close()
		wf.Close()
		return false
	}
	l.port, l.wf, l.discErr = port, wf, nil
	if !l.wdl.IsZero() {
		wf.SetWriteDeadline(l.wdl)
	}
	return true
}

// detach closes the current port. Only the reader goroutine calls it.
func (l *Link) detach(why error) {
	l.mu.Lock()
	port, wf := l.port, l.wf
	l.port, l.wf, l.discErr = nil, nil, why
	l.mu.Unlock()
	if port != nil {
		port.Close()
	}
	if wf != nil {
		wf.Close()
	}
}

// run is the reader goroutine: it reads the port, decodes frames, and when
// the port goes away reopens it.
func (l *Link) run(port serial.Port) {
	defer l.wg.Done()
	for {
		err := l.pump(port)
		l.detach(err)
		if err == nil {
			return // closed
		}
		l.log.Warn("serialnet: serial port went away; reopening it", "path", l.path,
			"reopen", l.reopenPath, "every", l.s.ReopenInterval, "err", err)
		select {
		case l.discEv <- err:
		default:
		}
		if port = l.reopen(); port == nil {
			return
		}
	}
}

// pump reads and decodes until the Link is closed (nil) or the port fails
// (an error wrapping link.ErrDisconnected).
func (l *Link) pump(port serial.Port) error {
	for {
		select {
		case <-l.closing:
			return nil
		default:
		}
		n, rerr := port.Read(l.rbuf)
		if n > 0 && !l.feed(l.rbuf[:n]) {
			return nil
		}
		switch err := translate(l.path, n, rerr, l.closed.Load()); {
		case err == nil, err == os.ErrDeadlineExceeded:
		case err == net.ErrClosed:
			return nil
		default:
			return err
		}
	}
}

// feed decodes bytes and queues the good frames. It blocks while the queue
// is full and reports false when the Link closed meanwhile.
func (l *Link) feed(in []byte) bool {
	for len(in) > 0 {
		if l.cand == 0 {
			// Delimiters between frames (a sender's lone 0x00 after idle)
			// are not garbage: skip them here so cand counts only the
			// bytes of the candidate frame.
			for len(in) > 0 && in[0] == 0 {
				in = in[1:]
			}
			if len(in) == 0 {
				break
			}
		}
		n, f, ok, err := l.dec.Next(in)
		in = in[n:]
		l.cand += n
		if !ok && err == nil {
			continue
		}
		cand := l.cand
		l.cand = 0
		l.lineBytes.Add(uint64(cand))
		if err != nil {
			l.dropped.Add(1)
			l.garbage.Add(uint64(cand))
			switch {
			case errors.Is(err, framing.ErrCheck):
				l.changed.Add(1)
			case errors.Is(err, framing.ErrUncorrectable):
				l.changed.Add(uint64(l.dec.LastCorrection() + 1))
			}
			continue
		}
		l.changed.Add(uint64(f.Corrected))
		if f.Type != FrameType {
			l.dropped.Add(1)
			continue
		}
		var s *slot
		select {
		case s = <-l.free:
		case <-l.closing:
			return false
		}
		s.n = copy(s.b, f.Payload)
		l.full <- s // never blocks: there are queueLen slots
	}
	return true
}

// reopen tries the reopen path every ReopenInterval until it opens or the
// Link is closed (nil).
func (l *Link) reopen() serial.Port {
	since := time.Now()
	t := time.NewTimer(l.s.ReopenInterval)
	defer t.Stop()
	for tries := 1; ; tries++ {
		select {
		case <-l.closing:
			return nil
		case <-t.C:
		}
		port, wf, err := l.openDevice(l.reopenPath)
		if err != nil {
			if tries == 1 {
				l.log.Debug("serialnet: port not back yet", "path", l.reopenPath, "err", err)
			}
			t.Reset(l.s.ReopenInterval)
			continue
		}
		if !l.attach(port, wf) {
			return nil
		}
		if l.cand > 0 { // a frame cut short by the unplug
			l.dropped.Add(1)
			l.garbage.Add(uint64(l.cand))
		}
		l.dec.Reset()
		l.cand = 0
		l.needSync.Store(true)
		l.log.Info("serialnet: serial port is back", "path", l.reopenPath, "after", time.Since(since).Round(time.Millisecond))
		return port
	}
}

// ReadFrom copies the next frame into p and returns its length and
// link.PeerAddr. A frame longer than p is dropped (and counted) and
// ReadFrom returns io.ErrShortBuffer. When the port went away, a ReadFrom
// waiting then (or the next one) returns an error wrapping
// link.ErrDisconnected once; later calls wait for frames from the reopened
// port. Errors are *net.OpError values.
func (l *Link) ReadFrom(p []byte) (int, net.Addr, error) {
	if l.closed.Load() {
		return 0, nil, l.opErr("read", net.ErrClosed)
	}
	if l.rdl.Passed() {
		return 0, nil, l.opErr("read", os.ErrDeadlineExceeded)
	}
	select {
	case s := <-l.full:
		return l.deliver(p, s)
	case err := <-l.discEv:
		return 0, nil, l.opErr("read", err)
	case <-l.closing:
		return 0, nil, l.opErr("read", net.ErrClosed)
	case <-l.rdl.Wait():
		return 0, nil, l.opErr("read", os.ErrDeadlineExceeded)
	}
}

func (l *Link) deliver(p []byte, s *slot) (int, net.Addr, error) {
	n := s.n
	if n > len(p) {
		l.free <- s
		l.dropped.Add(1)
		return 0, nil, l.opErr("read", errShortBuffer(n, len(p)))
	}
	copy(p, s.b[:n])
	l.free <- s
	l.framesIn.Add(1)
	l.bytesIn.Add(uint64(n))
	return n, link.PeerAddr, nil
}

// WriteTo sends p as one frame. addr must be nil or link.PeerAddr. A frame
// longer than MTU() is refused with an error wrapping link.ErrFrameTooLarge.
// Concurrent writers are serialised. p is not retained. Errors are
// *net.OpError values.
func (l *Link) WriteTo(p []byte, addr net.Addr) (int, error) {
	if l.closed.Load() {
		return 0, l.opErr("write", net.ErrClosed)
	}
	if addr != nil && addr != link.PeerAddr {
		return 0, l.opErr("write", errNotPeer)
	}
	if len(p) > l.s.MTU {
		return 0, l.opErr("write", fmt.Errorf("%w: %d bytes, MTU %d", link.ErrFrameTooLarge, len(p), l.s.MTU))
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	wf, why := l.wf, l.discErr
	l.mu.Unlock()
	if l.closed.Load() {
		return 0, l.opErr("write", net.ErrClosed)
	}
	if wf == nil {
		return 0, l.opErr("write", why)
	}
	now := time.Now()
	off := 0
	if l.needSync.Swap(false) || l.lineIdle(now) {
		l.wbuf[0] = 0
		off = 1
	}
	n, err := framing.EncodeFEC(l.wbuf[off:], FrameType, p, int(l.corr.Load()))
	if err != nil {
		return 0, l.opErr("write", err) // cannot happen: p fits the MTU and wbuf
	}
	n += off
	w, err := wf.Write(l.wbuf[:n])
	l.lineBusy(now, w)
	if err != nil {
		// Part of the frame may be on the line, and the 0x00 meant to
		// start it may not: start the next frame with one.
		l.needSync.Store(true)
		terr := translate(l.path, 0, err, l.closed.Load())
		if errors.Is(terr, link.ErrDisconnected) && errors.Is(err, os.ErrClosed) {
			// The reader goroutine closed our descriptor: report why.
			l.mu.Lock()
			if l.discErr != nil {
				terr = l.discErr
			}
			l.mu.Unlock()
		}
		return 0, l.opErr("write", terr)
	}
	l.framesOut.Add(1)
	l.bytesOut.Add(uint64(len(p)))
	return len(p), nil
}

// lineIdle reports whether the line has been idle at now for longer than
// idleChars character times.
func (l *Link) lineIdle(now time.Time) bool { return now.Sub(l.lineFreeAt) > l.idleGap }

// lineBusy extends the estimate of when the line falls idle by n bytes
// written at now. The estimate runs at most a UART's queue ahead, since a
// real UART blocks writes beyond that (ptys queue more and ignore the baud
// rate; the estimate errs towards sending the extra 0x00).
func (l *Link) lineBusy(now time.Time, n int) {
	start := l.lineFreeAt
	if start.Before(now) {
		start = now
	}
	end := start.Add(time.Duration(n) * l.s.charTime)
	if limit := now.Add(time.Duration(n+uartQueue) * l.s.charTime); end.After(limit) {
		end = limit
	}
	l.lineFreeAt = end
}

// Close closes the port, unblocks every pending call and waits for the
// reader goroutine. Later calls return errors wrapping net.ErrClosed. It is
// safe to call more than once.
func (l *Link) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed.Store(true)
		wf := l.wf
		l.wf = nil
		l.mu.Unlock()
		close(l.closing)
		if wf != nil {
			wf.Close() // a blocked WriteTo returns now
		}
		l.wg.Wait() // the reader goroutine closes the port
	})
	return nil
}

// MTU returns the largest frame payload WriteTo accepts: Config.MTU.
func (l *Link) MTU() int { return l.s.MTU }

// LocalAddr returns the link's address: network "serial", the path given to
// Open.
func (l *Link) LocalAddr() net.Addr { return l.addr }

// SetDeadline sets both the read and the write deadline.
func (l *Link) SetDeadline(t time.Time) error {
	l.SetReadDeadline(t)
	return l.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for ReadFrom; the zero time clears it.
func (l *Link) SetReadDeadline(t time.Time) error {
	if l.closed.Load() {
		return l.opErr("set", net.ErrClosed)
	}
	l.rdl.Set(t)
	return nil
}

// SetWriteDeadline sets the deadline for WriteTo, including a write blocked
// by a full UART; the zero time clears it.
func (l *Link) SetWriteDeadline(t time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return l.opErr("set", net.ErrClosed)
	}
	l.wdl = t
	if l.wf != nil {
		l.wf.SetWriteDeadline(t)
	}
	return nil
}

// SetCorrection sets how many damaged bytes per 255-byte block the frames
// sent from now on can repair (0 to framing.MaxCorrection; 0: plain
// frames). The peer protocol calls it; see link.Corrector.
func (l *Link) SetCorrection(t int) error {
	if t < 0 || t > framing.MaxCorrection {
		return fmt.Errorf("serialnet: correction %d: use 0 to %d bytes per block", t, framing.MaxCorrection)
	}
	l.corr.Store(int32(t))
	return nil
}

// LineDamage counts the bytes received and those that arrived changed; see
// link.Corrector.
func (l *Link) LineDamage() link.LineDamage {
	return link.LineDamage{Bytes: l.lineBytes.Load(), Changed: l.changed.Load()}
}

// Stats returns the Link's counters.
func (l *Link) Stats() link.Stats {
	return link.Stats{
		FramesIn:  l.framesIn.Load(),
		FramesOut: l.framesOut.Load(),
		BytesIn:   l.bytesIn.Load(),
		BytesOut:  l.bytesOut.Load(),
		Dropped:   l.dropped.Load(),
		Garbage:   l.garbage.Load(),
	}
}

// ModemStatus is the state of the modem input lines.
type ModemStatus struct {
	CTS, DSR, RI, DCD bool
}

// ModemStatus reads the modem input lines. On ports without them (ptys,
// some USB adapters) the error wraps errors.ErrUnsupported; the link works
// regardless.
func (l *Link) ModemStatus() (ModemStatus, error) {
	var st ModemStatus
	err := l.control(func(p serial.Port) error {
		b, err := p.GetModemStatusBits()
		if err == nil {
			st = ModemStatus{CTS: b.CTS, DSR: b.DSR, RI: b.RI, DCD: b.DCD}
		}
		return err
	})
	return st, err
}

// SetDTR sets the DTR output line. On ports without modem lines the error
// wraps errors.ErrUnsupported; the link works regardless.
func (l *Link) SetDTR(on bool) error {
	return l.control(func(p serial.Port) error { return p.SetDTR(on) })
}

// SetRTS sets the RTS output line (the library leaves hardware flow control
// off, so RTS is a plain output). On ports without modem lines the error
// wraps errors.ErrUnsupported.
func (l *Link) SetRTS(on bool) error {
	return l.control(func(p serial.Port) error { return p.SetRTS(on) })
}

// control runs a modem-line call on the current port.
func (l *Link) control(f func(serial.Port) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return net.ErrClosed
	}
	if l.port == nil {
		return l.discErr
	}
	return translateControl(f(l.port))
}

func (l *Link) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "serial", Source: l.addr, Addr: link.PeerAddr, Err: err}
}

// shortBufferError is io.ErrShortBuffer with the sizes.
type shortBufferError struct{ frame, buf int }

func errShortBuffer(frame, buf int) error { return &shortBufferError{frame, buf} }

func (e *shortBufferError) Error() string {
	return fmt.Sprintf("serialnet: frame of %d bytes dropped: read buffer of %d bytes is too short (use MTU() bytes)", e.frame, e.buf)
}

func (e *shortBufferError) Unwrap() error { return io.ErrShortBuffer }
