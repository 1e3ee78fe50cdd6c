// Package framing is p2plink's codec for frames on byte-stream links (serial
// lines, and any pipe of bytes): it turns frames into bytes and bytes back into
// frames, finding frame boundaries again after noise, dropped bytes or a
// receiver that started listening mid-frame.
//
// A frame on the wire is COBS-encoded (Consistent Overhead Byte Stuffing), so
// the byte 0x00 never occurs inside it and marks its end:
//
//	COBS( hdr | len | payload | crc ) 0x00
//
//	hdr      1 byte: protocol version (high 3 bits) and frame type (low 5 bits)
//	len      2 bytes, big-endian: length of payload
//	payload  0..MaxPayload bytes
//	crc      4 bytes, little-endian: CRC-32C (Castagnoli) of hdr, len, payload
//
// A receiver that sees garbage loses at most the frame the garbage lands in:
// the next 0x00 ends it, the check rejects it, and decoding starts afresh. A
// sender should write one lone 0x00 before its first frame after the line was
// idle, so that noise picked up while idle is cut off at once; the decoder
// skips empty frames silently. SPEC.md beside this file is the normative text.
//
// The codec does no I/O and allocates nothing per frame: Encode writes into a
// buffer the caller owns and Decoder reuses one buffer for every frame.
package framing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Version is the framing version this package writes and accepts.
const Version = 1

// Sizes of the frame's parts.
const (
	HeaderLen  = 3     // hdr byte and length
	CheckLen   = 4     // CRC-32C
	MaxPayload = 65535 // largest payload the length field can carry
	MaxType    = 31    // largest frame type
)

// Type tells the receiver what a frame carries. Its meaning belongs to the
// layer above; framing only carries it.
type Type uint8

// Errors for frames the decoder dropped. Each is returned once per dropped
// frame, so a driver can count them; decoding goes on after any of them.
var (
	ErrCheck     = errors.New("framing: check failed (frame damaged on the line)")
	ErrTooLong   = errors.New("framing: frame longer than the maximum payload")
	ErrMalformed = errors.New("framing: malformed frame")
	ErrVersion   = errors.New("framing: frame of another framing version")
	ErrBadType   = errors.New("framing: frame type out of range")
	ErrShortDst  = errors.New("framing: destination buffer too small")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// EncodedLen returns the most bytes Encode writes for a payload of n bytes,
// including the closing delimiter.
func EncodedLen(n int) int {
	body := HeaderLen + n + CheckLen
	return body + body/254 + 2
}

// Overhead is EncodedLen(n) - n: the bytes the framing adds to an n-byte
// payload at most.
func Overhead(n int) int { return EncodedLen(n) - n }

// Encode writes the frame carrying payload with type t to dst and returns the
// number of bytes written, closing delimiter included. dst must hold at least
// EncodedLen(len(payload)) bytes. It allocates nothing.
func Encode(dst []byte, t Type, payload []byte) (int, error) {
	if len(payload) > MaxPayload {
		return 0, ErrTooLong
	}
	if t > MaxType {
		return 0, ErrBadType
	}
	if len(dst) < EncodedLen(len(payload)) {
		return 0, ErrShortDst
	}
	var hdr [HeaderLen]byte
	var chk [CheckLen]byte
	header(&hdr, &chk, t, payload)

	e := encoder{dst: dst, code: 0, out: 1}
	e.add(hdr[:])
	e.add(payload)
	e.add(chk[:])
	e.dst[e.code] = byte(e.out - e.code)
	e.dst[e.out] = 0
	return e.out + 1, nil
}

// header fills in a plain body's header and check.
func header(hdr *[HeaderLen]byte, chk *[CheckLen]byte, t Type, payload []byte) {
	hdr[0] = Version<<5 | byte(t)
	binary.BigEndian.PutUint16(hdr[1:], uint16(len(payload)))
	crc := crcBytes(0, hdr[:])
	crc = crc32.Update(crc, castagnoli, payload)
	binary.LittleEndian.PutUint32(chk[:], crc)
}

// crcBytes extends a CRC-32C over a few bytes without letting them escape
// to the heap (crc32.Update would).
func crcBytes(crc uint32, p []byte) uint32 {
	crc = ^crc
	for _, b := range p {
		crc = castagnoli[byte(crc)^b] ^ crc>>8
	}
	return ^crc
}

// encoder writes COBS from several input pieces as if they were one.
type encoder struct {
	dst  []byte
	code int // index of the current block's code byte
	out  int // next free index
}

func (e *encoder) add(p []byte) {
	for len(p) > 0 {
		room := 254 - (e.out - e.code - 1) // data bytes the block can still take
		n := len(p)
		if n > room {
			n = room
		}
		z := bytes.IndexByte(p[:n], 0)
		if z >= 0 {
			copy(e.dst[e.out:], p[:z])
			e.out += z
			e.dst[e.code] = byte(e.out - e.code)
			e.code = e.out
			e.out++
			p = p[z+1:]
			continue
		}
		copy(e.dst[e.out:], p[:n])
		e.out += n
		p = p[n:]
		if e.out-e.code == 255 {
			e.dst[e.code] = 0xFF
			e.code = e.out
			e.out++
		}
	}
}

// Decoder finds and checks frames in a stream of bytes. The zero value is not
// usable; call NewDecoder. A Decoder is not safe for concurrent use.
type Decoder struct {
	buf     []byte // decoded body of the frame in progress
	n       int    // bytes of buf in use
	run     int    // data bytes left in the current COBS block; 0: expecting a code byte
	zero    bool   // the current block ends with an implied zero
	started bool   // a byte of the current frame has been seen
	bad     error  // the frame in progress is already known to be bad
	max     int

	lastCorrection int // see LastCorrection
}

// NewDecoder returns a decoder for frames whose payload is at most
// maxPayload bytes (at most MaxPayload). Longer frames are dropped.
func NewDecoder(maxPayload int) *Decoder {
	if maxPayload <= 0 || maxPayload > MaxPayload {
		maxPayload = MaxPayload
	}
	return &Decoder{buf: make([]byte, protectedLen(HeaderLen+maxPayload+CheckLen, MaxCorrection)+1), max: maxPayload}
}

// Frame is a decoded frame. Payload aliases the decoder's buffer and is valid
// until the next call to Next.
type Frame struct {
	Type    Type
	Payload []byte
	// Corrected counts the bytes repaired in a protected frame (0 in a
	// plain one): a measure of the line's damage that cost no frame.
	Corrected int
	// Correction is the bytes per block the frame could repair (0: plain).
	Correction int
}

// Next consumes bytes from in up to and including the end of the next frame.
// It returns how many bytes it consumed and, when a frame ended within them,
// ok true and the frame when it is good, or a non-nil error when it was
// dropped (ErrCheck, ErrTooLong, ErrMalformed, ErrVersion). When in ends
// before a frame does, Next consumes all of it and returns ok false and a nil
// error: call again with more bytes. Empty frames (a lone delimiter) are
// skipped. Next allocates nothing.
func (d *Decoder) Next(in []byte) (consumed int, f Frame, ok bool, err error) {
	i := 0
	for i < len(in) {
		end := bytes.IndexByte(in[i:], 0)
		seg := in[i:]
		if end >= 0 {
			seg = in[i : i+end]
		}
		d.feed(seg)
		i += len(seg)
		if end < 0 {
			break
		}
		i++ // the delimiter
		if !d.started {
			continue // empty frame
		}
		f, err = d.finish()
		return i, f, err == nil, err
	}
	return i, Frame{}, false, nil
}

// Reset drops the frame in progress.
func (d *Decoder) Reset() {
	d.n, d.run, d.zero, d.started, d.bad = 0, 0, false, false, nil
}

// feed decodes COBS bytes that contain no delimiter.
func (d *Decoder) feed(p []byte) {
	if len(p) > 0 {
		d.started = true
	}
	for len(p) > 0 {
		if d.bad != nil {
			return
		}
		if d.run == 0 {
			if d.zero {
				if d.n >= len(d.buf) {
					d.bad = ErrTooLong
					return
				}
				d.buf[d.n] = 0
				d.n++
			}
			code := int(p[0])
			p = p[1:]
			d.run = code - 1
			d.zero = code != 0xFF
			continue
		}
		n := d.run
		if n > len(p) {
			n = len(p)
		}
		if !d.put(p[:n]) {
			return
		}
		d.run -= n
		p = p[n:]
	}
}

func (d *Decoder) put(p []byte) bool {
	if d.n+len(p) > len(d.buf) {
		d.bad = ErrTooLong
		return false
	}
	d.n += copy(d.buf[d.n:], p)
	return true
}

// finish checks the frame that just ended and readies the decoder for the next.
func (d *Decoder) finish() (Frame, error) {
	defer d.Reset()
	if d.bad != nil {
		return Frame{}, d.bad
	}
	if d.run != 0 {
		return Frame{}, ErrMalformed // a block cut short: bytes were lost
	}
	body := d.buf[:d.n]
	var f Frame
	if len(body) > 0 && body[0]>>5 == fecVersion {
		var err error
		f.Correction = int(body[0] & MaxType)
		body, f.Corrected, err = unprotect(body)
		if err != nil {
			d.lastCorrection = f.Correction
			return Frame{}, err
		}
	}
	if len(body) < HeaderLen+CheckLen {
		return Frame{}, ErrMalformed
	}
	sum := binary.LittleEndian.Uint32(body[len(body)-CheckLen:])
	body = body[:len(body)-CheckLen]
	n := int(binary.BigEndian.Uint16(body[1:3]))
	if crc32.Checksum(body, castagnoli) != sum {
		if n != len(body)-HeaderLen {
			// Bytes were lost or added, not only changed.
			return Frame{}, ErrMalformed
		}
		return Frame{}, ErrCheck
	}
	if body[0]>>5 != Version {
		return Frame{}, ErrVersion
	}
	if n != len(body)-HeaderLen {
		return Frame{}, ErrMalformed
	}
	if n > d.max {
		return Frame{}, ErrTooLong
	}
	f.Type, f.Payload = Type(body[0]&MaxType), body[HeaderLen:]
	return f, nil
}

// LastCorrection is the bytes per block the last frame dropped with
// ErrUncorrectable could repair: it had more damaged bytes than that in a
// block.
func (d *Decoder) LastCorrection() int { return d.lastCorrection }
