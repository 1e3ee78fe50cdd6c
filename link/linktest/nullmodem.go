//go:build unix

package linktest

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// NullModemConfig sets up a NullModem. The zero value is an unpaced,
// error-free cable.
type NullModemConfig struct {
	// Baud, if positive, paces each direction at this many bits per
	// second; zero passes bytes as fast as the ptys go.
	Baud int
	// BitsPerByte is the bits a byte takes on the line. Default 10 (8N1).
	BitsPerByte int
	// Seed seeds the bit errors and drops; each direction draws from its
	// own stream derived from it.
	Seed uint64
	// BitErrorRate is the probability that a data bit is flipped.
	BitErrorRate float64
	// DropRate is the probability that a byte is lost.
	DropRate float64
	// Buffer is the most the bridge holds per direction. Default 4096,
	// like a UART driver. The bridge reads no more than the line carries
	// in about 10 ms, so in practice it holds less.
	Buffer int
}

// NullModem is a software null-modem cable: two pseudo-terminals whose
// masters a bridge joins, so that a program that opens PortA talks to one
// that opens PortB, through a line paced at the configured baud rate and
// with the configured noise.
//
// The bridge keeps its own buffering small, but the kernel still queues
// 18–20 KB in each pty before a writer blocks, where a real UART driver holds
// about 4 KB; and tcdrain does not wait on a pty. Size what a sender keeps in
// flight from measured round trips, not from what write accepts.
//
// The NullModem keeps both slave ends open itself (in raw mode), so a port
// can be opened and closed by its users any number of times.
type NullModem struct {
	cfg     NullModemConfig
	masters [2]*os.File
	slaves  [2]*os.File
	plug    *plug
	stats   byteCounters

	wg        sync.WaitGroup
	closeOnce sync.Once
	closed    chan struct{}
}

// NewNullModem opens two pty pairs and starts the bridge between them.
// Close stops it.
func NewNullModem(cfg NullModemConfig) (*NullModem, error) {
	if cfg.BitsPerByte <= 0 {
		cfg.BitsPerByte = 10
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 4096
	}
	nm := &NullModem{cfg: cfg, plug: newPlug(), closed: make(chan struct{})}
	for i := range 2 {
		m, s, err := openPty()
		if err != nil {
			nm.closeFiles()
			return nil, err
		}
		nm.masters[i], nm.slaves[i] = m, s
	}
	chunk := nm.cfg.Buffer
	if cfg.Baud > 0 {
		chunk = min(chunk, max(1, cfg.Baud/cfg.BitsPerByte/100))
	}
	for i := range 2 {
		n := newNoise(cfg.Seed, uint64(i+1), cfg.BitErrorRate, cfg.DropRate)
		nm.wg.Add(1)
		go nm.bridge(nm.masters[i], nm.masters[1-i], chunk, n)
	}
	return nm, nil
}

// openPty opens a pty pair with a non-blocking master (so that Close
// unblocks the bridge) and a raw-mode slave.
func openPty() (master, slave *os.File, err error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("linktest: open a pty for the null modem (is /dev/ptmx there?): %w", err)
	}
	// pty.Open leaves the master in blocking mode, out of reach of the
	// runtime poller; a non-blocking duplicate is pollable.
	fd, err := unix.Dup(int(m.Fd()))
	m.Close()
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("linktest: make the pty master non-blocking: %w", err)
	}
	master = os.NewFile(uintptr(fd), "ptmx:"+s.Name())
	if _, err := term.MakeRaw(int(s.Fd())); err != nil {
		master.Close()
		s.Close()
		return nil, nil, fmt.Errorf("linktest: set %s to raw mode: %w", s.Name(), err)
	}
	return master, s, nil
}

// bridge carries bytes from src to dst at the line's pace until Close.
func (nm *NullModem) bridge(src, dst *os.File, chunk int, n noise) {
	defer nm.wg.Done()
	buf := make([]byte, chunk)
	var lineFree time.Time
	var timer *time.Timer
	for {
		k, err := src.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			// EIO while no slave is open cannot happen (we hold the
			// slaves); anything else: back off and retry until Close.
			select {
			case <-nm.closed:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		nm.stats.written.Add(uint64(k))
		kept := 0
		for _, c := range buf[:k] {
			if c, ok := n.corrupt(c, &nm.stats); ok {
				buf[kept] = c
				kept++
			}
		}
		if nm.cfg.Baud > 0 {
			// The line is busy until lineFree. A reader that comes back a
			// little late (timer slack, the write, the next read) has not
			// let the line idle: only a real gap restarts the clock, or
			// the slack of every chunk would slow the line by a few %.
			now := time.Now()
			if now.Sub(lineFree) > 20*time.Millisecond {
				lineFree = now
			}
			lineFree = lineFree.Add(time.Duration(int64(k) * int64(nm.cfg.BitsPerByte) * int64(time.Second) / int64(nm.cfg.Baud)))
			if d := time.Until(lineFree); d > 0 {
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				select {
				case <-nm.closed:
					timer.Stop()
					return
				case <-timer.C:
				}
			}
		}
		if nm.plug.out.Load() {
			nm.stats.unplugged.Add(uint64(kept))
			continue
		}
		if _, err := dst.Write(buf[:kept]); err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			continue
		}
		nm.stats.read.Add(uint64(kept))
	}
}

// PortA returns the device path of one end, such as /dev/pts/5, for
// go.bug.st/serial or sz and rz to open.
func (nm *NullModem) PortA() string { return nm.slaves[0].Name() }

// PortB returns the device path of the other end.
func (nm *NullModem) PortB() string { return nm.slaves[1].Name() }

// Unplug pulls the cable: until Replug, the bridge discards every byte.
func (nm *NullModem) Unplug() { nm.plug.unplug() }

// Replug puts the cable back.
func (nm *NullModem) Replug() { nm.plug.replug() }

// Stats counts what the bridge did, both directions summed: Written is the
// bytes it took from the ports' writers, Read the bytes it delivered.
func (nm *NullModem) Stats() ByteStats {
	s := &nm.stats
	return ByteStats{
		Written:     s.written.Load(),
		Read:        s.read.Load(),
		BitsFlipped: s.flipped.Load(),
		Dropped:     s.dropped.Load(),
		Unplugged:   s.unplugged.Load(),
	}
}

// Close stops the bridge, waits for its goroutines and closes the ptys;
// programs that still have a port open see it hang up. It is safe to call
// more than once.
func (nm *NullModem) Close() error {
	nm.closeOnce.Do(func() {
		close(nm.closed)
		for _, m := range nm.masters {
			m.Close()
		}
		nm.wg.Wait()
		nm.closeFiles()
	})
	return nil
}

func (nm *NullModem) closeFiles() {
	for _, f := range append(nm.masters[:], nm.slaves[:]...) {
		if f != nil {
			f.Close()
		}
	}
}
