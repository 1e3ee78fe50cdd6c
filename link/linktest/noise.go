package linktest

import (
	"math"
	"math/rand/v2"
)

// noise corrupts a byte stream: seeded bit errors and dropped bytes. It
// draws one random number per error, not per bit, so a clean line costs
// next to nothing.
type noise struct {
	rng      *rand.Rand
	ber      float64 // probability of a bit error per data bit
	drop     float64 // probability of a lost byte
	nextFlip int64   // data bits until the next bit error; -1 never
	nextDrop int64   // bytes until the next dropped byte; -1 never
}

func newNoise(seed, stream uint64, ber, drop float64) noise {
	n := noise{rng: rand.New(rand.NewPCG(seed, stream)), ber: ber, drop: drop}
	n.nextFlip = geometric(n.rng, ber)
	n.nextDrop = geometric(n.rng, drop)
	return n
}

// geometric returns how many trials pass before the next success of
// probability p (the gap to the next error), or -1 for never.
func geometric(rng *rand.Rand, p float64) int64 {
	if p <= 0 {
		return -1
	}
	if p >= 1 {
		return 0
	}
	u := 1 - rng.Float64() // (0, 1]
	g := math.Floor(math.Log(u) / math.Log1p(-p))
	if g > math.MaxInt64/2 {
		return math.MaxInt64 / 2
	}
	return int64(g)
}

// corrupt passes one byte over the line: it returns the byte as it arrives
// and false if it was lost, counting what it did in st.
func (n *noise) corrupt(c byte, st *byteCounters) (byte, bool) {
	if n.nextDrop == 0 {
		n.nextDrop = geometric(n.rng, n.drop)
		st.dropped.Add(1)
		return 0, false
	}
	if n.nextDrop > 0 {
		n.nextDrop--
	}
	bits := int64(8) // data bits of c not yet exposed to errors
	for n.nextFlip >= 0 && n.nextFlip < bits {
		c ^= 1 << (8 - bits + n.nextFlip)
		st.flipped.Add(1)
		bits -= n.nextFlip + 1
		n.nextFlip = geometric(n.rng, n.ber)
	}
	if n.nextFlip >= 0 {
		n.nextFlip -= bits
	}
	return c, true
}
