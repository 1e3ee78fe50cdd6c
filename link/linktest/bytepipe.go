package linktest

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2plink/p2plink/internal/deadline"
	"github.com/p2plink/p2plink/link"
)

// ByteConfig sets up a BytePipe. The zero value is a perfect, unpaced
// stream with a 4 KiB buffer each way.
type ByteConfig struct {
	// Name names the pipe in addresses and errors. Default "bytepipe".
	Name string
	// Seed seeds every random choice; each direction draws from its own
	// stream derived from it.
	Seed uint64
	// BitErrorRate is the probability that a data bit is flipped in flight.
	BitErrorRate float64
	// DropRate is the probability that a byte is lost in flight (a framing
	// error or an overrun on a real UART). A lost byte takes no line time.
	DropRate float64
	// Split, if positive, makes each Read return at most a random 1..Split
	// bytes, the way a UART driver hands over a stream in bits and pieces.
	Split int
	// Baud, if positive, paces each direction at this many bits per second:
	// a byte arrives BitsPerByte/Baud seconds after the one before it.
	Baud int
	// BitsPerByte is the bits a byte takes on the line. Default 10 (8N1:
	// start bit, 8 data bits, stop bit).
	BitsPerByte int
	// Buffer bounds the bytes each direction holds, written but not yet
	// read, like a UART driver's buffers. A writer blocks while it is full
	// (flow control). Default 4096.
	Buffer int
	// UnplugErrors makes a pulled cable visible: while unplugged, Write
	// fails and Read (once no byte is left to read) returns an error
	// wrapping link.ErrDisconnected. By default bytes are lost silently.
	UnplugErrors bool
}

// ByteStats counts what a BytePipe did, summed over both directions.
type ByteStats struct {
	Written     uint64 // bytes accepted by Write
	Read        uint64 // bytes returned by Read
	BitsFlipped uint64 // bit errors introduced
	Dropped     uint64 // bytes lost to DropRate
	Unplugged   uint64 // bytes lost to a pulled cable or a closed reader
}

type byteCounters struct {
	written, read, flipped, dropped, unplugged atomic.Uint64
}

// segment is a run of bytes sent back to back on a paced line: byte i of
// the run (counting the off bytes already read) arrives at start +
// lineTime(i+1).
type segment struct {
	off, n int // bytes of the run already read, and still buffered
	start  time.Time
}

// byteDir is one direction of a BytePipe.
type byteDir struct {
	cfg   *ByteConfig
	paced bool
	noise noise      // faults, drawn by the writer
	split *rand.Rand // read sizes, drawn by the reader

	mu       sync.Mutex
	buf      []byte
	r, n     int
	segs     []segment // only when paced
	closed   bool      // the reader closed
	readable chan struct{}
	writable chan struct{}
}

// lineTime is how long k bytes take on the line.
func (d *byteDir) lineTime(k int) time.Duration {
	return time.Duration(int64(k) * int64(d.cfg.BitsPerByte) * int64(time.Second) / int64(d.cfg.Baud))
}

// onLine returns how many whole bytes the line carries in t.
func (d *byteDir) onLine(t time.Duration) int {
	if t <= 0 {
		return 0
	}
	k := int(float64(t) * float64(d.cfg.Baud) / (float64(d.cfg.BitsPerByte) * float64(time.Second)))
	for d.lineTime(k+1) <= t {
		k++
	}
	for k > 0 && d.lineTime(k) > t {
		k--
	}
	return k
}

// arrived returns how many buffered bytes have reached the reader, and how
// long until the next one does.
func (d *byteDir) arrived(now time.Time) (int, time.Duration) {
	if !d.paced {
		return d.n, 0
	}
	total := 0
	for _, s := range d.segs {
		k := d.onLine(now.Sub(s.start)) - s.off
		if k < s.n {
			k = max(k, 0)
			return total + k, s.start.Add(d.lineTime(s.off + k + 1)).Sub(now)
		}
		total += s.n
	}
	return total, 0
}

// consume removes k arrived bytes from the segments.
func (d *byteDir) consume(k int) {
	for k > 0 && len(d.segs) > 0 {
		s := &d.segs[0]
		m := min(k, s.n)
		s.n -= m
		s.off += m
		k -= m
		if s.n == 0 {
			d.segs = d.segs[1:]
		}
	}
	if len(d.segs) == 0 {
		d.segs = d.segs[:0:0]
	}
}

// lineFree is when the line finishes sending what is buffered.
func (d *byteDir) lineFree() time.Time {
	if len(d.segs) == 0 {
		return time.Time{}
	}
	s := d.segs[len(d.segs)-1]
	return s.start.Add(d.lineTime(s.off + s.n))
}

// ByteEnd is one end of a BytePipe: an io.ReadWriteCloser with deadlines.
type ByteEnd struct {
	pipe   *bytePipe
	in     *byteDir
	out    *byteDir
	local  net.Addr
	rd, wd *deadline.Deadline
	token  chan struct{}

	closeOnce sync.Once
	closed    chan struct{}
}

type bytePipe struct {
	cfg   ByteConfig
	plug  *plug
	stats byteCounters
	a, b  *ByteEnd
}

// NewBytePipe returns the two ends of a full-duplex byte stream with the
// faults cfg asks for, like a serial cable. Nothing runs in the background;
// time is read through package time only, so the pipe runs on a
// testing/synctest bubble's clock when made inside it. Closing one end does
// not signal the other (a serial line has no end-of-file): the far end's
// reads wait on, and what it writes is discarded.
func NewBytePipe(cfg ByteConfig) (a, b *ByteEnd) {
	if cfg.Name == "" {
		cfg.Name = "bytepipe"
	}
	if cfg.BitsPerByte <= 0 {
		cfg.BitsPerByte = 10
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 4096
	}
	p := &bytePipe{cfg: cfg, plug: newPlug()}
	c := &p.cfg
	mkDir := func(stream uint64) *byteDir {
		d := &byteDir{
			cfg:      c,
			noise:    newNoise(c.Seed, stream, c.BitErrorRate, c.DropRate),
			split:    rand.New(rand.NewPCG(c.Seed, stream+100)),
			buf:      make([]byte, c.Buffer),
			readable: make(chan struct{}, 1),
			writable: make(chan struct{}, 1),
		}
		d.paced = c.Baud > 0
		return d
	}
	ab, ba := mkDir(1), mkDir(2)
	mk := func(side string, in, out *byteDir) *ByteEnd {
		return &ByteEnd{
			pipe:   p,
			in:     in,
			out:    out,
			local:  link.Addr{Net: "bytepipe", Name: c.Name + "/" + side},
			rd:     deadline.New(),
			wd:     deadline.New(),
			token:  make(chan struct{}, 1),
			closed: make(chan struct{}),
		}
	}
	p.a, p.b = mk("a", ba, ab), mk("b", ab, ba)
	return p.a, p.b
}

func (e *ByteEnd) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "bytepipe", Source: e.local, Err: err}
}

func (e *ByteEnd) disconnected(op string) error {
	return e.opErr(op, fmt.Errorf("%s: cable unplugged: %w", e.local, link.ErrDisconnected))
}

// Read reads the bytes that have arrived, blocking until at least one has.
func (e *ByteEnd) Read(p []byte) (int, error) {
	d := e.in
	for {
		if closedChan(e.closed) {
			return 0, e.opErr("read", net.ErrClosed)
		}
		dl := e.rd.Wait()
		if closedChan(dl) {
			return 0, e.opErr("read", os.ErrDeadlineExceeded)
		}
		if len(p) == 0 {
			return 0, nil
		}
		d.mu.Lock()
		avail, wait := d.arrived(time.Now())
		if avail > 0 {
			k := min(avail, len(p))
			if e.pipe.cfg.Split > 0 {
				k = min(k, 1+d.split.IntN(e.pipe.cfg.Split))
			}
			n := copy(p[:k], d.buf[d.r:])
			if n < k {
				n += copy(p[n:k], d.buf)
			}
			d.r = (d.r + k) % len(d.buf)
			d.n -= k
			d.consume(k)
			more := d.n > 0
			d.mu.Unlock()
			signal(d.writable)
			if more {
				signal(d.readable)
			}
			e.pipe.stats.read.Add(uint64(k))
			return k, nil
		}
		d.mu.Unlock()
		var gone chan struct{}
		if e.pipe.cfg.UnplugErrors {
			gone = e.pipe.plug.gone()
			if closedChan(gone) {
				return 0, e.disconnected("read")
			}
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			fire = timer.C
		}
		select {
		case <-d.readable:
		case <-fire:
		case <-dl:
		case <-gone:
		case <-e.closed:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// Write queues p for the far end, blocking while the buffer is full. It
// returns fewer bytes than len(p) only with an error.
func (e *ByteEnd) Write(p []byte) (int, error) {
	if closedChan(e.closed) {
		return 0, e.opErr("write", net.ErrClosed)
	}
	dl := e.wd.Wait()
	if closedChan(dl) {
		return 0, e.opErr("write", os.ErrDeadlineExceeded)
	}
	select {
	case e.token <- struct{}{}:
	case <-dl:
		return 0, e.opErr("write", os.ErrDeadlineExceeded)
	case <-e.closed:
		return 0, e.opErr("write", net.ErrClosed)
	}
	defer func() { <-e.token }()
	d, st := e.out, &e.pipe.stats
	done := 0
	for done < len(p) {
		if e.pipe.plug.out.Load() {
			if e.pipe.cfg.UnplugErrors {
				return done, e.disconnected("write")
			}
			st.unplugged.Add(uint64(len(p) - done))
			st.written.Add(uint64(len(p) - done))
			return len(p), nil
		}
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			st.unplugged.Add(uint64(len(p) - done))
			st.written.Add(uint64(len(p) - done))
			return len(p), nil
		}
		room := len(d.buf) - d.n
		if room == 0 {
			d.mu.Unlock()
			select {
			case <-d.writable:
			case <-dl:
				return done, e.opErr("write", os.ErrDeadlineExceeded)
			case <-e.closed:
				return done, e.opErr("write", net.ErrClosed)
			}
			continue
		}
		chunk := p[done:min(len(p), done+room)]
		kept := e.out.put(chunk, st)
		d.mu.Unlock()
		if kept > 0 {
			signal(d.readable)
		}
		st.written.Add(uint64(len(chunk)))
		done += len(chunk)
	}
	return done, nil
}

// put appends chunk to the buffer (which has room), applying bit errors and
// drops, and returns how many bytes it kept. d.mu is held.
func (d *byteDir) put(chunk []byte, st *byteCounters) int {
	kept := 0
	if d.noise.nextFlip < 0 && d.noise.nextDrop < 0 {
		// A clean line: copy in bulk.
		w := (d.r + d.n) % len(d.buf)
		k := copy(d.buf[w:], chunk)
		copy(d.buf, chunk[k:])
		d.n += len(chunk)
		kept = len(chunk)
		chunk = nil
	}
	for _, c := range chunk {
		c, ok := d.noise.corrupt(c, st)
		if !ok {
			continue
		}
		d.buf[(d.r+d.n)%len(d.buf)] = c
		d.n++
		kept++
	}
	if d.paced && kept > 0 {
		if k := len(d.segs); k > 0 && !d.lineFree().Before(time.Now()) {
			d.segs[k-1].n += kept // the line is busy: queue behind
		} else {
			d.segs = append(d.segs, segment{n: kept, start: time.Now()})
		}
	}
	return kept
}

// Close closes this end: pending and later calls fail with an error
// wrapping net.ErrClosed. It is safe to call more than once.
func (e *ByteEnd) Close() error {
	e.closeOnce.Do(func() {
		close(e.closed)
		e.rd.Stop()
		e.wd.Stop()
		d := e.in
		d.mu.Lock()
		d.closed = true
		d.n, d.segs = 0, nil
		d.mu.Unlock()
		signal(d.writable)
	})
	return nil
}

// SetDeadline sets the read and write deadlines.
func (e *ByteEnd) SetDeadline(t time.Time) error {
	if err := e.SetReadDeadline(t); err != nil {
		return err
	}
	return e.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for Read calls, pending ones too.
func (e *ByteEnd) SetReadDeadline(t time.Time) error {
	if closedChan(e.closed) {
		return e.opErr("set", net.ErrClosed)
	}
	e.rd.Set(t)
	return nil
}

// SetWriteDeadline sets the deadline for Write calls, pending ones too.
func (e *ByteEnd) SetWriteDeadline(t time.Time) error {
	if closedChan(e.closed) {
		return e.opErr("set", net.ErrClosed)
	}
	e.wd.Set(t)
	return nil
}

// LocalAddr names this end: Net "bytepipe", Name "<name>/a" or "<name>/b".
func (e *ByteEnd) LocalAddr() net.Addr { return e.local }

// Stats returns what the pipe did, both directions summed.
func (e *ByteEnd) Stats() ByteStats {
	s := &e.pipe.stats
	return ByteStats{
		Written:     s.written.Load(),
		Read:        s.read.Load(),
		BitsFlipped: s.flipped.Load(),
		Dropped:     s.dropped.Load(),
		Unplugged:   s.unplugged.Load(),
	}
}

// Unplug pulls the cable, for both ends: bytes still on the wire are lost,
// and bytes written until Replug are lost silently (or fail with
// link.ErrDisconnected if the pipe was made with UnplugErrors). Bytes that
// already arrived can still be read.
func (e *ByteEnd) Unplug() {
	if !e.pipe.plug.unplug() {
		return
	}
	now := time.Now()
	for _, d := range []*byteDir{e.in, e.out} {
		d.mu.Lock()
		if avail, _ := d.arrived(now); avail < d.n {
			e.pipe.stats.unplugged.Add(uint64(d.n - avail))
			d.n = avail
			// Keep the segments that cover what arrived.
			keep := 0
			for i := range d.segs {
				s := &d.segs[i]
				if avail <= s.n {
					s.n = avail
					if avail > 0 {
						keep = i + 1
					}
					break
				}
				avail -= s.n
				keep = i + 1
			}
			d.segs = d.segs[:keep]
		}
		d.mu.Unlock()
		signal(d.writable)
	}
}

// Replug puts the cable back.
func (e *ByteEnd) Replug() { e.pipe.plug.replug() }

var _ io.ReadWriteCloser = (*ByteEnd)(nil)
