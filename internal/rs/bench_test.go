package rs

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// xorSink keeps the anchor loop from being optimised away.
var xorSink byte

// BenchmarkAnchorXOR is the memory-speed anchor for the codec benchmarks in
// the same run: one pass over a 255-byte block XORing every byte. Compare
// the codec's MB/s against it rather than against absolute figures.
func BenchmarkAnchorXOR(b *testing.B) {
	block := make([]byte, maxBlock)
	for i := range block {
		block[i] = byte(i)
	}
	b.SetBytes(maxBlock)
	b.ReportAllocs()
	for b.Loop() {
		var x byte
		for _, v := range block {
			x ^= v
		}
		block[0] ^= x // carry a dependency into the next iteration
		xorSink = x
	}
}

func BenchmarkEncode(b *testing.B) {
	for _, p := range []int{4, 8} {
		b.Run(fmt.Sprintf("n=255/parity=%d", p), func(b *testing.B) {
			c := mustNew(b, p)
			block := encodeBlock(b, c, maxBlock, rand.New(rand.NewPCG(1, 1)))
			k := maxBlock - p
			b.SetBytes(maxBlock)
			b.ReportAllocs()
			for b.Loop() {
				c.Encode(block[:k], block[k:])
			}
		})
	}
}

// BenchmarkDecode decodes a clean block, one with a single error (the
// common case on a serial line) and one with t = parity/2 errors.
// Each iteration copies the block in first (a 255-byte copy, far below the
// decode cost) because Decode repairs in place.
func BenchmarkDecode(b *testing.B) {
	for _, p := range []int{4, 8} {
		for _, e := range []int{0, 1, p / 2} {
			b.Run(fmt.Sprintf("n=255/parity=%d/errors=%d", p, e), func(b *testing.B) {
				c := mustNew(b, p)
				rng := rand.New(rand.NewPCG(2, 2))
				orig := encodeBlock(b, c, maxBlock, rng)
				corrupt(orig, e, rng)
				block := make([]byte, maxBlock)
				b.SetBytes(maxBlock)
				b.ReportAllocs()
				for b.Loop() {
					copy(block, orig)
					if got, err := c.Decode(block); err != nil || got != e {
						b.Fatalf("Decode = %d, %v", got, err)
					}
				}
			})
		}
	}
}
