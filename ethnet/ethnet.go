// Package ethnet is a p2plink Link over raw Ethernet frames: peers on one
// wired segment (a switch, a crossover cable, a Linux bridge, a USB bridge
// cable that shows up as usb0) exchange frames of p2plink's own EtherType,
// 0x88B5 from the IEEE local experimental range, with no IP address, DHCP or
// firewall rule involved.
//
// A frame on the wire is an Ethernet II frame written by framing.EncodeEther:
//
//	dst(6) | src(6) | 0x88B5 | version(1) | length(2) | payload | padding
//
// The length field lets the receiver strip the padding the wire adds to
// short frames. The hardware adds and checks the FCS, so a frame ReadFrom
// returns is never corrupted.
//
// Open gives a *Link, which satisfies link.Link, link.Broadcaster and
// link.StatsReporter. It is built on github.com/mdlayher/packet (Linux
// AF_PACKET, SOCK_RAW) with the socket bound to our EtherType, so the kernel
// drops every other protocol before it reaches us. Addresses are
// *packet.Addr holding a peer's MAC address; BroadcastAddr reaches every peer
// on the segment.
//
// What Link adds to a bare packet socket:
//   - frames from our own MAC address (a bridge loop, or a spoofing stranger),
//     frames of a foreign EtherType, malformed frames and frames addressed to
//     another host are dropped and counted (see Counters);
//   - the socket receive buffer is raised (DefaultReadBuffer) so that a burst
//     is not dropped by the kernel, whose drop counter Counters reports;
//   - MTU is the interface MTU less our 3-byte header: jumbo frames are used
//     when the interface has them;
//   - with Config.Exclusive, one such link per interface among the processes
//     of a network namespace (ErrInUse for a second): two peers on one
//     interface share its MAC address and would receive each other's frames;
//   - errors say what to do: no permission, no such interface (listing those
//     that exist), interface down, interface without Ethernet framing. Test
//     them with errors.Is against ErrPermission, ErrNoInterface,
//     ErrInterfaceDown and ErrNotEthernet;
//   - no allocation per frame in ReadFrom, WriteTo and WriteBatch once a
//     peer's address has been seen;
//   - fewer system calls: ReadFrom takes up to 32 waiting frames from the
//     kernel at once (recvmmsg), and WriteBatch sends up to 32 in one call
//     (sendmmsg);
//   - frames go out through a second packet socket that receives nothing
//     and that the Go netpoller does not watch: the kernel wakes a watched
//     socket each time it frees a frame sent from it, which woke an idle
//     runtime thread once per frame. When that socket's buffer is full, the
//     frame goes out through the receiving socket, whose netpoller wait
//     honours deadlines and Close;
//   - a replaced interface of the same name (a USB bridge cable plugged
//     back in) is picked up by the next write.
//
// Raw sockets need CAP_NET_RAW: run as root, or grant the capability to the
// binary once with `sudo setcap cap_net_raw+ep $(which p2plink)`. On systems
// other than Linux, Open returns an error wrapping ErrUnsupported.
package ethnet

import (
	"errors"

	"github.com/p2plink/p2plink/link"
)

// DefaultReadBuffer is the socket receive buffer Open asks for when
// Config.ReadBuffer is zero: room for about 2,800 frames of 1,500 bytes, or
// a few milliseconds of a saturated 10 Gb/s link.
const DefaultReadBuffer = 4 << 20

// Config holds the options of Open. The zero value is the default.
type Config struct {
	// ReadBuffer is the size, in bytes, of the socket receive buffer. Zero
	// means DefaultReadBuffer; a negative value keeps the kernel's default.
	// As root (CAP_NET_ADMIN) the size is forced with SO_RCVBUFFORCE; without
	// it SO_RCVBUF applies, which the kernel caps at net.core.rmem_max.
	ReadBuffer int

	// Exclusive claims the interface for this link among the processes of
	// this network namespace that claim it too: Open fails with an error
	// wrapping ErrInUse while another exclusive link is open on it. Two
	// peers on one interface share its MAC address, so each receives the
	// frames the other's peers send it: their announcements and sessions
	// get crossed. The claim is an abstract Unix socket, gone with the
	// process however it ends.
	Exclusive bool

	// NoSpin makes a read that finds no frame sleep at once. By default,
	// while frames flow, it looks again for up to 50 µs, yielding the CPU
	// between looks, before it sleeps: the next frame of a transfer, or
	// the reply of a request, is then taken without waking the reader's
	// CPU, which on an idle (or virtual) machine costs more than the round
	// trip. The price is up to 50 µs of CPU after the last frame of a
	// burst; a quiet link never spins.
	NoSpin bool

	// batch, when positive, sets how many frames one receive system call
	// may take; tests and benchmarks compare sizes with it.
	batch int
	// oneSocket sends every frame through the receiving socket, as when
	// the transmit socket cannot be opened; tests and benchmarks compare
	// the two paths with it.
	oneSocket bool
}

// Errors Open returns, wrapped with the interface name and what to do. Test
// them with errors.Is.
var (
	// ErrPermission reports that the process may not open raw sockets. The
	// error also wraps the system's EPERM or EACCES, so errors.Is with
	// os.ErrPermission holds too.
	ErrPermission = errors.New("no permission for raw Ethernet sockets")
	// ErrNoInterface reports a network interface that does not exist.
	ErrNoInterface = errors.New("no such network interface")
	// ErrInterfaceDown reports an interface that is administratively down.
	ErrInterfaceDown = errors.New("network interface is down")
	// ErrNotEthernet reports an interface without Ethernet framing: a
	// loopback, a TUN device, a point-to-point or IP tunnel interface.
	ErrNotEthernet = errors.New("network interface has no Ethernet framing")
	// ErrInUse reports an interface another exclusive link (another
	// p2plink) already uses; see Config.Exclusive.
	ErrInUse = errors.New("another p2plink already runs on this interface")
	// ErrUnsupported reports a system without Linux AF_PACKET sockets.
	ErrUnsupported = errors.New("raw Ethernet needs Linux AF_PACKET")
)

// Counters details what a Link counted. Counters only grow.
type Counters struct {
	// Stats is what Link.Stats returns. Its Dropped field is the sum of the
	// drop counters below and KernelDrops.
	link.Stats
	// Own counts frames carrying our own source MAC address. The kernel does
	// not hand a socket its own transmissions, so these come from a bridge
	// loop or from a stranger spoofing our address.
	Own uint64
	// Foreign counts frames of another EtherType. The kernel filters them
	// out before they reach the socket, so this stays at zero unless that
	// filter is bypassed.
	Foreign uint64
	// Malformed counts frames of our EtherType with another version, or a
	// length field longer than the frame.
	Malformed uint64
	// Oversize counts frames longer than the interface MTU allows, and frames
	// that did not fit the buffer passed to ReadFrom.
	Oversize uint64
	// OtherHost counts frames addressed to another host's MAC address that
	// reached the socket anyway (a bridge floods unknown unicast). They are
	// not ours and not an error: they are not part of Stats.Dropped.
	OtherHost uint64
	// Lost counts frames WriteTo handed to the kernel that the interface's
	// transmit queue dropped (ENOBUFS). They are not part of FramesOut.
	Lost uint64
	// KernelDrops counts frames the kernel dropped because the socket
	// receive buffer was full; KernelFrames counts the frames it queued.
	KernelDrops, KernelFrames uint64
	// ReadBuffer is the receive buffer size the kernel reports for the
	// socket (the kernel doubles what it was asked for, for bookkeeping).
	ReadBuffer int

	// batch, when positive, sets how many frames one receive system call
	// may take; tests and benchmarks compare sizes with it.
	batch int
}
