package peer

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/p2plink/p2plink/link"
)

// Forward error correction on links that offer it (link.Corrector: serial
// lines). The receiving end counts the bytes that arrive changed and sends
// its counters (since the session began) back in LINKQ frames; the sending end turns them into a
// per-byte damage rate and picks how many damaged bytes per 255-byte block
// its frames can repair. Without correction a flipped bit costs a whole
// packet, resent; with it, 2 parity bytes per block repair it in place.

// A receiving end reports its line's damage every linkqEvery, or sooner when
// linkqBytes more arrived (on a fast line).
const (
	linkqEvery = 250 * time.Millisecond
	linkqBytes = 32 << 10
)

// fecWindow is the span of received bytes, in bytes, over which the sending
// end averages the damage rate; fecMinBytes is how many it needs first.
const (
	fecWindow   = 256 << 10
	fecMinBytes = 16 << 10
)

// fecState is a session's half of forward error correction.
type fecState struct {
	corr link.Corrector // nil: the link has no correction

	// receiving end: the link's counters when the session began, and
	// what was last reported
	base      link.LineDamage
	sentAt    time.Time
	sentBytes uint64

	// sending end: the peer's counters and the damage rate from them
	lastB, lastC uint64  // the counters in the last report
	bytes, chg   float64 // decaying sums
	t            int     // correction in use
}

// appendLinkQ appends a LINKQ frame with the link's damage counters to b
// when one is due: the link corrects, it received something since the last
// report, and the last report is linkqEvery old or linkqBytes ago.
func (s *Session) appendLinkQ(b []byte, now time.Time) []byte {
	f := &s.fec
	if f.corr == nil {
		return b
	}
	d := f.corr.LineDamage()
	d.Bytes -= f.base.Bytes
	d.Changed -= f.base.Changed
	if d.Bytes == f.sentBytes || (now.Sub(f.sentAt) < linkqEvery && d.Bytes-f.sentBytes < linkqBytes) {
		return b
	}
	f.sentAt, f.sentBytes = now, d.Bytes
	var v [2 * binary.MaxVarintLen64]byte
	n := binary.PutUvarint(v[:], d.Bytes)
	n += binary.PutUvarint(v[n:], d.Changed)
	return appendFrame(b, frLinkQ, v[:n])
}

// linkqMax is the most bytes appendLinkQ adds.
const linkqMax = 2 + 2*binary.MaxVarintLen64

// onLinkQ takes the peer's damage counters and sets the correction.
func (s *Session) onLinkQ(v []byte) {
	f := &s.fec
	b, n := binary.Uvarint(v)
	if n <= 0 {
		return
	}
	c, m := binary.Uvarint(v[n:])
	if m <= 0 || c > b {
		return
	}
	if b < f.lastB || c < f.lastC || c-f.lastC > b-f.lastB {
		return // older than the last report, or inconsistent with it
	}
	db, dc := float64(b-f.lastB), float64(c-f.lastC)
	f.lastB, f.lastC = b, c
	d := math.Exp(-db / fecWindow)
	f.bytes = f.bytes*d + db
	f.chg = f.chg*d + dc
	if f.corr == nil || f.bytes < fecMinBytes {
		return
	}
	t := chooseCorrection(f.chg/f.bytes, s.maxSeg, f.t)
	if t != f.t && f.corr.SetCorrection(t) == nil {
		s.cfg.Logger.Debug("forward error correction", "peer", s.info.Name, "bytes per block", t, "damage rate", f.chg/f.bytes)
		f.t = t
		s.stats.Correction = t
	}
}

// corrections are the strengths chooseCorrection picks from.
var corrections = [...]int{0, 1, 2, 3, 4, 6, 8, 12, 16}

// chooseCorrection picks the correction, in bytes per 255-byte block, that
// carries the most payload per byte on a line that changes each byte with
// probability p, for packets of up to maxSeg bytes. cur is the correction in
// use: another must do half a percent better, so noise in the estimate does
// not flip it back and forth.
func chooseCorrection(p float64, maxSeg, cur int) int {
	best, bestEff := cur, correctionEfficiency(p, maxSeg, cur)+0.005
	for _, t := range corrections {
		if e := correctionEfficiency(p, maxSeg, t); e > bestEff {
			best, bestEff = t, e
		}
	}
	return best
}

// correctionEfficiency is the expected payload per wire byte with
// correction t. Without correction the session sizes packets to the damage
// (lossSample): payload·(1−p)^(payload+h) at the best payload. With it,
// packets of maxSeg (at most 2900 bytes, the quarter second a slow line
// allows) are cut into blocks that each survive with t or fewer changed
// bytes.
func correctionEfficiency(p float64, maxSeg, t int) float64 {
	const h = 40.0 // bytes a packet costs beyond its payload
	if p <= 0 {
		if t == 0 {
			return 1
		}
		return 1 - float64(2*t)/255
	}
	if t == 0 {
		x := math.Sqrt(h / -math.Log1p(-p)) // best packet, on the wire
		x = max(128+h, min(float64(maxSeg)+h, x))
		return (x - h) / x * math.Exp(x*math.Log1p(-p))
	}
	seg := float64(min(maxSeg, 2900))
	k := float64(255 - 2*t)
	blocks := math.Ceil((seg + h) / k)
	wire := seg + h + 1 + blocks*float64(2*t)
	// P(at most t of 255 bytes changed), summed term by term.
	term := math.Exp(255 * math.Log1p(-p))
	ok := term
	for i := 0; i < t; i++ {
		term *= float64(255-i) / float64(i+1) * p / (1 - p)
		ok += term
	}
	return seg / wire * math.Pow(min(ok, 1), blocks)
}
