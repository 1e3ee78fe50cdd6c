package linktest

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"

	"github.com/p2plink/p2plink/internal/deadline"
	"github.com/p2plink/p2plink/link"
)

// PipeConfig sets up a FramePipe or a Hub. The zero value is a perfect link
// with a 1500-byte MTU: no loss, no delay, unlimited bandwidth.
type PipeConfig struct {
	// Name names the pipe or hub in addresses and errors. Default "pipe"
	// (or "hub").
	Name string
	// MTU is the largest frame accepted. Default 1500.
	MTU int
	// Seed seeds every random choice (loss, duplication, jitter), so a
	// failing test replays exactly when the same frames are written in the
	// same order. Each direction (each sender, on a hub) draws from its own
	// stream derived from Seed.
	Seed uint64
	// Loss is the probability, from 0 to 1, that a frame is lost in flight.
	Loss float64
	// Duplicate is the probability that a frame that was not lost arrives
	// twice.
	Duplicate float64
	// Latency delays every frame by this much after it has been sent.
	Latency time.Duration
	// Jitter adds a uniformly random extra delay in [0, Jitter) to each
	// frame. Frames are never reordered: a frame waits behind a slower one.
	Jitter time.Duration
	// Bandwidth, in bytes per second, paces the line: a frame of n bytes
	// occupies it for n/Bandwidth seconds and frames queue behind each other,
	// as on a real line. Zero means unlimited.
	Bandwidth int64
	// QueueLen bounds the frames queued towards one receiver: sent (or on
	// the wire) but not yet read. Default 64.
	QueueLen int
	// DropWhenFull chooses what a full queue does. By default (false) WriteTo
	// blocks until the receiver reads, like a device with flow control (a
	// UART with RTS/CTS, a USB bulk pipe); with DropWhenFull the frame is
	// dropped silently, like an Ethernet switch port, and counted as Dropped
	// in the receiver's Stats and as Overflowed in FaultStats.
	DropWhenFull bool
	// UnplugErrors makes a pulled cable visible: while unplugged, WriteTo
	// fails and ReadFrom (once no frame is left to read) returns an error
	// wrapping link.ErrDisconnected. By default frames are lost silently,
	// which is all a driver can see on most media.
	UnplugErrors bool
}

func (c PipeConfig) withDefaults(name string) PipeConfig {
	if c.Name == "" {
		c.Name = name
	}
	if c.MTU <= 0 {
		c.MTU = 1500
	}
	if c.QueueLen <= 0 {
		c.QueueLen = 64
	}
	return c
}

// medium is the fault model of one transmitter: its random stream and when
// its line is next free. It is used only by the writer holding the
// transmitter's write token.
type medium struct {
	cfg      *PipeConfig
	rng      *rand.Rand
	lineFree time.Time
	faults   *faultCounters
}

func newMedium(cfg *PipeConfig, stream uint64, f *faultCounters) *medium {
	return &medium{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, stream)), faults: f}
}

// copies decides how many copies of a frame arrive: 0 (lost), 1 or 2.
func (m *medium) copies() int {
	if m.cfg.Loss > 0 && m.rng.Float64() < m.cfg.Loss {
		m.faults.lost.Add(1)
		return 0
	}
	if m.cfg.Duplicate > 0 && m.rng.Float64() < m.cfg.Duplicate {
		m.faults.duplicated.Add(1)
		return 2
	}
	return 1
}

// when returns the delivery time of an n-byte frame sent now; the zero time
// means at once.
func (m *medium) when(n int) time.Time {
	c := m.cfg
	if c.Latency == 0 && c.Jitter == 0 && c.Bandwidth == 0 {
		return time.Time{}
	}
	at := time.Now()
	if c.Bandwidth > 0 {
		if m.lineFree.After(at) {
			at = m.lineFree
		}
		at = at.Add(time.Duration(float64(n) * float64(time.Second) / float64(c.Bandwidth)))
		m.lineFree = at
	}
	at = at.Add(c.Latency)
	if c.Jitter > 0 {
		at = at.Add(time.Duration(m.rng.Int64N(int64(c.Jitter))))
	}
	return at
}

// station is what FrameEnd and HubEnd share: a receive queue, deadlines,
// counters and the Close machinery.
type station struct {
	cfg    *PipeConfig
	net    string
	local  net.Addr
	in     *queue
	plug   *plug // this station's cable
	faults *faultCounters
	stats  counters
	rd, wd *deadline.Deadline

	closeOnce sync.Once
	closed    chan struct{}
}

func newStation(cfg *PipeConfig, netName string, local net.Addr, p *plug, f *faultCounters) *station {
	return &station{
		cfg:    cfg,
		net:    netName,
		local:  local,
		in:     newQueue(cfg.QueueLen, cfg.MTU),
		plug:   p,
		faults: f,
		rd:     deadline.New(),
		wd:     deadline.New(),
		closed: make(chan struct{}),
	}
}

func (s *station) opErr(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: s.net, Source: s.local, Addr: addr, Err: err}
}

func (s *station) isClosed() bool { return closedChan(s.closed) }

// setDeadlines sets the read and/or write deadline, for the Set*Deadline
// methods of both kinds of end.
func (s *station) setDeadlines(t time.Time, read, write bool) error {
	if s.isClosed() {
		return s.opErr("set", nil, net.ErrClosed)
	}
	if read {
		s.rd.Set(t)
	}
	if write {
		s.wd.Set(t)
	}
	return nil
}

// read implements ReadFrom.
func (s *station) read(p []byte) (int, net.Addr, error) {
	for {
		if s.isClosed() {
			return 0, nil, s.opErr("read", nil, net.ErrClosed)
		}
		dl := s.rd.Wait()
		if closedChan(dl) {
			return 0, nil, s.opErr("read", nil, os.ErrDeadlineExceeded)
		}
		n, from, wait, r := s.in.pop(p)
		switch r {
		case popOK:
			s.stats.framesIn.Add(1)
			s.stats.bytesIn.Add(uint64(n))
			return n, from, nil
		case popShort:
			s.stats.dropped.Add(1)
			return 0, from, s.opErr("read", from, fmt.Errorf("frame longer than the %d-byte buffer, dropped (pass MTU() bytes): %w", len(p), io.ErrShortBuffer))
		case popClosed:
			return 0, nil, s.opErr("read", nil, net.ErrClosed)
		}
		var gone chan struct{}
		if s.cfg.UnplugErrors {
			gone = s.plug.gone()
			if closedChan(gone) {
				return 0, nil, s.opErr("read", nil, fmt.Errorf("%s %s: cable unplugged: %w", s.net, s.local, link.ErrDisconnected))
			}
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if r == popLater {
			timer = time.NewTimer(wait)
			fire = timer.C
		}
		select {
		case <-s.in.readable:
		case <-fire:
		case <-dl:
		case <-gone:
		case <-s.closed:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// beginWrite checks the common preconditions of WriteTo and takes the
// transmitter's write token; the caller must release it with <-token.
func (s *station) beginWrite(n int, addr net.Addr, token chan struct{}) (<-chan struct{}, error) {
	if s.isClosed() {
		return nil, s.opErr("write", addr, net.ErrClosed)
	}
	dl := s.wd.Wait()
	if closedChan(dl) {
		return nil, s.opErr("write", addr, os.ErrDeadlineExceeded)
	}
	if n > s.cfg.MTU {
		return nil, s.opErr("write", addr, fmt.Errorf("%d-byte frame, MTU is %d: %w", n, s.cfg.MTU, link.ErrFrameTooLarge))
	}
	select {
	case token <- struct{}{}:
	default:
		select {
		case token <- struct{}{}:
		case <-dl:
			return nil, s.opErr("write", addr, os.ErrDeadlineExceeded)
		case <-s.closed:
			return nil, s.opErr("write", addr, net.ErrClosed)
		}
	}
	return dl, nil
}

// unplugged reports whether a frame sent now from this station to dst is
// lost to a pulled cable, or the error to return for it.
func (s *station) unpluggedTo(dst *plug, addr net.Addr) (bool, error) {
	if !s.plug.out.Load() && (dst == nil || !dst.out.Load()) {
		return false, nil
	}
	if s.cfg.UnplugErrors {
		return true, s.opErr("write", addr, fmt.Errorf("%s %s: cable unplugged: %w", s.net, s.local, link.ErrDisconnected))
	}
	s.faults.unplugged.Add(1)
	return true, nil
}

// deliver sends copies of p (as the medium decides) to the receiver r. The
// caller holds the write token of m.
func (s *station) deliver(p []byte, r *station, m *medium, dl <-chan struct{}, addr net.Addr) error {
	for range m.copies() {
		for {
			// The cable may have been pulled while we waited for room.
			if lost, err := s.unpluggedTo(r.plug, addr); lost || err != nil {
				return err
			}
			if r.in.push(p, m, s.local) != pushFull {
				break
			}
			if r.cfg.DropWhenFull {
				s.faults.overflowed.Add(1)
				r.stats.dropped.Add(1)
				break
			}
			select {
			case <-r.in.writable:
			case <-dl:
				return s.opErr("write", addr, os.ErrDeadlineExceeded)
			case <-s.closed:
				return s.opErr("write", addr, net.ErrClosed)
			}
		}
	}
	return nil
}

// close closes the station once: pending calls return net.ErrClosed and its
// queue swallows whatever is still sent to it.
func (s *station) close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.rd.Stop()
		s.wd.Stop()
		s.in.close()
	})
}
