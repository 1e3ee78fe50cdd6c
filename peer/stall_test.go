package peer

import (
	"testing"
	"time"
)

// TestStallResendsOnePacket drives the send path's bookkeeping with a clock
// of its own: a FIFO line that carries one 1000-byte packet per millisecond
// (RTT 5 ms when idle) stalls for 2 s with 20 packets in flight, as when a
// starved CPU stops reading it. Every packet outlives its timer, yet none is
// lost. The sender must resend one packet per timeout, not the window: each
// copy would otherwise ride the line behind the originals, stretch the next
// round trip past the timer again, and the session collapse into resending
// duplicates. When the stall ends the originals are acked in order; their
// round trips must reach the RTT estimate (or the next stall times out just
// as early), and acks of resent packets alone must not undo the backoff.
func TestStallResendsOnePacket(t *testing.T) {
	const n, window = 1000, 20
	s := &Session{cfg: &Config{}, slots: make([]sendSlot, 64), seg: n, maxSeg: n, rto: time.Second}
	t0 := time.Unix(0, 0)
	at := func(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }
	send := func(now time.Time) *sendSlot {
		sl := &s.slots[s.sndNxt%64]
		*sl = sendSlot{n: n, seq: s.sndNxt, buf: make([]byte, 1)}
		s.sndNxt++
		s.transmit(sl, now)
		return sl
	}
	ack := func(sl *sendSlot, now time.Time) {
		s.ackSlot(sl, now)
		for s.sndUna < s.sndNxt && s.slots[s.sndUna%64].acked {
			s.sndUna++
		}
	}
	// A clean start: 100 packets, each acked 5 ms after it was sent.
	for i := 0; i < 100; i++ {
		ack(send(at(float64(i))), at(float64(i)+5))
	}
	rtoBefore := s.rto
	if s.srtt > 10*time.Millisecond || rtoBefore != minRTO {
		t.Fatalf("after a clean start: srtt %v, rto %v; want about 5 ms and %v", s.srtt, s.rto, minRTO)
	}
	// 20 more in flight, then the line stalls for 2 s.
	var inFlight []*sendSlot
	for i := 0; i < window; i++ {
		inFlight = append(inFlight, send(at(200+float64(i))))
	}
	s.lastRecv = at(200)
	now := 200.0
	timeouts := 0
	for now < 2200 {
		wait, expired := s.checkTimeout(at(now))
		if !expired {
			now += float64(wait) / float64(time.Millisecond)
			continue
		}
		timeouts++
		// The writer resends what was taken as lost, as nextPacketLocked does.
		for _, q := range s.lostQ {
			sl := &s.slots[q%64]
			s.transmit(sl, at(now))
			sl.retrans++
		}
		if len(s.lostQ) != 1 {
			t.Fatalf("timeout %d at %.0f ms took %d packets as lost; want 1 (the oldest)", timeouts, now, len(s.lostQ))
		}
		s.lostQ = s.lostQ[:0]
	}
	if timeouts == 0 || timeouts > 4 {
		t.Fatalf("%d timeouts in a 2 s stall with rto %v backing off; want 1 to 4", timeouts, rtoBefore)
	}
	// The stall ends: the originals arrive in order, one a millisecond, and
	// their acks come back. The first packets were resent; acks of those
	// alone must leave the backed-off timer alone.
	backedOff := s.rto
	ack(inFlight[0], at(2200))
	if s.rto < backedOff {
		t.Fatalf("the ack of a resent packet cut the timer from %v to %v", backedOff, s.rto)
	}
	for i, sl := range inFlight[1:] {
		ack(sl, at(2201+float64(i)))
	}
	if s.srtt < 200*time.Millisecond {
		t.Fatalf("srtt %v after round trips of 2 s; the stall did not reach the estimate", s.srtt)
	}
	if s.rto <= rtoBefore {
		t.Fatalf("rto %v after the stall, %v before; want it longer", s.rto, rtoBefore)
	}
}
