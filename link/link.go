// Package link defines the contract between p2plink's link drivers and the
// peer protocol: a Link moves whole frames between machines joined by a direct
// physical medium — a serial line, a USB bridge cable, an Ethernet segment.
//
// A Link is a net.PacketConn with an MTU. Frames may be lost, duplicated or
// reordered by the medium, but a frame that ReadFrom returns is never
// corrupted: every driver checks frames (CRC-32C on byte-stream links, the
// Ethernet FCS on Ethernet) and drops the bad ones, counting them in Stats.
//
// # Contract
//
// Every driver documents itself against this list, and the conformance suite
// in link/linktest checks each sentence:
//
//   - WriteTo sends p as one frame. len(p) must be at most MTU(); a longer
//     frame is refused with an error wrapping ErrFrameTooLarge and nothing is
//     sent. WriteTo does not retain p after it returns. On a point-to-point
//     link addr may be nil or PeerAddr; on a multi-peer link it is the address
//     of one peer or the link's broadcast address.
//   - ReadFrom copies the next frame into p and returns its length and the
//     sender's address. p should be at least MTU() bytes long; a frame that does
//     not fit is dropped and ReadFrom returns io.ErrShortBuffer.
//   - A link never returns a frame whose check failed; it counts it instead.
//   - Deadlines behave as in package net: a call blocked past its deadline
//     returns an error that wraps os.ErrDeadlineExceeded; a deadline in the past
//     makes calls fail at once; the zero time clears it. Deadlines may be set
//     concurrently with blocked calls.
//   - One reader and one writer may run concurrently; the link serialises
//     concurrent writers itself.
//   - Close unblocks every pending call, which then return errors that wrap
//     net.ErrClosed; every later call returns such an error too. Close waits for
//     every goroutine the link started and is safe to call more than once.
//   - When the medium goes away (a cable pulled, an adapter unplugged) calls
//     return errors that wrap ErrDisconnected. Such an error is temporary: a
//     driver that can tell the medium came back resumes by itself, and the caller
//     keeps the link open and retries.
package link

import (
	"errors"
	"net"
)

// Link is the contract every p2plink driver fills: whole frames in and out.
type Link interface {
	net.PacketConn
	// MTU is the largest frame, in bytes, that WriteTo accepts and ReadFrom
	// can return. It does not change during the life of the link.
	MTU() int
}

// Broadcaster is implemented by links with many peers (an Ethernet segment).
// A frame written to BroadcastAddr reaches every peer on the link.
type Broadcaster interface {
	BroadcastAddr() net.Addr
}

// StatsReporter is implemented by links that count what they do.
type StatsReporter interface {
	Stats() Stats
}

// Corrector is implemented by links that can protect the frames they send
// with forward error correction (serial lines; framing's protected frames).
// The peer protocol sets the strength from the damage the far end reports.
type Corrector interface {
	// SetCorrection sets how many damaged bytes in each 255-byte block the
	// frames sent from now on can repair (0 to 16); 0 sends plain frames,
	// which every receiver reads. Both kinds are always received.
	SetCorrection(t int) error
	// LineDamage counts what arrived on the line so far.
	LineDamage() LineDamage
}

// LineDamage counts the bytes a link received and how many of them arrived
// changed. Counters only grow.
type LineDamage struct {
	Bytes uint64 // bytes of frames received, good or dropped
	// Changed counts bytes that arrived changed: those repaired in
	// protected frames, and an estimate for frames dropped because bytes
	// changed (one per plain frame whose check failed, one more than
	// its correction per protected frame beyond repair). Bytes lost or
	// added on the way, which correction cannot help, are not counted.
	Changed uint64
}

// Stats counts a link's traffic. Counters only grow.
type Stats struct {
	FramesIn, FramesOut uint64 // frames delivered by ReadFrom and sent by WriteTo
	BytesIn, BytesOut   uint64 // payload bytes of those frames
	// Dropped counts frames that arrived but were not delivered: a failed
	// check, a malformed header, an oversize frame, a foreign sender.
	Dropped uint64
	// Garbage counts bytes discarded while looking for a frame boundary on
	// byte-stream links.
	Garbage uint64
}

// Errors shared by all drivers. Drivers wrap them with context; test with
// errors.Is.
var (
	// ErrFrameTooLarge reports a frame longer than the link's MTU.
	ErrFrameTooLarge = errors.New("link: frame larger than the link MTU")
	// ErrDisconnected reports that the medium is gone for now: a cable was
	// pulled, a USB adapter unplugged, the far end detached. It is temporary.
	ErrDisconnected = errors.New("link: disconnected")
)

// Addr is the address of an end of a point-to-point link, or of a link
// itself: the medium ("serial", "usb", "pipe") and a name within it.
type Addr struct {
	Net  string
	Name string
}

// Network returns the medium's name.
func (a Addr) Network() string { return a.Net }

// String returns the name of the end.
func (a Addr) String() string { return a.Name }

// PeerAddr is the address ReadFrom reports for frames from the far end of a
// point-to-point link, and one WriteTo accepts there (nil works too).
var PeerAddr net.Addr = Addr{Net: "p2p", Name: "peer"}
