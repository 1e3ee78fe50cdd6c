package peer

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// refDetectGaps is detectGaps's loop as it was before it stopped early:
// every packet in the window looked at. It returns the packets it marks lost.
func refDetectGaps(s *Session) []uint64 {
	var lost []uint64
	w := uint64(len(s.slots))
	for q := s.sndUna; q < s.sndNxt; q++ {
		sl := &s.slots[q%w]
		if sl.inFlight && sl.order+reorderThreshold <= s.maxAcked {
			lost = append(lost, q)
		}
	}
	return lost
}

// refTimeout is checkTimeout's scan without stopping early: the first
// packet due by now, or how long until the first falls due.
func refTimeout(s *Session, now time.Time) (expired uint64, ok bool, wait time.Duration) {
	wait = time.Hour
	w := uint64(len(s.slots))
	for q := s.sndUna; q < s.sndNxt; q++ {
		sl := &s.slots[q%w]
		if !sl.inFlight {
			continue
		}
		start := sl.sentAt
		if s.lastTimeout.After(start) {
			start = s.lastTimeout
		}
		due := start.Add(max(sl.timeout, s.rto))
		if now.Before(due) {
			wait = min(wait, due.Sub(now))
			continue
		}
		return q, true, 0
	}
	return 0, false, wait
}

// randomWindow makes a window of packets as the send path leaves it: first
// transmissions in order, some resent later (a new order, a later send
// time), some acked, timeouts at or above the timer.
func randomWindow(rng *rand.Rand) (*Session, time.Time) {
	const n = 40
	t0 := time.Unix(1000, 0)
	s := &Session{cfg: &Config{}, slots: make([]sendSlot, 64), rto: 200 * time.Millisecond, seg: 1000, maxSeg: 1000}
	s.sndUna = uint64(rng.IntN(100))
	s.sndNxt = s.sndUna + n
	at := t0
	w := uint64(len(s.slots))
	for q := s.sndUna; q < s.sndNxt; q++ {
		at = at.Add(time.Duration(rng.IntN(3000)) * time.Microsecond)
		s.order++
		sl := &s.slots[q%w]
		*sl = sendSlot{seq: q, n: 1000, sentAt: at, order: s.order, inFlight: true,
			timeout: s.rto + time.Duration(rng.IntN(3))*time.Duration(rng.IntN(300))*time.Millisecond}
		s.inflight += sl.n
	}
	for range rng.IntN(6) { // resends, later
		sl := &s.slots[(s.sndUna+uint64(rng.IntN(n)))%w]
		at = at.Add(time.Duration(rng.IntN(50)) * time.Millisecond)
		s.order++
		sl.order, sl.prevSentAt, sl.sentAt = s.order, sl.sentAt, at
		sl.retrans++
	}
	for range rng.IntN(n) { // acked
		sl := &s.slots[(s.sndUna+uint64(rng.IntN(n)))%w]
		if sl.inFlight {
			sl.inFlight, sl.acked = false, true
			s.inflight -= sl.n
		}
	}
	s.maxAcked = uint64(rng.IntN(int(s.order) + 2))
	s.maxAckedFirst = uint64(rng.IntN(int(s.maxAcked) + 1))
	if rng.IntN(4) == 0 {
		s.lastTimeout = t0.Add(time.Duration(rng.IntN(400)) * time.Millisecond)
	}
	now := t0.Add(time.Duration(rng.IntN(600)) * time.Millisecond)
	return s, now
}

// cloneWindow copies what the scans read and write.
func cloneWindow(s *Session) *Session {
	return &Session{cfg: s.cfg, slots: slices.Clone(s.slots), lostQ: slices.Clone(s.lostQ),
		rto: s.rto, seg: s.seg, maxSeg: s.maxSeg, sndUna: s.sndUna, sndNxt: s.sndNxt, order: s.order,
		inflight: s.inflight, maxAcked: s.maxAcked, maxAckedFirst: s.maxAckedFirst, lastTimeout: s.lastTimeout}
}

// TestScansStopEarly: detectGaps and checkTimeout stop at the first first
// transmission that rules out every later packet; on random windows they
// must decide exactly what scanning the whole window decides.
func TestScansStopEarly(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 20000 {
		s, now := randomWindow(rng)
		want := refDetectGaps(s)
		g := cloneWindow(s)
		g.detectGaps(now)
		if !slices.Equal(g.lostQ, want) {
			t.Fatalf("window %d: detectGaps marked %v lost, scanning everything marks %v", i, g.lostQ, want)
		}
		// checkTimeout on a window with nothing left to mark lost.
		for _, q := range want {
			sl := &s.slots[q%uint64(len(s.slots))]
			sl.inFlight = false
		}
		wq, wok, wwait := refTimeout(s, now)
		c := cloneWindow(s)
		wait, expired := c.checkTimeout(now)
		if expired != wok {
			t.Fatalf("window %d: checkTimeout expired=%v, scanning everything says %v (packet %d)", i, expired, wok, wq)
		}
		if expired {
			if len(c.lostQ) != 1 || c.lostQ[0] != wq {
				t.Fatalf("window %d: checkTimeout took %v as lost, want [%d]", i, c.lostQ, wq)
			}
		} else if wait != wwait {
			t.Fatalf("window %d: checkTimeout waits %v, scanning everything gives %v", i, wait, wwait)
		}
	}
}
