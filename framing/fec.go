package framing

import (
	"errors"
	"sync"

	"github.com/p2plink/p2plink/internal/rs"
)

// Forward error correction (SPEC.md, "Protected frames"). A protected frame
// carries the same body as a plain one, cut into Reed-Solomon blocks of at
// most FECBlock bytes, each with 2·t parity bytes that repair up to t
// damaged bytes in the block. It costs 2·t bytes per block and a marker byte,
// and saves resending a whole frame for a flipped bit.
const (
	// FECBlock is the longest Reed-Solomon block, data and parity.
	FECBlock = 255
	// MaxCorrection is the most damaged bytes per block a frame can repair.
	MaxCorrection = 16
	// fecVersion marks a protected frame in the version bits of its first
	// byte.
	fecVersion = 7
)

// ErrUncorrectable reports a protected frame with more damage than its
// parity can repair. Like ErrCheck, it means bits were flipped on the line.
var ErrUncorrectable = errors.New("framing: protected frame too damaged to repair")

var (
	codesOnce sync.Once
	codes     [MaxCorrection + 1]*rs.Code
)

// code returns the Reed-Solomon code that repairs t bytes per block.
func code(t int) *rs.Code {
	codesOnce.Do(func() {
		for i := 1; i <= MaxCorrection; i++ {
			c, err := rs.New(2 * i)
			if err != nil {
				panic(err) // cannot happen: 2..32 parity bytes are valid
			}
			codes[i] = c
		}
	})
	return codes[t]
}

// protectedLen is the body length of a protected frame whose plain body is
// l bytes: the marker, the data, and 2·t parity bytes per block.
func protectedLen(l, t int) int {
	k := FECBlock - 2*t
	return 1 + l + (l+k-1)/k*2*t
}

// EncodedLenFEC returns the most bytes EncodeFEC writes for a payload of n
// bytes repairing t bytes per block, closing delimiter included. With t 0 it
// is EncodedLen(n).
func EncodedLenFEC(n, t int) int {
	if t <= 0 {
		return EncodedLen(n)
	}
	body := protectedLen(HeaderLen+n+CheckLen, t)
	return body + body/254 + 2
}

// EncodeFEC writes a protected frame carrying payload with type t, whose
// blocks repair up to corr damaged bytes each (1..MaxCorrection; 0 writes a
// plain frame, as Encode). dst must hold EncodedLenFEC(len(payload), corr)
// bytes. It allocates nothing.
func EncodeFEC(dst []byte, t Type, payload []byte, corr int) (int, error) {
	if corr == 0 {
		return Encode(dst, t, payload)
	}
	if corr < 0 || corr > MaxCorrection {
		return 0, errors.New("framing: correction must be 0 to 16 bytes per block")
	}
	if len(payload) > MaxPayload {
		return 0, ErrTooLong
	}
	if t > MaxType {
		return 0, ErrBadType
	}
	if len(dst) < EncodedLenFEC(len(payload), corr) {
		return 0, ErrShortDst
	}
	var hdr [HeaderLen]byte
	var chk [CheckLen]byte
	header(&hdr, &chk, t, payload)
	// The body is hdr | payload | chk, read in blocks of k bytes.
	pieces := [3][]byte{hdr[:], payload, chk[:]}
	c := code(corr)
	k := FECBlock - 2*corr
	var block [FECBlock]byte
	var parity [2 * MaxCorrection]byte
	e := encoder{dst: dst, code: 0, out: 1}
	e.add([]byte{fecVersion<<5 | byte(corr)})
	pi, off := 0, 0
	for pi < len(pieces) {
		n := 0
		for n < k && pi < len(pieces) {
			m := copy(block[n:k], pieces[pi][off:])
			n += m
			off += m
			if off == len(pieces[pi]) {
				pi, off = pi+1, 0
			}
		}
		c.Encode(block[:n], parity[:2*corr])
		e.add(block[:n])
		e.add(parity[:2*corr])
	}
	e.dst[e.code] = byte(e.out - e.code)
	e.dst[e.out] = 0
	return e.out + 1, nil
}

// unprotect repairs the blocks of a protected body in place and returns
// the plain body it carried (aliasing body) and the bytes repaired.
func unprotect(body []byte) ([]byte, int, error) {
	corr := int(body[0] & MaxType)
	if corr < 1 || corr > MaxCorrection {
		return nil, 0, ErrMalformed
	}
	p := 2 * corr
	rest := body[1:]
	if r := len(rest) % FECBlock; r != 0 && r <= p {
		return nil, 0, ErrMalformed // a block with no data: bytes were lost
	}
	c := code(corr)
	fixed, out := 0, 0
	for len(rest) > 0 {
		b := rest[:min(FECBlock, len(rest))]
		rest = rest[len(b):]
		n, err := c.Decode(b)
		if err != nil {
			return nil, fixed, ErrUncorrectable
		}
		fixed += n
		out += copy(body[out:], b[:len(b)-p])
	}
	return body[:out], fixed, nil
}
