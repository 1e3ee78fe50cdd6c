package framing

import (
	"encoding/binary"
	"errors"
)

// EtherType is p2plink's EtherType, from the IEEE 802 local experimental
// range. Frames with any other EtherType are not ours.
const EtherType = 0x88B5

// Sizes of an Ethernet II frame as p2plink writes it (without the FCS, which
// the hardware adds and strips).
const (
	EtherHeaderLen = 14 // destination, source, EtherType
	EtherOwnLen    = 3  // our version byte and payload length
	EtherOverhead  = EtherHeaderLen + EtherOwnLen
	EtherMinFrame  = 60 // shorter frames are padded with zeros
	EtherVersion   = 1
)

// Errors for Ethernet frames that are not ours or not whole.
var (
	ErrNotOurs = errors.New("framing: not a p2plink Ethernet frame")
	ErrShort   = errors.New("framing: Ethernet frame shorter than its length field says")
)

// EncodeEther writes an Ethernet II frame carrying payload from src to dst
// (6-byte MAC addresses) into out and returns its length: the 14-byte
// header, our version byte, the payload length (big-endian, 2 bytes), the
// payload and zero padding up to the 60-byte minimum. out must hold
// EtherOverhead+len(payload) bytes, and 60 at least. It allocates nothing.
//
// The length field is what lets a receiver strip the padding the wire (or a
// USB bridge cable's odd-length rule) adds.
func EncodeEther(out []byte, dst, src []byte, payload []byte) (int, error) {
	n := EtherOverhead + len(payload)
	if len(payload) > 0xFFFF {
		return 0, ErrTooLong
	}
	if len(out) < max(n, EtherMinFrame) || len(dst) != 6 || len(src) != 6 {
		return 0, ErrShortDst
	}
	copy(out[0:6], dst)
	copy(out[6:12], src)
	binary.BigEndian.PutUint16(out[12:14], EtherType)
	out[14] = EtherVersion
	binary.BigEndian.PutUint16(out[15:17], uint16(len(payload)))
	copy(out[EtherOverhead:], payload)
	for n < EtherMinFrame {
		out[n] = 0
		n++
	}
	return n, nil
}

// EncodeEtherHeader writes the first EtherOverhead bytes of the frame
// EncodeEther would write for a payload of n bytes: the rest of the frame is
// the payload itself, which a writer that gathers (writev, sendmmsg with two
// buffers) need not copy. The frame is then EtherOverhead+n bytes; a payload
// under EtherMinFrame-EtherOverhead bytes must be padded by the caller (or
// written with EncodeEther). It allocates nothing.
func EncodeEtherHeader(out []byte, dst, src []byte, n int) error {
	if n < 0 || n > 0xFFFF {
		return ErrTooLong
	}
	if len(out) < EtherOverhead || len(dst) != 6 || len(src) != 6 {
		return ErrShortDst
	}
	copy(out[0:6], dst)
	copy(out[6:12], src)
	binary.BigEndian.PutUint16(out[12:14], EtherType)
	out[14] = EtherVersion
	binary.BigEndian.PutUint16(out[15:17], uint16(n))
	return nil
}

// DecodeEther parses an Ethernet II frame written by EncodeEther. It returns
// slices of frame: the destination and source MAC addresses and the payload,
// without padding. It allocates nothing.
func DecodeEther(frame []byte) (dst, src, payload []byte, err error) {
	if len(frame) < EtherOverhead {
		return nil, nil, nil, ErrNotOurs
	}
	if binary.BigEndian.Uint16(frame[12:14]) != EtherType {
		return nil, nil, nil, ErrNotOurs
	}
	if frame[14] != EtherVersion {
		return nil, nil, nil, ErrVersion
	}
	n := int(binary.BigEndian.Uint16(frame[15:17]))
	if EtherOverhead+n > len(frame) {
		return nil, nil, nil, ErrShort
	}
	return frame[0:6], frame[6:12], frame[EtherOverhead : EtherOverhead+n], nil
}
