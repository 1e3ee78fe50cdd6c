package peer

import (
	"encoding/binary"
	"errors"
)

// ProtocolVersion is the peer protocol version this package speaks. Peers
// that speak another version are refused with a clear error on both ends.
const ProtocolVersion = 1

// Packet kinds: the first byte of every link frame the peer protocol sends.
const (
	kindHello  = 0x01 // plaintext: magic, version, nonce
	kindHS1    = 0x02 // Noise XX message 1
	kindHS2    = 0x03 // Noise XX message 2
	kindHS3    = 0x04 // Noise XX message 3
	kindData   = 0x05 // reliable, encrypted: seq(4) | AEAD(frames)
	kindCtrl   = 0x06 // unreliable, encrypted: ctr(4) | AEAD(frames)
	kindReject = 0x07 // plaintext: version, reason
)

var helloMagic = [4]byte{'P', '2', 'P', 'L'}

const (
	helloLen   = 1 + 4 + 1 + 8 // kind, magic, version, nonce
	hsHdrLen   = 1 + 1 + 8 + 8 // kind, version, initiator nonce, responder nonce
	pktHdrLen  = 1 + 4         // kind, low 32 bits of sequence/counter
	tagLen     = 16            // ChaCha20-Poly1305 tag
	pktOverhed = pktHdrLen + tagLen
	ctrlNonce  = uint64(1) << 63 // nonce space of unreliable packets
)

// Frame types inside encrypted packets: type(1) | len(uvarint) | value.
// Unknown types are skipped, so new ones can be added without a new version.
const (
	frStream = 0x01 // streamID(uvarint) | data
	frFin    = 0x02 // streamID(uvarint) | data: the last data of the stream
	frOpen   = 0x03 // streamID(uvarint) | priority(1) | service name
	frWindow = 0x04 // streamID(uvarint) | increment(uvarint)
	frReset  = 0x05 // streamID(uvarint) | reason text
	frClose  = 0x06 // reason text: the session ends
	frAck    = 0x10 // cum(4) | bitmap: seq cum+1+i received when bit i is set
	frPing   = 0x11 // asks for an ack now
	frLinkQ  = 0x12 // bytes(uvarint) | changed(uvarint): the sender's link damage counters
)

var errMalformed = errors.New("malformed packet")

// putFrameHdr writes a frame header for a value of n bytes and returns its size.
func putFrameHdr(b []byte, typ byte, n int) int {
	b[0] = typ
	return 1 + binary.PutUvarint(b[1:], uint64(n))
}

// frameHdrLen is the size of a frame header for a value of n bytes.
func frameHdrLen(n int) int {
	return 1 + uvarintLen(uint64(n))
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// nextFrame splits the first frame off b.
func nextFrame(b []byte) (typ byte, val, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, errMalformed
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n > uint64(len(b)-1-k) {
		return 0, nil, nil, errMalformed
	}
	start := 1 + k
	return b[0], b[start : start+int(n)], b[start+int(n):], nil
}

// expand turns the low 32 bits of a sequence number into the full number
// nearest to ref.
func expand(low uint32, ref uint64) uint64 {
	cand := ref&^0xFFFFFFFF | uint64(low)
	switch {
	case cand+(1<<31) < ref:
		cand += 1 << 32
	case cand > ref+(1<<31) && cand >= 1<<32:
		cand -= 1 << 32
	}
	return cand
}
