package linktest

import (
	"fmt"
	"net"
	"time"

	"github.com/p2plink/p2plink/link"
)

// FrameEnd is one end of a FramePipe: a link.Link, a link.StatsReporter,
// with the pipe's fault controls. Frames from the far end are reported as
// coming from link.PeerAddr.
type FrameEnd struct {
	st    *station
	peer  *FrameEnd
	tx    *medium       // faults of the direction this end sends in
	token chan struct{} // serialises this end's writers
	pipe  *pipeShared
}

// pipeShared is the state both ends of a pipe see.
type pipeShared struct {
	cfg    PipeConfig
	plug   *plug // one cable for both ends
	faults faultCounters
}

// Check at compile time that FrameEnd is what it claims.
var (
	_ link.Link          = (*FrameEnd)(nil)
	_ link.StatsReporter = (*FrameEnd)(nil)
)

// NewFramePipe returns the two ends of an in-memory point-to-point link with
// the faults cfg asks for. Nothing runs in the background: there is no
// goroutine to leak, and the only timers are those deadlines, latency and
// bandwidth need. Create the pipe inside a testing/synctest bubble to run it
// on the bubble's fake clock.
func NewFramePipe(cfg PipeConfig) (a, b *FrameEnd) {
	sh := &pipeShared{cfg: cfg.withDefaults("pipe"), plug: newPlug()}
	c := &sh.cfg
	mk := func(side string, stream uint64) *FrameEnd {
		local := link.Addr{Net: "pipe", Name: c.Name + "/" + side}
		return &FrameEnd{
			st:    newStation(c, "pipe", local, sh.plug, &sh.faults),
			tx:    newMedium(c, stream, &sh.faults),
			token: make(chan struct{}, 1),
			pipe:  sh,
		}
	}
	a, b = mk("a", 1), mk("b", 2)
	a.peer, b.peer = b, a
	return a, b
}

// ReadFrom reads the next frame into p and reports link.PeerAddr as its
// sender. A frame longer than p is dropped and io.ErrShortBuffer returned.
func (e *FrameEnd) ReadFrom(p []byte) (int, net.Addr, error) {
	n, _, err := e.st.read(p)
	if err != nil {
		return n, nil, err
	}
	return n, link.PeerAddr, nil
}

// WriteTo sends p as one frame to the far end; addr must be nil,
// link.PeerAddr or the far end's LocalAddr. It blocks while the far end's
// queue is full unless the pipe drops when full.
func (e *FrameEnd) WriteTo(p []byte, addr net.Addr) (int, error) {
	if addr != nil && addr != link.PeerAddr && addr != e.peer.st.local {
		return 0, e.st.opErr("write", addr, fmt.Errorf("address %v is not this point-to-point link's peer: pass nil or link.PeerAddr", addr))
	}
	dl, err := e.st.beginWrite(len(p), addr, e.token)
	if err != nil {
		return 0, err
	}
	defer func() { <-e.token }()
	if lost, err := e.st.unpluggedTo(nil, addr); err != nil {
		return 0, err
	} else if !lost {
		if err := e.st.deliver(p, e.peer.st, e.tx, dl, addr); err != nil {
			return 0, err
		}
	}
	e.st.stats.framesOut.Add(1)
	e.st.stats.bytesOut.Add(uint64(len(p)))
	return len(p), nil
}

// Close closes this end: pending and later calls on it fail with an error
// wrapping net.ErrClosed, and frames the far end still sends are discarded.
// It is safe to call more than once.
func (e *FrameEnd) Close() error {
	e.st.close()
	return nil
}

// LocalAddr returns this end's address: Net "pipe", Name "<name>/a" or
// "<name>/b".
func (e *FrameEnd) LocalAddr() net.Addr { return e.st.local }

// SetDeadline sets the read and write deadlines.
func (e *FrameEnd) SetDeadline(t time.Time) error { return e.st.setDeadlines(t, true, true) }

// SetReadDeadline sets the deadline for ReadFrom calls, pending ones too.
func (e *FrameEnd) SetReadDeadline(t time.Time) error { return e.st.setDeadlines(t, true, false) }

// SetWriteDeadline sets the deadline for WriteTo calls, pending ones too.
func (e *FrameEnd) SetWriteDeadline(t time.Time) error { return e.st.setDeadlines(t, false, true) }

// MTU returns the largest frame the pipe carries.
func (e *FrameEnd) MTU() int { return e.st.cfg.MTU }

// Stats returns this end's counters.
func (e *FrameEnd) Stats() link.Stats { return e.st.stats.stats() }

// Faults returns what the fault model did, summed over both directions.
func (e *FrameEnd) Faults() FaultStats { return e.pipe.faults.stats() }

// Unplug pulls the pipe's cable, for both ends: frames on the wire (not yet
// due at the far end) are lost, and frames sent until Replug are lost
// silently, or fail with link.ErrDisconnected if the pipe was made with
// UnplugErrors. Frames that already arrived can still be read.
func (e *FrameEnd) Unplug() {
	if e.pipe.plug.unplug() {
		n := e.st.in.dropInFlight() + e.peer.st.in.dropInFlight()
		e.pipe.faults.unplugged.Add(uint64(n))
	}
}

// Replug puts the cable back; frames flow again.
func (e *FrameEnd) Replug() { e.pipe.plug.replug() }

// Plugged reports whether the cable is in.
func (e *FrameEnd) Plugged() bool { return !e.pipe.plug.out.Load() }
