package peer

import (
	"math"
	"testing"
	"time"
)

// TestRateIgnoresAckBursts drives the send path's bookkeeping with a clock
// of its own: a line that carries 1 MB/s (1000-byte packets, one per
// millisecond) whose acks come back in bursts, one per round of 20 packets.
// Taking the bytes acked since a packet was sent over that packet's own
// round trip would make the line look many times faster (the first burst
// alone says 13 MB/s), and the in-flight limit with it.
func TestRateIgnoresAckBursts(t *testing.T) {
	const n, perRound = 1000, 20
	s := &Session{cfg: &Config{}, slots: make([]sendSlot, 64), seg: n, maxSeg: n, rto: time.Second}
	t0 := time.Unix(0, 0)
	ms := func(f float64) time.Time { return t0.Add(time.Duration(f * float64(time.Millisecond))) }
	at := 0.0
	for round := 0; round < 4; round++ {
		first := s.sndNxt
		for i := 0; i < perRound; i++ {
			sl := &s.slots[s.sndNxt%64]
			*sl = sendSlot{n: n, seq: s.sndNxt, buf: make([]byte, 1)}
			s.sndNxt++
			s.transmit(sl, ms(at))
			at++ // the line takes a millisecond per packet
		}
		at += 1.5 // the last packet's ack, and with it every other one
		for q := first; q < s.sndNxt; q++ {
			s.ackSlot(&s.slots[q%64], ms(at))
		}
		s.sndUna = s.sndNxt
	}
	if bw := s.bwMax(); bw < 0.5e6 || bw > 1.2e6 {
		t.Fatalf("rate estimate %.0f B/s on a line of 1,000,000 B/s", bw)
	}
	// One round trip is 1.5 ms at least; the in-flight limit is about a
	// bandwidth-delay product plus 20 ms of the line, not hundreds of KB.
	if s.cwnd > 40_000 {
		t.Fatalf("in-flight limit %d bytes on a 1 MB/s line", s.cwnd)
	}
}

// TestRatePeakExpires: the rate estimate is the largest of the last rounds'
// samples, so a line that slows down (a busier link, a lower baud rate) is
// followed once the fast rounds leave the window, and the estimate kept
// per packet always equals the largest sample in the window.
func TestRatePeakExpires(t *testing.T) {
	const n, perRound = 1000, 20
	s := &Session{cfg: &Config{}, slots: make([]sendSlot, 64), seg: n, maxSeg: n, rto: time.Second}
	t0 := time.Unix(0, 0)
	ms := func(f float64) time.Time { return t0.Add(time.Duration(f * float64(time.Millisecond))) }
	at := 0.0
	for round := 0; round < 3+2*len(s.bw); round++ {
		pace := 1.0 // ms per packet: 1 MB/s
		if round >= 3 {
			pace = 10 // 100 kB/s
		}
		for i := 0; i < perRound; i++ {
			sl := &s.slots[s.sndNxt%64]
			*sl = sendSlot{n: n, seq: s.sndNxt, buf: make([]byte, 1)}
			s.sndNxt++
			s.transmit(sl, ms(at))
			at += pace
			s.ackSlot(sl, ms(at+0.5))
			s.sndUna = s.sndNxt
			var want float64
			for _, b := range s.bw {
				want = max(want, b)
			}
			if got := s.bwMax(); got != want {
				t.Fatalf("round %d packet %d: rate estimate %.0f, largest sample in the window %.0f", round, i, got, want)
			}
		}
		if round == 2 {
			if bw := s.bwMax(); bw < 0.5e6 {
				t.Fatalf("rate estimate %.0f B/s after 3 rounds at 1 MB/s", bw)
			}
		}
	}
	if bw := s.bwMax(); bw < 0.05e6 || bw > 0.2e6 {
		t.Fatalf("rate estimate %.0f B/s long after the line slowed to 100 kB/s", bw)
	}
}

// TestLossSampleDecay: the damage estimate decays each sample by the
// packet's own size, also when sizes change from one sample to the next
// (the decay is computed once per size).
func TestLossSampleDecay(t *testing.T) {
	s := &Session{cfg: &Config{FixedSegment: true}}
	var bytes, losses float64
	for i, n := range []int{1476, 1476, 200, 1476, 9000, 9000, 200, 1476} {
		lost := i%3 == 0
		s.lossSample(lost, n)
		w := float64(n + 19)
		d := math.Exp(-w / (128 << 10))
		bytes = bytes*d + w
		losses *= d
		if lost {
			losses++
		}
		if math.Abs(s.dmgBytes-bytes) > 1e-9*bytes || math.Abs(s.dmgLosses-losses) > 1e-12 {
			t.Fatalf("sample %d (%d bytes): estimate %v bytes %v losses, want %v and %v", i, n, s.dmgBytes, s.dmgLosses, bytes, losses)
		}
	}
}
