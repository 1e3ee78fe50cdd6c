package usbnet

import (
	"encoding/binary"
	"errors"

	"github.com/p2plink/p2plink/framing"
)

// MTU is the largest payload a Link carries: an Ethernet frame of 1514
// bytes (the 1500-byte MTU of the kernel's usb0 interface) less p2plink's
// own Ethernet header (framing.EtherOverhead).
const MTU = 1500 + framing.EtherHeaderLen - framing.EtherOverhead

// maxEther is the longest Ethernet frame a Link writes or accepts.
const maxEther = framing.EtherHeaderLen + 1500

// Sizes of the chip-specific wrappers around an Ethernet frame.
const (
	glHeaderLen   = 8 // GL620A: le32 count, le32 length of the first frame
	glFrameHdr    = 4 // GL620A: le32 length before each frame
	glMaxFrames   = 32
	ncHeaderLen   = 6 // NET1080: le16 header length, le16 frame length, le16 id
	ncTrailerLen  = 2 // NET1080: le16 id
	ncPadByte     = 0xAC
	maxWireFrame  = ncHeaderLen + maxEther + 1 + ncTrailerLen // the largest single transfer we write
	maxGLTransfer = 4 + glMaxFrames*(glFrameHdr+maxEther)     // the largest batch a GL620A may deliver
)

// errWire is returned for transfers that are not a frame of this chip's
// framing.
var errWire = errors.New("usbnet: malformed transfer")

// encodeFrame writes payload as one transfer for family fam into out and
// returns the transfer length, which is never a multiple of mps. out must
// hold maxWireFrame bytes.
func encodeFrame(out []byte, fam Family, mps int, dst, src []byte, id uint16, payload []byte) (int, error) {
	var n int
	var err error
	switch fam {
	case GL620A:
		n, err = framing.EncodeEther(out[glHeaderLen:], dst, src, payload)
		if err != nil {
			return 0, err
		}
		binary.LittleEndian.PutUint32(out[0:4], 1)
		binary.LittleEndian.PutUint32(out[4:8], uint32(n))
		n += glHeaderLen
	case NET1080:
		n, err = framing.EncodeEther(out[ncHeaderLen:], dst, src, payload)
		if err != nil {
			return 0, err
		}
		binary.LittleEndian.PutUint16(out[0:2], ncHeaderLen)
		binary.LittleEndian.PutUint16(out[2:4], uint16(n))
		binary.LittleEndian.PutUint16(out[4:6], id)
		n += ncHeaderLen
		// The chip wants the whole transfer odd-length.
		if (n+ncTrailerLen)%2 == 0 {
			out[n] = ncPadByte
			n++
		}
		binary.LittleEndian.PutUint16(out[n:n+2], id)
		n += ncTrailerLen
		return n, nil // odd, so never a multiple of a (power of two) mps
	default:
		n, err = framing.EncodeEther(out, dst, src, payload)
		if err != nil {
			return 0, err
		}
	}
	if mps > 0 && n%mps == 0 {
		// Keep the transfer off a multiple of wMaxPacketSize so a short
		// packet ends it; the length field strips the pad byte.
		out[n] = 0
		n++
	}
	return n, nil
}

// decodeFrames calls deliver for each Ethernet frame in one received
// transfer and returns how many malformed pieces it dropped.
func decodeFrames(fam Family, xfer []byte, deliver func(ether []byte)) (bad int) {
	switch fam {
	case GL620A:
		if len(xfer) < 4 {
			return 1
		}
		count := binary.LittleEndian.Uint32(xfer[0:4])
		if count == 0 || count > glMaxFrames {
			return 1
		}
		p := xfer[4:]
		for i := uint32(0); i < count; i++ {
			if len(p) < glFrameHdr {
				return bad + 1
			}
			size := int(binary.LittleEndian.Uint32(p[0:4]))
			if size > len(p)-glFrameHdr || size > maxEther+1 {
				return bad + 1
			}
			deliver(p[glFrameHdr : glFrameHdr+size])
			p = p[glFrameHdr+size:]
		}
		return bad
	case NET1080:
		if len(xfer) < ncHeaderLen+ncTrailerLen || len(xfer)%2 == 0 {
			return 1
		}
		hdr := int(binary.LittleEndian.Uint16(xfer[0:2]))
		size := int(binary.LittleEndian.Uint16(xfer[2:4]))
		id := binary.LittleEndian.Uint16(xfer[4:6])
		if hdr < ncHeaderLen || hdr+size+ncTrailerLen > len(xfer) {
			return 1
		}
		if binary.LittleEndian.Uint16(xfer[len(xfer)-2:]) != id {
			return 1
		}
		deliver(xfer[hdr : hdr+size])
		return 0
	default:
		deliver(xfer)
		return 0
	}
}
