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
	s, send := newStallRig(n)
	at := msAt
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

// TestLateWriterResendsOnePacket: as TestStallResendsOnePacket, but the
// writer (starved with the rest of the process) first runs again 1 to 3 s
// after the stall began, so it checks once with every packet overdue, and
// is called again at once after each timeout (as nextPacketLocked's kick
// does). The timer restarts when it fires: one packet is resent, not every
// packet older than the backed-off timer.
func TestLateWriterResendsOnePacket(t *testing.T) {
	for _, stall := range []float64{1000, 2000, 3000} {
		const n, window = 1000, 20
		s, send := newStallRig(n)
		at := msAt
		for i := 0; i < 100; i++ {
			sl := send(at(float64(i)))
			s.ackSlot(sl, at(float64(i)+5))
			for s.sndUna < s.sndNxt && s.slots[s.sndUna%64].acked {
				s.sndUna++
			}
		}
		for i := 0; i < window; i++ {
			send(at(200 + float64(i)))
		}
		s.lastRecv = at(200)
		now := at(200 + stall)
		lost := 0
		// The writer's loop: nextPacketLocked kicks after each expiry and
		// is called again at once.
		for {
			_, expired := s.checkTimeout(now)
			if !expired {
				break
			}
			for _, q := range s.lostQ {
				sl := &s.slots[q%64]
				s.transmit(sl, now)
				sl.retrans++
				lost++
			}
			s.lostQ = s.lostQ[:0]
		}
		t.Logf("stall %4.0f ms, first check after it: %d of %d packets resent, rto now %v", stall, lost, window, s.rto)
		if lost > 1 {
			t.Errorf("stall %.0f ms: %d packets resent at one instant; want 1", stall, lost)
		}
	}
}

// TestStallAckIsAmbiguous: a 1 s stall on a FIFO line (nothing lost); the
// timer resends the oldest packet once. When the stall ends the originals
// arrive in order and the first ack covers packet 0 only. That ack may
// answer either copy: taking it for the resend would put every original
// still in flight behind an acked packet, and the gap rule would resend
// them all. With a second run in which the originals were really lost
// (an outage), the same ack must lead to their resending once the
// reorder window has passed with no original acked.
func TestStallAckIsAmbiguous(t *testing.T) {
	for _, outage := range []bool{false, true} {
		stallAck(t, outage)
	}
}

func stallAck(t *testing.T, outage bool) {
	const n, window = 1000, 20
	s, send := newStallRig(n)
	at := msAt
	ackTo := func(cum uint64, now time.Time) {
		var v [4]byte
		v[0], v[1], v[2], v[3] = byte(cum>>24), byte(cum>>16), byte(cum>>8), byte(cum)
		s.onAck(v[:], now)
	}
	for i := 0; i < 100; i++ {
		send(at(float64(i)))
		ackTo(s.sndNxt, at(float64(i)+5))
	}
	for i := 0; i < window; i++ {
		send(at(200 + float64(i)))
	}
	s.lastRecv = at(200)
	now := 200.0
	resent := 0
	for now < 1200 {
		wait, expired := s.checkTimeout(at(now))
		if !expired {
			now += float64(wait) / float64(time.Millisecond)
			continue
		}
		for _, q := range s.lostQ {
			sl := &s.slots[q%64]
			s.transmit(sl, at(now))
			sl.retrans++
			resent++
			if q != s.sndUna {
				t.Fatalf("the stall's timeouts resent packet %d, not the oldest (%d)", q, s.sndUna)
			}
		}
		s.lostQ = s.lostQ[:0]
	}
	if resent == 0 || resent > 2 {
		t.Fatalf("%d resends during a 1 s stall (timer 200 ms, doubling); want 1 or 2", resent)
	}
	// The stall ends: packet 0 (either copy) is acked alone.
	ackTo(s.sndUna+1, at(1200))
	if len(s.lostQ) > 0 {
		t.Fatalf("outage %v: one ack after the stall took %d of the %d originals still in flight as lost", outage, len(s.lostQ), window-1)
	}
	if !outage {
		// The originals keep coming, one a millisecond: none is lost.
		for i := 1; i < window; i++ {
			ackTo(s.sndUna+1, at(1200+float64(i)))
			if _, expired := s.checkTimeout(at(1200 + float64(i))); expired || len(s.lostQ) > 0 {
				t.Fatalf("stall: original %d of %d taken as lost", i, window)
			}
		}
		return
	}
	// Nothing else comes: once the reorder window has passed, the gap
	// behind the resent packet's ack marks the rest lost, all at once.
	wait, expired := s.checkTimeout(at(1200))
	if expired || wait <= 0 || wait > time.Second {
		t.Fatalf("outage: right after the ack, expired %v, wait %v; want a wait of the reorder window", expired, wait)
	}
	later := at(1200).Add(wait)
	if _, expired := s.checkTimeout(later); !expired || len(s.lostQ) != window-1 {
		t.Fatalf("outage: after the reorder window, %d of %d taken as lost", len(s.lostQ), window-1)
	}
}

// newStallRig is a session whose send bookkeeping a test drives with a clock
// of its own (msAt), and a function that sends a packet of n bytes at a time.
func newStallRig(n int) (*Session, func(time.Time) *sendSlot) {
	s := &Session{cfg: &Config{}, slots: make([]sendSlot, 64), seg: n, maxSeg: n, rto: time.Second}
	send := func(now time.Time) *sendSlot {
		sl := &s.slots[s.sndNxt%64]
		*sl = sendSlot{n: n, seq: s.sndNxt, buf: make([]byte, 1)}
		s.sndNxt++
		s.transmit(sl, now)
		return sl
	}
	return s, send
}

// msAt is the test clock: ms milliseconds after the Unix epoch.
func msAt(ms float64) time.Time {
	return time.Unix(0, 0).Add(time.Duration(ms * float64(time.Millisecond)))
}
