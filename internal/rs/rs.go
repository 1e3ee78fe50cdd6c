// Package rs is a Reed-Solomon codec over GF(2^8) for forward error correction
// of frames on noisy serial lines, where bit errors show up as byte
// substitutions at unknown positions.
//
// The code is the usual one: field polynomial x^8+x^4+x^3+x^2+1 (0x11d),
// primitive element 2 (written a below), first consecutive root a^0, so a code
// with p parity bytes has the generator
//
//	g(x) = (x - a^0)(x - a^1)...(x - a^(p-1)).
//
// It is systematic and shortened: a block of n bytes (p < n <= 255) is the
// data (n-p bytes) followed by p parity bytes, block[0] being the coefficient
// of x^(n-1). Decode corrects up to p/2 (rounded down) wrong bytes anywhere in
// the block and reports ErrUncorrectable when it detects more. Beyond that
// capacity a block can also be miscorrected into another valid codeword; no
// Reed-Solomon decoder can rule that out, so frames should still carry a
// check (CRC) above this layer.
//
// Encode and Decode allocate nothing; a *Code is immutable and safe for
// concurrent use.
package rs

import (
	"errors"
	"fmt"
)

// ErrUncorrectable is returned by Decode when the block has more errors than
// the code can correct. The block is left unchanged; the caller should drop
// the frame (and let retransmission recover it) or use more parity.
var ErrUncorrectable = errors.New("rs: too many errors to correct")

// errBlockSize is returned by Decode for a block whose length is outside
// (Parity(), 255].
var errBlockSize = errors.New("rs: block length must be more than the parity and at most 255 bytes; split longer frames into blocks")

const (
	maxParity = 128
	maxBlock  = 255
	maxErrors = maxParity / 2
)

// field holds the GF(2^8) tables. They are computed once when the package is
// loaded and never written afterwards.
var field = newField()

type gfTables struct {
	exp [2 * 256]byte  // exp[i] = a^i, doubled so a sum of two logs needs no mod
	log [256]byte      // log[a^i] = i for nonzero elements; log[0] is unused
	mul [256][256]byte // mul[x][y] = x*y
}

func newField() *gfTables {
	f := new(gfTables)
	x := 1
	for i := 0; i < 255; i++ {
		f.exp[i] = byte(x)
		f.log[x] = byte(i)
		x <<= 1
		if x&0x100 != 0 {
			x ^= 0x11d
		}
	}
	for i := 255; i < len(f.exp); i++ {
		f.exp[i] = f.exp[i-255]
	}
	for x := 1; x < 256; x++ {
		for y := 1; y < 256; y++ {
			f.mul[x][y] = f.exp[int(f.log[x])+int(f.log[y])]
		}
	}
	return f
}

// inv returns 1/x for x != 0.
func (f *gfTables) inv(x byte) byte { return f.exp[255-int(f.log[x])] }

// div returns x/y for y != 0.
func (f *gfTables) div(x, y byte) byte {
	if x == 0 {
		return 0
	}
	return f.exp[int(f.log[x])+255-int(f.log[y])]
}

// Code is a Reed-Solomon code with a fixed number of parity bytes. It is
// immutable after New and safe for concurrent use.
type Code struct {
	parity int
	// gen holds the generator polynomial, highest degree first:
	// g(x) = gen[0] x^p + gen[1] x^(p-1) + ... + gen[p], gen[0] = 1.
	gen [maxParity + 1]byte
	// words is the number of uint64 words that hold the p-byte remainder
	// register during encoding, (p+7)/8.
	words int
	// tab[fb*words+i] is word i of fb*(gen[1], ..., gen[p]) packed
	// big-endian, byte j of the register in word j/8 (bits 63-8*(j%8) and
	// down), the unused low bytes of the last word zero.
	tab []uint64
}

// New returns a code with parity parity bytes per block, which corrects up to
// parity/2 wrong bytes per block. parity must be between 1 and 128.
func New(parity int) (*Code, error) {
	if parity < 1 || parity > maxParity {
		return nil, fmt.Errorf("rs: parity %d out of range: use 1 to %d bytes per block", parity, maxParity)
	}
	c := &Code{parity: parity}
	// Multiply out (x - a^0)...(x - a^(p-1)), lowest degree first in g.
	var g [maxParity + 1]byte
	g[0] = 1
	for i := 0; i < parity; i++ {
		root := field.exp[i]
		// g = g*(x + root)
		for j := i + 1; j > 0; j-- {
			g[j] = g[j-1] ^ field.mul[g[j]][root]
		}
		g[0] = field.mul[g[0]][root]
	}
	for j := 0; j <= parity; j++ {
		c.gen[j] = g[parity-j]
	}
	c.words = (parity + 7) / 8
	c.tab = make([]uint64, 256*c.words)
	for fb := 1; fb < 256; fb++ {
		for j := 0; j < parity; j++ {
			v := uint64(field.mul[fb][c.gen[j+1]])
			c.tab[fb*c.words+j/8] |= v << (56 - 8*(j%8))
		}
	}
	return c, nil
}

// Parity returns the number of parity bytes per block.
func (c *Code) Parity() int { return c.parity }

// Encode computes the parity of data and writes it to parity, so that
// data followed by parity is a codeword. len(parity) must equal c.Parity()
// and len(data)+c.Parity() must be at most 255; Encode panics otherwise.
// data may be empty (the parity is then all zero). data and parity must not
// overlap.
func (c *Code) Encode(data, parity []byte) {
	p := c.parity
	if len(parity) != p {
		panic(fmt.Sprintf("rs: Encode: parity buffer is %d bytes, want %d", len(parity), p))
	}
	if len(data)+p > maxBlock {
		panic(fmt.Sprintf("rs: Encode: %d data + %d parity bytes exceed the 255-byte block", len(data), p))
	}
	c.remainder(data, parity)
}

// remainder writes data(x)*x^p mod g(x) to out (p bytes, out[0] the
// coefficient of x^(p-1)). The division is the usual shift register, kept in
// uint64 words so that each data byte costs one table lookup per 8 parity
// bytes and the register never goes through memory.
func (c *Code) remainder(data, out []byte) {
	p, nw := c.parity, c.words
	if nw == 1 {
		tab := c.tab[:256]
		var r uint64
		for _, d := range data {
			r = r<<8 ^ tab[d^byte(r>>56)]
		}
		for j := range out[:p] {
			out[j] = byte(r >> (56 - 8*j))
		}
		return
	}
	var w [maxParity / 8]uint64
	for _, d := range data {
		fb := int(d ^ byte(w[0]>>56))
		t := c.tab[fb*nw : fb*nw+nw]
		for i := 0; i < nw-1; i++ {
			w[i] = (w[i]<<8 | w[i+1]>>56) ^ t[i]
		}
		w[nw-1] = w[nw-1]<<8 ^ t[nw-1]
	}
	for j := range out[:p] {
		out[j] = byte(w[j/8] >> (56 - 8*(j%8)))
	}
}

// Decode checks block (data followed by Parity() parity bytes, with
// Parity() < len(block) <= 255) and corrects up to Parity()/2 wrong bytes in
// place. It returns the number of bytes it corrected (0 for a clean block).
// With more errors it returns ErrUncorrectable when it can tell, leaving
// block unchanged; it may instead, like any Reed-Solomon decoder, turn block
// into a different valid codeword and report success. A block of the wrong
// length gives a non-nil error that is not ErrUncorrectable.
func (c *Code) Decode(block []byte) (corrected int, err error) {
	p := c.parity
	n := len(block)
	if n <= p || n > maxBlock {
		return 0, errBlockSize
	}
	f := field

	// The block is c(x) = data(x)*x^p + parity(x). Its remainder mod g is
	// R = (data(x)*x^p mod g) + parity(x), zero exactly for a codeword, and
	// since g(a^i) = 0 the syndromes are S_i = c(a^i) = R(a^i): p*p steps
	// instead of n*p.
	k := n - p
	var rem [maxParity]byte
	c.remainder(block[:k], rem[:p])
	var nz byte
	for j, b := range block[k:] {
		rem[j] ^= b
		nz |= rem[j]
	}
	if nz == 0 {
		return 0, nil
	}
	var s [maxParity]byte
	for i := 0; i < p; i++ {
		row := &f.mul[f.exp[i]]
		var acc byte
		for _, r := range rem[:p] {
			acc = row[acc] ^ r
		}
		s[i] = acc
	}

	// Berlekamp-Massey: the shortest LFSR lambda (lambda[0] = 1) generating
	// the syndromes.
	var lambda, prev, tmp [maxParity + 1]byte
	lambda[0], prev[0] = 1, 1
	l, m := 0, 1
	var bd byte = 1 // discrepancy when prev was last lambda
	for r := 0; r < p; r++ {
		d := s[r]
		for i := 1; i <= l; i++ {
			d ^= f.mul[lambda[i]][s[r-i]]
		}
		if d == 0 {
			m++
			continue
		}
		coef := f.div(d, bd)
		row := &f.mul[coef]
		if 2*l <= r {
			tmp = lambda
			for i := 0; i+m <= p; i++ {
				lambda[i+m] ^= row[prev[i]]
			}
			l = r + 1 - l
			prev = tmp
			bd = d
			m = 1
		} else {
			for i := 0; i+m <= p; i++ {
				lambda[i+m] ^= row[prev[i]]
			}
			m++
		}
	}
	if 2*l > p {
		return 0, ErrUncorrectable
	}
	deg := l
	for deg > 0 && lambda[deg] == 0 {
		deg--
	}
	if deg != l {
		return 0, ErrUncorrectable
	}

	// Chien search: the roots of lambda are X^-1 = a^-e for an error at
	// power e, i.e. at block index n-1-e. Only e < n lies in the block.
	var powers [maxErrors]int // e of each error found
	found := 0
	if l == 1 {
		// lambda = 1 + lambda[1] x has the one root 1/lambda[1]: X = lambda[1].
		if e := int(f.log[lambda[1]]); e < n {
			powers[0] = e
			found = 1
		}
	} else {
		// reg[k] = lambda[k] * a^(-k*e); step[k] multiplies by a^-k.
		var reg [maxErrors + 1]byte
		var step [maxErrors + 1]*[256]byte
		for k := 1; k <= l; k++ {
			reg[k] = lambda[k]
			step[k] = &f.mul[f.exp[255-k]]
		}
		for e := 0; e < n && found < l; e++ {
			sum := lambda[0]
			for k := 1; k <= l; k++ {
				sum ^= reg[k]
				reg[k] = step[k][reg[k]]
			}
			if sum == 0 {
				powers[found] = e
				found++
			}
		}
	}
	if found != l {
		return 0, ErrUncorrectable
	}

	// Forney (first root a^0): Y = X * omega(X^-1) / lambda'(X^-1), with
	// omega = S*lambda mod x^p, whose degree is below l.
	var omega [maxErrors]byte
	for i := 0; i < l; i++ {
		var acc byte
		for j := 0; j <= i; j++ {
			acc ^= f.mul[s[i-j]][lambda[j]]
		}
		omega[i] = acc
	}
	var values [maxErrors]byte
	for j := 0; j < l; j++ {
		e := powers[j]
		xinv := f.exp[255-e%255]
		var om byte
		for i := l - 1; i >= 0; i-- {
			om = f.mul[om][xinv] ^ omega[i]
		}
		// lambda'(x) = sum of lambda[k] x^(k-1) over odd k (characteristic 2).
		var dl byte
		x2 := f.mul[xinv][xinv]
		for k := l - (1 - l&1); k >= 1; k -= 2 {
			dl = f.mul[dl][x2] ^ lambda[k]
		}
		if dl == 0 {
			return 0, ErrUncorrectable
		}
		v := f.mul[f.div(om, dl)][f.exp[e]]
		if v == 0 {
			return 0, ErrUncorrectable
		}
		values[j] = v
	}
	for j := 0; j < l; j++ {
		block[n-1-powers[j]] ^= values[j]
	}
	return l, nil
}
