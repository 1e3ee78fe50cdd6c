package rs

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// encodeBlock returns a fresh block of n bytes: random data followed by its
// parity.
func encodeBlock(t testing.TB, c *Code, n int, rng *rand.Rand) []byte {
	t.Helper()
	block := make([]byte, n)
	k := n - c.Parity()
	for i := range block[:k] {
		block[i] = byte(rng.UintN(256))
	}
	c.Encode(block[:k], block[k:])
	return block
}

// isCodeword reports whether re-encoding block's data reproduces its parity.
func isCodeword(c *Code, block []byte) bool {
	var par [maxParity]byte
	k := len(block) - c.Parity()
	c.Encode(block[:k], par[:c.Parity()])
	return bytes.Equal(par[:c.Parity()], block[k:])
}

// corrupt XORs nonzero random values into e distinct random positions.
func corrupt(block []byte, e int, rng *rand.Rand) {
	for _, pos := range rng.Perm(len(block))[:e] {
		block[pos] ^= byte(1 + rng.UintN(255))
	}
}

func mustNew(t testing.TB, parity int) *Code {
	t.Helper()
	c, err := New(parity)
	if err != nil {
		t.Fatalf("New(%d): %v", parity, err)
	}
	return c
}

func TestNewRange(t *testing.T) {
	for _, p := range []int{-1, 0, 129, 255, 1000} {
		if c, err := New(p); err == nil {
			t.Errorf("New(%d) = %v, nil; want an error", p, c)
		}
	}
	for _, p := range []int{1, 2, 64, 128} {
		c := mustNew(t, p)
		if c.Parity() != p {
			t.Errorf("New(%d).Parity() = %d", p, c.Parity())
		}
	}
}

// TestFieldTables checks the GF(2^8) tables against bitwise (Russian
// peasant) multiplication modulo 0x11d, and that 2 is primitive.
func TestFieldTables(t *testing.T) {
	slow := func(x, y byte) byte {
		var r byte
		for y != 0 {
			if y&1 != 0 {
				r ^= x
			}
			hi := x & 0x80
			x <<= 1
			if hi != 0 {
				x ^= 0x1d
			}
			y >>= 1
		}
		return r
	}
	for x := 0; x < 256; x++ {
		for y := 0; y < 256; y++ {
			if got, want := field.mul[x][y], slow(byte(x), byte(y)); got != want {
				t.Fatalf("mul[%#x][%#x] = %#x, want %#x", x, y, got, want)
			}
		}
	}
	seen := map[byte]bool{}
	for i := 0; i < 255; i++ {
		seen[field.exp[i]] = true
	}
	if len(seen) != 255 || seen[0] {
		t.Fatalf("2 generates %d distinct nonzero elements, want 255", len(seen))
	}
	for x := 1; x < 256; x++ {
		if field.mul[x][field.inv(byte(x))] != 1 {
			t.Fatalf("inv(%#x) wrong", x)
		}
	}
}

// TestGeneratorKnownAnswer checks the generator polynomials worked out by
// hand. In GF(2^8) with 0x11d and a = 2: a^0=1, a^1=2, a^2=4, a^3=8, a^5=32.
//
// parity 2: (x+1)(x+2) = x^2 + (1^2)x + 1*2 = x^2 + 3x + 2.
//
// parity 4: (x+4)(x+8) = x^2 + 12x + 32 (4*8 = a^5 = 32), and
// (x^2+3x+2)(x^2+12x+32):
//
//	x^3: 12 ^ 3                  = 15
//	x^2: 32 ^ 3*12 ^ 2           = 32 ^ (24^12=20) ^ 2 = 54
//	x^1: 3*32 ^ 2*12             = (64^32=96) ^ 24     = 120
//	x^0: 2*32                    = 64
//
// so g = x^4 + 15x^3 + 54x^2 + 120x + 64 (01 0f 36 78 40).
func TestGeneratorKnownAnswer(t *testing.T) {
	for _, tc := range []struct {
		parity int
		want   []byte
	}{
		{1, []byte{1, 1}},
		{2, []byte{1, 3, 2}},
		{4, []byte{0x01, 0x0f, 0x36, 0x78, 0x40}},
	} {
		c := mustNew(t, tc.parity)
		if got := c.gen[:tc.parity+1]; !bytes.Equal(got, tc.want) {
			t.Errorf("parity %d: generator % x, want % x", tc.parity, got, tc.want)
		}
	}
}

// TestEncodeKnownAnswer: with parity 2, the data byte 1 is the polynomial x^2
// after the shift, and x^2 mod (x^2+3x+2) = 3x+2, so the block is 01 03 02.
// Check: c(1) = 1^3^2 = 0 and c(2) = 4 ^ 3*2 ^ 2 = 4^6^2 = 0.
func TestEncodeKnownAnswer(t *testing.T) {
	c := mustNew(t, 2)
	par := make([]byte, 2)
	c.Encode([]byte{1}, par)
	if !bytes.Equal(par, []byte{3, 2}) {
		t.Fatalf("Encode(01) parity % x, want 03 02", par)
	}
	// Linearity: data 01 00 is x * (01), whose remainder is x*(3x+2) mod g
	// = 3x^2+2x mod g = 3(3x+2) + 2x = (5^2)x ^ 6 = 7x + 6.
	c.Encode([]byte{1, 0}, par)
	if !bytes.Equal(par, []byte{7, 6}) {
		t.Fatalf("Encode(01 00) parity % x, want 07 06", par)
	}
}

// TestCodewordRoots checks every encoded block has a^0..a^(p-1) as roots,
// independently of the decoder's syndrome code.
func TestCodewordRoots(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, p := range []int{1, 2, 3, 8, 32, 128} {
		c := mustNew(t, p)
		for _, n := range []int{p + 1, p + 7, 255} {
			if n > 255 {
				continue
			}
			block := encodeBlock(t, c, n, rng)
			for i := 0; i < p; i++ {
				x := field.exp[i]
				var v byte
				for _, b := range block {
					v = field.mul[v][x] ^ b
				}
				if v != 0 {
					t.Fatalf("parity %d n %d: block(a^%d) = %#x, want 0", p, n, i, v)
				}
			}
		}
	}
}

func TestDecodeClean(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, p := range []int{1, 2, 4, 8, 16, 128} {
		c := mustNew(t, p)
		for _, n := range []int{p + 1, (p + 256) / 2, 255} {
			block := encodeBlock(t, c, n, rng)
			want := bytes.Clone(block)
			got, err := c.Decode(block)
			if err != nil || got != 0 || !bytes.Equal(block, want) {
				t.Fatalf("parity %d n %d: clean Decode = %d, %v (changed %v)", p, n, got, err, !bytes.Equal(block, want))
			}
		}
	}
}

// TestDecodeCorrects corrupts up to t = parity/2 random positions with
// random nonzero values for many random (n, parity, seed) and requires an
// exact repair.
func TestDecodeCorrects(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	iters := 6000
	if testing.Short() {
		iters = 2000
	}
	for it := 0; it < iters; it++ {
		p := 1 + rng.IntN(maxParity)
		if it%2 == 0 {
			p = 1 + rng.IntN(16) // the sizes that matter most in practice
		}
		c := mustNew(t, p)
		n := p + 1 + rng.IntN(255-p)
		switch it % 7 { // the edges of the shortened code
		case 0:
			n = p + 1
		case 1:
			n = 255
		}
		tc := p / 2
		e := rng.IntN(tc + 1)
		if it%3 == 0 {
			e = tc
		}
		if e > n {
			e = n
		}
		orig := encodeBlock(t, c, n, rng)
		block := bytes.Clone(orig)
		corrupt(block, e, rng)
		got, err := c.Decode(block)
		if err != nil || got != e || !bytes.Equal(block, orig) {
			t.Fatalf("iter %d parity %d n %d errors %d: Decode = %d, %v; restored %v",
				it, p, n, e, got, err, bytes.Equal(block, orig))
		}
	}
}

// TestDecodeBurstAtEdges puts t errors at the first and last bytes of the
// block, where off-by-one mistakes in the position mapping would show.
func TestDecodeBurstAtEdges(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, p := range []int{2, 4, 8, 32, 128} {
		c := mustNew(t, p)
		tc := p / 2
		for _, n := range []int{p + 1, p + 2, 255} {
			for _, head := range []bool{true, false} {
				orig := encodeBlock(t, c, n, rng)
				block := bytes.Clone(orig)
				for i := 0; i < tc; i++ {
					pos := i
					if !head {
						pos = n - 1 - i
					}
					block[pos] ^= byte(1 + rng.UintN(255))
				}
				got, err := c.Decode(block)
				if err != nil || got != tc || !bytes.Equal(block, orig) {
					t.Fatalf("parity %d n %d head %v: Decode = %d, %v", p, n, head, got, err)
				}
			}
		}
	}
}

// TestDecodeBeyondCapacity corrupts t+1..parity positions. Decode must
// either report ErrUncorrectable and leave the block alone, or return a
// valid codeword (a miscorrection, which Reed-Solomon cannot exclude). The
// miscorrection rate is logged.
func TestDecodeBeyondCapacity(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	iters := 2000
	if testing.Short() {
		iters = 500
	}
	for _, p := range []int{1, 2, 4, 8, 16, 32} {
		c := mustNew(t, p)
		for _, n := range []int{p + 1, 64, 255} {
			if n <= p {
				continue
			}
			var miss, caught, trials int
			for it := 0; it < iters; it++ {
				e := p/2 + 1 + rng.IntN(p-p/2)
				if e > n {
					e = n
				}
				orig := encodeBlock(t, c, n, rng)
				block := bytes.Clone(orig)
				corrupt(block, e, rng)
				bad := bytes.Clone(block)
				got, err := c.Decode(block)
				trials++
				switch {
				case errors.Is(err, ErrUncorrectable):
					caught++
					if !bytes.Equal(block, bad) {
						t.Fatalf("parity %d n %d errors %d: ErrUncorrectable but block changed", p, n, e)
					}
				case err != nil:
					t.Fatalf("parity %d n %d: unexpected error %v", p, n, err)
				default:
					if !isCodeword(c, block) {
						t.Fatalf("parity %d n %d errors %d: Decode reported %d corrections but the result is not a codeword", p, n, e, got)
					}
					if got < 1 || got > p/2 {
						t.Fatalf("parity %d n %d: corrected = %d outside 1..%d", p, n, got, p/2)
					}
					if bytes.Equal(block, orig) {
						// Fine only if the errors were not more than t after all:
						// impossible here, e > t distinct nonzero errors.
						t.Fatalf("parity %d n %d: %d errors reported fixed to the original", p, n, e)
					}
					miss++
				}
			}
			t.Logf("parity %3d n %3d, %d..%d errors: miscorrected %5.2f%%, detected %5.2f%% of %d",
				p, n, p/2+1, p, 100*float64(miss)/float64(trials), 100*float64(caught)/float64(trials), trials)
		}
	}
}

func TestDecodeLength(t *testing.T) {
	c := mustNew(t, 4)
	for _, n := range []int{0, 1, 4, 256, 300} {
		block := make([]byte, n)
		if _, err := c.Decode(block); err == nil || errors.Is(err, ErrUncorrectable) {
			t.Errorf("Decode of %d bytes: err %v, want a length error", n, err)
		}
	}
}

func TestEncodePanics(t *testing.T) {
	c := mustNew(t, 4)
	for _, tc := range []struct {
		name         string
		data, parity int
	}{
		{"short parity", 10, 3},
		{"long parity", 10, 5},
		{"too much data", 252, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Encode(%d data, %d parity) did not panic", tc.data, tc.parity)
				}
			}()
			c.Encode(make([]byte, tc.data), make([]byte, tc.parity))
		})
	}
	// The largest legal block does not panic.
	c.Encode(make([]byte, 251), make([]byte, 4))
}

func TestZeroAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, p := range []int{4, 8, 128} {
		c := mustNew(t, p)
		orig := encodeBlock(t, c, 255, rng)
		bad := bytes.Clone(orig)
		corrupt(bad, p/2, rng)
		block := make([]byte, 255)
		if a := testing.AllocsPerRun(100, func() { c.Encode(orig[:255-p], block[255-p:]) }); a != 0 {
			t.Errorf("parity %d: Encode allocates %v per call", p, a)
		}
		if a := testing.AllocsPerRun(100, func() {
			copy(block, orig)
			if _, err := c.Decode(block); err != nil {
				panic(err)
			}
		}); a != 0 {
			t.Errorf("parity %d: clean Decode allocates %v per call", p, a)
		}
		if a := testing.AllocsPerRun(100, func() {
			copy(block, bad)
			if _, err := c.Decode(block); err != nil {
				panic(err)
			}
		}); a != 0 {
			t.Errorf("parity %d: Decode with %d errors allocates %v per call", p, p/2, a)
		}
		if a := testing.AllocsPerRun(100, func() {
			copy(block, orig)
			corruptFixed(block, p)
			c.Decode(block)
		}); a != 0 {
			t.Errorf("parity %d: uncorrectable Decode allocates %v per call", p, a)
		}
	}
}

// corruptFixed flips n leading bytes without allocating.
func corruptFixed(block []byte, n int) {
	for i := 0; i < n; i++ {
		block[i] ^= byte(i + 1)
	}
}

// TestConcurrent shares one Code between goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	c := mustNew(t, 8)
	done := make(chan error)
	for g := 0; g < 4; g++ {
		go func(seed uint64) {
			rng := rand.New(rand.NewPCG(seed, 13))
			for i := 0; i < 200; i++ {
				orig := encodeBlock(t, c, 20+rng.IntN(236), rng)
				block := bytes.Clone(orig)
				corrupt(block, rng.IntN(5), rng)
				if _, err := c.Decode(block); err != nil || !bytes.Equal(block, orig) {
					done <- err
					return
				}
			}
			done <- nil
		}(uint64(g))
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// FuzzDecode encodes data with a parity chosen by p, applies the
// (position, value) pairs in errs, and decodes. Decode must never panic; a
// success must be a valid codeword; with at most t distinct corrupted bytes
// it must restore the original exactly. With no errs, data itself is
// decoded as a raw block, which exercises arbitrary inputs and lengths.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("hello, serial line"), uint8(3), []byte{0, 1, 5, 0x80})
	f.Add([]byte{1}, uint8(1), []byte{})
	f.Add(bytes.Repeat([]byte{0xaa}, 251), uint8(3), []byte{250, 1, 0, 2})
	f.Add([]byte{0, 0, 0, 0, 0, 1}, uint8(3), []byte(nil))
	f.Add(bytes.Repeat([]byte{7}, 200), uint8(15), []byte{1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9})
	f.Fuzz(func(t *testing.T, data []byte, p uint8, errs []byte) {
		parity := 1 + int(p)%maxParity
		c, err := New(parity)
		if err != nil {
			t.Fatal(err)
		}
		if len(errs) == 0 {
			block := bytes.Clone(data)
			got, err := c.Decode(block)
			if err == nil && (!isCodeword(c, block) || got > parity/2) {
				t.Fatalf("raw block: Decode = %d, nil but result is not a codeword", got)
			}
			if err != nil && !bytes.Equal(block, data) {
				t.Fatalf("raw block: Decode failed (%v) but changed the block", err)
			}
			return
		}
		if len(data) == 0 {
			return
		}
		if len(data)+parity > maxBlock {
			data = data[:maxBlock-parity]
		}
		n := len(data) + parity
		orig := make([]byte, n)
		copy(orig, data)
		c.Encode(orig[:len(data)], orig[len(data):])
		block := bytes.Clone(orig)
		for i := 0; i+1 < len(errs); i += 2 {
			block[int(errs[i])%n] ^= errs[i+1]
		}
		wrong := 0
		for i := range block {
			if block[i] != orig[i] {
				wrong++
			}
		}
		bad := bytes.Clone(block)
		got, err := c.Decode(block)
		switch {
		case wrong <= parity/2:
			if err != nil || got != wrong || !bytes.Equal(block, orig) {
				t.Fatalf("%d errors with parity %d: Decode = %d, %v", wrong, parity, got, err)
			}
		case err == nil:
			if !isCodeword(c, block) {
				t.Fatalf("%d errors: success but not a codeword", wrong)
			}
		default:
			if !errors.Is(err, ErrUncorrectable) || !bytes.Equal(block, bad) {
				t.Fatalf("%d errors: Decode = %v, block changed %v", wrong, err, !bytes.Equal(block, bad))
			}
		}
	})
}

// TestRootOutsideBlock builds a received block of n = 10 whose syndromes are
// those of a single error at power e = 200 (block index n-1-200, outside the
// shortened block): it adds the two-error pattern on the parity bytes (powers
// 0 and 1) that has the same syndromes. The error locator then has degree 1
// but its root lies outside the block, so Decode must refuse. The same
// syndromes in a full 255-byte block are a correctable single error at
// index 54, which checks that the pattern is what the comment says.
func TestRootOutsideBlock(t *testing.T) {
	c := mustNew(t, 2)
	const e = 200
	y := byte(0x5a)
	a := field.exp[1]
	ye := field.mul[y][field.exp[e]]
	// v0 + v1 = y and v0 + a*v1 = y*a^e  =>  v1 = (y + y*a^e)/(1 + a).
	v1 := field.div(y^ye, 1^a)
	v0 := y ^ v1
	for _, n := range []int{10, 255} {
		rng := rand.New(rand.NewPCG(14, uint64(n)))
		orig := encodeBlock(t, c, n, rng)
		block := bytes.Clone(orig)
		block[n-1] ^= v0
		block[n-2] ^= v1
		bad := bytes.Clone(block)
		got, err := c.Decode(block)
		if n < 255 {
			if !errors.Is(err, ErrUncorrectable) || !bytes.Equal(block, bad) {
				t.Fatalf("n %d: Decode = %d, %v; want ErrUncorrectable, block unchanged", n, got, err)
			}
			continue
		}
		want := bytes.Clone(bad)
		want[n-1-e] ^= y
		if err != nil || got != 1 || !bytes.Equal(block, want) {
			t.Fatalf("n 255: Decode = %d, %v; want one correction at index %d", got, err, n-1-e)
		}
	}
}

// TestDecodeMatchesBruteForce checks Decode against an independent
// bounded-distance decoder for parity 4 (t = 2): try every single position
// and every pair of positions, solve for the error values from S0 and S1 and
// keep the solution that also matches S2 and S3. With minimum distance 5 at
// most one pattern of weight <= 2 fits. Decode must succeed exactly when the
// brute force finds one and make the same repair, and refuse otherwise; this
// covers locators whose roots are missing or lie outside the block.
func TestDecodeMatchesBruteForce(t *testing.T) {
	c := mustNew(t, 4)
	rng := rand.New(rand.NewPCG(15, 16))
	iters := 300
	if testing.Short() {
		iters = 60
	}
	var fixed, refused int
	for _, n := range []int{5, 6, 12, 40, 255} {
		for it := 0; it < iters; it++ {
			orig := encodeBlock(t, c, n, rng)
			block := bytes.Clone(orig)
			switch it % 4 {
			case 3: // uniformly random block
				for i := range block {
					block[i] = byte(rng.UintN(256))
				}
			default:
				corrupt(block, min(n, rng.IntN(5)), rng)
			}
			want, ok := bruteForce2(block)
			got, err := c.Decode(block)
			switch {
			case ok && (err != nil || !bytes.Equal(block, want)):
				t.Fatalf("n %d: brute force repairs the block, Decode = %d, %v (same %v)", n, got, err, bytes.Equal(block, want))
			case !ok && !errors.Is(err, ErrUncorrectable):
				t.Fatalf("n %d: no codeword within 2, but Decode = %d, %v", n, got, err)
			case ok:
				fixed++
			default:
				refused++
			}
		}
	}
	t.Logf("agreed with brute force: %d repaired, %d refused", fixed, refused)
}

// bruteForce2 returns the codeword within distance 2 of block for parity 4,
// if there is one, without using any of the decoder's code.
func bruteForce2(block []byte) ([]byte, bool) {
	n := len(block)
	var s [4]byte
	for i := range s {
		for _, b := range block {
			s[i] = field.mul[s[i]][field.exp[i]] ^ b
		}
	}
	if s == [4]byte{} {
		return bytes.Clone(block), true
	}
	pow := func(x byte, k int) byte {
		r := byte(1)
		for ; k > 0; k-- {
			r = field.mul[r][x]
		}
		return r
	}
	fits := func(xs, ys []byte) bool {
		for k := 0; k < 4; k++ {
			var v byte
			for j := range xs {
				v ^= field.mul[ys[j]][pow(xs[j], k)]
			}
			if v != s[k] {
				return false
			}
		}
		return true
	}
	fix := func(pos []int, ys []byte) []byte {
		w := bytes.Clone(block)
		for j, p := range pos {
			w[p] ^= ys[j]
		}
		return w
	}
	for i := 0; i < n; i++ {
		xi := field.exp[n-1-i]
		if fits([]byte{xi}, []byte{s[0]}) {
			return fix([]int{i}, []byte{s[0]}), true
		}
	}
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			x1, x2 := field.exp[n-1-i], field.exp[n-1-j]
			y2 := field.div(s[1]^field.mul[s[0]][x1], x1^x2)
			y1 := s[0] ^ y2
			if y1 != 0 && y2 != 0 && fits([]byte{x1, x2}, []byte{y1, y2}) {
				return fix([]int{i, j}, []byte{y1, y2}), true
			}
		}
	}
	return nil, false
}

// TestEncodeMatchesReference compares the word-packed encoder with a plain
// byte-wise shift register for every parity and several data lengths.
func TestEncodeMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	for p := 1; p <= maxParity; p++ {
		c := mustNew(t, p)
		for _, k := range []int{0, 1, 2, 9, 255 - p} {
			data := make([]byte, k)
			for i := range data {
				data[i] = byte(rng.UintN(256))
			}
			got := make([]byte, p)
			c.Encode(data, got)
			want := make([]byte, p)
			for _, d := range data {
				fb := d ^ want[0]
				copy(want, want[1:])
				want[p-1] = 0
				for j := range want {
					want[j] ^= field.mul[fb][c.gen[j+1]]
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("parity %d, %d data bytes: parity % x, want % x", p, k, got, want)
			}
		}
	}
}
