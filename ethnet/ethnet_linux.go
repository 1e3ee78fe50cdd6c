package ethnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/p2plink/p2plink/framing"
	"github.com/p2plink/p2plink/link"
)

// network is the name Link's errors give the medium.
const network = "ethnet"

// maxAddrCache bounds the number of peer addresses ReadFrom keeps so that it
// need not allocate one per frame. A flood of frames from ever new source
// addresses makes ReadFrom allocate instead of growing the cache.
const maxAddrCache = 1024

// A receive batch takes up to maxBatch frames from the kernel in one system
// call, in at most maxBatchBytes of buffer.
const (
	maxBatch      = 32
	maxBatchBytes = 1 << 20
)

// Link is a p2plink Link over raw Ethernet frames on one interface. It
// satisfies link.Link, link.Broadcaster and link.StatsReporter, and follows
// the contract written in package link:
//
//   - WriteTo sends p as one frame to addr, a *packet.Addr holding a peer's
//     6-byte MAC address or BroadcastAddr. len(p) may be up to MTU.
//   - ReadFrom returns the payload of the next frame of our EtherType
//     addressed to us or to broadcast, and the sender as a *packet.Addr. The
//     address returned may be shared between calls: do not modify it.
//   - One reader and one writer may run at once; concurrent readers and
//     concurrent writers are serialised.
//   - ReadFrom takes up to 32 waiting frames from the kernel in one
//     recvmmsg(2) and hands them out one per call; deadlines and Close apply
//     to those as if they were still queued.
//   - Deadlines work through the Go netpoller (a write that the transmit
//     socket takes at once checks the write deadline itself); Close
//     unblocks every call.
//   - A Link starts no goroutines.
type Link struct {
	conn   *packet.Conn
	rc     syscall.RawConn
	ifname string
	// ifindex is the interface the socket is bound to, guarded by wmu.
	ifindex int
	// local is the interface's MAC address. It changes only when the
	// interface is replaced by a new one of the same name (a USB cable
	// plugged back in) and the link rebinds to it.
	local     atomic.Pointer[packet.Addr]
	mtu       int
	broadcast *packet.Addr
	closed    atomic.Bool

	// The reader's state, guarded by rmu. One recvmmsg(2) fills up to
	// len(msgs) slots of rbuf, each slot bytes long, with msgs[i] and
	// iovs[i] describing slot i; ReadFrom hands out frames rnext..rcount-1
	// before it asks the kernel again. readFn is built once so that passing
	// it to rc.Read allocates nothing.
	rmu    sync.Mutex
	rbuf   []byte
	slot   int
	msgs   []unix.Mmsghdr
	iovs   []unix.Iovec
	rnext  int
	rcount int
	rerrno unix.Errno
	readFn func(fd uintptr) bool
	// The reader's spinning (see recv), guarded by rmu: when a frame last
	// arrived, and how many spins in a row found nothing (and when the
	// last of them ended), all in Unix nanoseconds.
	lastIn, spinMissAt int64
	spinMiss           int
	noSpin             bool // Config.NoSpin
	addrs              map[[6]byte]*packet.Addr
	rdeadline          atomic.Int64 // read deadline in Unix nanoseconds, 0 for none

	// The writer's state, guarded by wmu. txfd is the transmit socket (see
	// openTx), -1 when frames go out through conn; wdeadline mirrors the
	// write deadline for it, in Unix nanoseconds, 0 for none.
	wmu       sync.Mutex
	txfd      int
	wdeadline atomic.Int64
	wbuf      []byte
	wn        int
	werrno    unix.Errno
	writeFn   func(fd uintptr) bool
	bw        *batchWriter // WriteBatch's state, made on first use

	claim int // the interface's claim (Config.Exclusive), -1 for none; guarded by wmu after Open

	framesIn, framesOut, bytesIn, bytesOut atomic.Uint64
	own, foreign, malformed, oversize      atomic.Uint64
	otherHost, lost                        atomic.Uint64

	// Kernel statistics: reading them resets the kernel's counters, so they
	// are accumulated here, under kmu.
	kmu                       sync.Mutex
	kernelDrops, kernelFrames uint64
	readBuffer                int
}

var (
	_ link.Link          = (*Link)(nil)
	_ link.Broadcaster   = (*Link)(nil)
	_ link.StatsReporter = (*Link)(nil)
)

// broadcastMAC is the Ethernet broadcast address.
const broadcastMAC = "\xff\xff\xff\xff\xff\xff"

// Open opens a Link on the Ethernet interface named ifname ("eth0", "usb0").
// It needs CAP_NET_RAW. The errors it returns wrap ErrNoInterface,
// ErrNotEthernet, ErrInterfaceDown or ErrPermission, and say what to do.
func Open(ifname string, cfg Config) (*Link, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, noInterface(ifname)
	}
	if ifi.Flags&net.FlagLoopback != 0 {
		return nil, fmt.Errorf("ethnet: %s: %w: it is a loopback interface; name a wired interface such as eth0", ifname, ErrNotEthernet)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("ethnet: %s: %w (no 6-byte MAC address: a TUN, point-to-point or tunnel interface?); name a wired interface such as eth0", ifname, ErrNotEthernet)
	}
	if ifi.Flags&net.FlagUp == 0 {
		return nil, fmt.Errorf("ethnet: %s: %w; bring it up with: ip link set %s up", ifname, ErrInterfaceDown, ifname)
	}
	mtu := min(ifi.MTU-framing.EtherOwnLen, 0xFFFF)
	if mtu <= 0 {
		return nil, fmt.Errorf("ethnet: %s: interface MTU %d too small for frames", ifname, ifi.MTU)
	}

	claim := -1
	if cfg.Exclusive {
		if claim, err = claimInterface(ifi); err != nil {
			return nil, err
		}
	}
	filter, err := otherHostFilter()
	if err != nil {
		unclaim(claim)
		return nil, fmt.Errorf("ethnet: building socket filter: %w", err)
	}
	conn, err := packet.Listen(ifi, packet.Raw, framing.EtherType, &packet.Config{Filter: filter})
	if err != nil {
		unclaim(claim)
		return nil, classifyOpen(ifname, err)
	}
	l, err := newLink(conn, ifi, mtu, cfg)
	if err != nil {
		unclaim(claim)
		conn.Close()
		return nil, err
	}
	l.claim = claim
	return l, nil
}

// claimInterface binds the abstract Unix socket that names the interface
// (by index, which is what identifies it within the network namespace, as
// abstract socket names are) and returns it; see Config.Exclusive.
func claimInterface(ifi *net.Interface) (int, error) { return claimIndex(ifi.Name, ifi.Index) }

// claimIndex claims the interface named ifname with index index.
func claimIndex(ifname string, index int) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("ethnet: %s: claiming the interface: %w", ifname, err)
	}
	name := fmt.Sprintf("@p2plink/ethnet/%d", index)
	err = unix.Bind(fd, &unix.SockaddrUnix{Name: name})
	if err == nil {
		return fd, nil
	}
	unix.Close(fd)
	if errors.Is(err, unix.EADDRINUSE) {
		who := "a serve in the background?"
		if h := claimHolder(name); h != "" {
			who = h
		}
		return -1, fmt.Errorf("ethnet: %s: %w (%s): both would receive the frames sent to this machine, and their sessions would break; stop the other first, or use another interface", ifname, ErrInUse, who)
	}
	return -1, fmt.Errorf("ethnet: %s: claiming the interface: %w", ifname, err)
}

// claimHolder names the process that holds the abstract socket name, as
// "pid N: its command line", or returns "" when it cannot tell (another
// user's process, no /proc). Only the error path pays for the search.
func claimHolder(name string) string {
	// The socket's inode, from this network namespace's list of Unix sockets.
	tab, err := os.ReadFile("/proc/thread-self/net/unix")
	if err != nil {
		return ""
	}
	inode := ""
	for _, line := range strings.Split(string(tab), "\n") {
		f := strings.Fields(line)
		if len(f) >= 8 && f[len(f)-1] == name {
			inode = f[6]
			break
		}
	}
	if inode == "" {
		return ""
	}
	want := "socket:[" + inode + "]"
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid := p.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		fds, _ := os.ReadDir("/proc/" + pid + "/fd")
		for _, fd := range fds {
			if target, _ := os.Readlink("/proc/" + pid + "/fd/" + fd.Name()); target == want {
				cmd, _ := os.ReadFile("/proc/" + pid + "/cmdline")
				c := strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
				if len(c) > 120 {
					c = c[:120] + "…"
				}
				return "pid " + pid + ": " + c
			}
		}
	}
	return ""
}

func unclaim(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}

func newLink(conn *packet.Conn, ifi *net.Interface, mtu int, cfg Config) (*Link, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("ethnet: %s: %w", ifi.Name, err)
	}
	// The socket's address tells the hardware type: only Ethernet will do.
	var hatype uint16
	var serr error
	if err := rc.Control(func(fd uintptr) {
		sa, err := unix.Getsockname(int(fd))
		if err != nil {
			serr = err
			return
		}
		if ll, ok := sa.(*unix.SockaddrLinklayer); ok {
			hatype = ll.Hatype
		}
	}); err != nil {
		return nil, fmt.Errorf("ethnet: %s: %w", ifi.Name, err)
	}
	if serr != nil {
		return nil, fmt.Errorf("ethnet: %s: getsockname: %w", ifi.Name, serr)
	}
	if hatype != unix.ARPHRD_ETHER {
		return nil, fmt.Errorf("ethnet: %s: %w (hardware type %d); name a wired interface such as eth0", ifi.Name, ErrNotEthernet, hatype)
	}

	l := &Link{
		conn:    conn,
		rc:      rc,
		ifname:  ifi.Name,
		ifindex: ifi.Index,
		mtu:     mtu,
		// Room for the largest frame the interface passes, a VLAN tag the
		// kernel may leave in place, and slack to tell oversize frames.
		slot:   framing.EtherHeaderLen + ifi.MTU + 64,
		wbuf:   make([]byte, max(framing.EtherOverhead+mtu, framing.EtherMinFrame)),
		addrs:  make(map[[6]byte]*packet.Addr),
		txfd:   -1,
		claim:  -1,
		noSpin: cfg.NoSpin,
	}
	batch := max(1, min(maxBatch, maxBatchBytes/l.slot))
	if cfg.batch > 0 {
		batch = cfg.batch
	}
	l.rbuf = make([]byte, batch*l.slot)
	l.msgs = make([]unix.Mmsghdr, batch)
	l.iovs = make([]unix.Iovec, batch)
	for i := range batch {
		l.iovs[i].Base = &l.rbuf[i*l.slot]
		l.iovs[i].SetLen(l.slot)
		l.msgs[i].Hdr.Iov = &l.iovs[i]
		l.msgs[i].Hdr.SetIovlen(1)
	}
	l.local.Store(&packet.Addr{HardwareAddr: slices.Clone(ifi.HardwareAddr)})
	l.broadcast = &packet.Addr{HardwareAddr: net.HardwareAddr(broadcastMAC)}
	l.readFn = l.recv
	l.writeFn = l.send
	if err := l.setReadBuffer(cfg.ReadBuffer); err != nil {
		return nil, fmt.Errorf("ethnet: %s: setting the receive buffer: %w", ifi.Name, err)
	}
	// The kernel does not hand a socket bound to one protocol its own
	// transmissions; asking for it explicitly costs nothing where supported.
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	})
	if !cfg.oneSocket {
		// Without a transmit socket every frame goes out through conn.
		l.txfd, _ = openTx(ifi.Index)
	}
	return l, nil
}

// openTx opens the transmit socket: a packet socket bound to the interface
// but to no protocol, so that the kernel hands it no frames, and kept out
// of the Go netpoller. A socket the netpoller watches is woken each time
// the kernel frees a frame it sent (its write space grew), which wakes an
// idle thread of the runtime for nothing, once per frame. Sending through
// this socket avoids that; when it would block (its buffer is full), the
// frame goes through conn instead, whose netpoller wait honours deadlines
// and Close.
func openTx(ifindex int) (int, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// writeFrame sends the frame in wbuf[:wn], through the transmit socket when
// it takes it at once, through conn otherwise, and leaves the outcome in
// werrno. The caller holds wmu.
func (l *Link) writeFrame() error {
	if l.txfd >= 0 {
		if err := l.writeDeadlinePassed(); err != nil {
			return err
		}
		if l.send(uintptr(l.txfd)) {
			return nil
		}
	}
	return l.rc.Write(l.writeFn)
}

// writeDeadlinePassed returns os.ErrDeadlineExceeded when the write
// deadline has passed, as the netpoller would before a write.
func (l *Link) writeDeadlinePassed() error {
	if d := l.wdeadline.Load(); d != 0 && time.Now().UnixNano() >= d {
		return os.ErrDeadlineExceeded
	}
	return nil
}

// otherHostFilter is a BPF program that drops frames the kernel marked as
// addressed to another host, which a bridge floods to every port until it
// learns where a MAC address lives.
func otherHostFilter() ([]bpf.RawInstruction, error) {
	return bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_OTHERHOST, SkipTrue: 1},
		bpf.RetConstant{Val: 0x40000},
		bpf.RetConstant{Val: 0},
	})
}

// setReadBuffer sizes the socket receive buffer: forced as root, asked for
// otherwise (the kernel then caps it at net.core.rmem_max).
func (l *Link) setReadBuffer(size int) error {
	if size == 0 {
		size = DefaultReadBuffer
	}
	var serr error
	err := l.rc.Control(func(fd uintptr) {
		if size > 0 {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) != nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, size)
			}
		}
		if serr == nil {
			l.readBuffer, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// noInterface builds the error for an interface that does not exist, listing
// those that do.
func noInterface(ifname string) error {
	var names []string
	if ifs, err := net.Interfaces(); err == nil {
		for _, ifi := range ifs {
			if ifi.Flags&net.FlagLoopback == 0 && len(ifi.HardwareAddr) == 6 {
				names = append(names, ifi.Name)
			}
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("ethnet: %q: %w; this system has no Ethernet interface", ifname, ErrNoInterface)
	}
	return fmt.Errorf("ethnet: %q: %w; Ethernet interfaces here: %s", ifname, ErrNoInterface, strings.Join(names, ", "))
}

// classifyOpen translates the errors of opening and binding a packet socket
// into ours, once, at the driver's edge.
func classifyOpen(ifname string, err error) error {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("ethnet: %s: %w: %w; run as root or: sudo setcap cap_net_raw+ep $(which p2plink)", ifname, ErrPermission, err)
	case errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		return fmt.Errorf("ethnet: %s: %w (it went away while opening): %w", ifname, ErrNoInterface, err)
	case errors.Is(err, unix.ENETDOWN):
		return fmt.Errorf("ethnet: %s: %w: %w; bring it up with: ip link set %s up", ifname, ErrInterfaceDown, err, ifname)
	case errors.Is(err, unix.EAFNOSUPPORT):
		return fmt.Errorf("ethnet: %s: %w: the kernel has no AF_PACKET support (CONFIG_PACKET): %w", ifname, ErrUnsupported, err)
	}
	return fmt.Errorf("ethnet: %s: opening a raw socket: %w", ifname, err)
}

// recv is the read callback given to the netpoller: one recvmmsg(2) that
// takes every frame waiting, up to len(msgs), into rbuf's slots. MSG_TRUNC
// makes it report a frame's full length even when the frame did not fit,
// so oversize frames are recognised.
//
// The socket never blocks, so the call is made raw: without the runtime's
// entry into a blocking system call, which wakes its monitor thread when
// it sleeps (an idle peer's every read did) and may hand the processor to
// another thread. That saved a futex wake and half a context switch per
// round trip of a small message.
//
// A read that finds nothing while frames are flowing looks again for up to
// spinFor, yielding the CPU between looks, before it sleeps: the next frame
// of a bulk transfer or the reply of a ping-pong is then taken without the
// sender waking us (which, on a virtual machine whose CPU went idle, costs
// more than the round trip itself). A link whose frames stopped (none for
// spinIdle) sleeps at once, and one whose spins keep finding nothing (a
// sender's reader of acks) stops spinning, trying again every spinRetry.
// Between looks the thread yields its CPU to any other thread there; in a
// process that runs Go code on one thread only (GOMAXPROCS=1) it lets its
// other goroutines run too, which would otherwise wait for the spin to end
// (with more threads it does not: that would send the reader from thread
// to thread).
func (l *Link) recv(fd uintptr) bool {
	var spun time.Time // when the spin began (its monotonic reading times it)
	var oneThread bool // GOMAXPROCS is 1, as of the spin's start
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd,
			uintptr(unsafe.Pointer(unsafe.SliceData(l.msgs))), uintptr(len(l.msgs)),
			unix.MSG_TRUNC, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			now := time.Now()
			if spun.IsZero() {
				if !l.spinNow(now.UnixNano()) {
					return false
				}
				spun, oneThread = now, runtime.GOMAXPROCS(0) == 1
			}
			if now.Sub(spun) < spinFor {
				if oneThread {
					runtime.Gosched() // our other goroutines run meanwhile
				}
				unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
				continue
			}
			l.spinMiss, l.spinMissAt = l.spinMiss+1, now.UnixNano()
			return false
		}
		if e == 0 {
			if !spun.IsZero() {
				l.spinMiss = 0
			}
			l.lastIn = time.Now().UnixNano()
		}
		l.rnext, l.rcount, l.rerrno = 0, 0, e
		if e == 0 {
			l.rcount = int(n)
		}
		return true
	}
}

// The reader's spinning (see recv). spinFor covers a round trip between
// two processes here (10–30 µs) with room to spare; measured over veth at
// MTU 1500, it took the 32-byte round trip with the ends on two CPUs from
// 61–95 µs to 11–15 µs.
const (
	spinFor    = 50 * time.Microsecond
	spinIdle   = time.Millisecond
	spinMisses = 3
	spinRetry  = 10 * time.Millisecond
)

// spinNow reports whether a read that found nothing at now (Unix
// nanoseconds) spins: frames arrived within spinIdle, and the spins have
// not kept missing (or spinRetry passed since the last that did).
func (l *Link) spinNow(now int64) bool {
	return !l.noSpin && now-l.lastIn <= int64(spinIdle) &&
		(l.spinMiss < spinMisses || now-l.spinMissAt >= int64(spinRetry))
}

// send is the write callback given to the netpoller: one write(2) of wbuf.
// The socket is bound to the interface and the EtherType, so no address is
// needed; the frame's header names the destination. Raw, as recv, since
// the socket never blocks.
func (l *Link) send(fd uintptr) bool {
	for {
		_, _, e := unix.RawSyscall(unix.SYS_WRITE, fd,
			uintptr(unsafe.Pointer(unsafe.SliceData(l.wbuf))), uintptr(l.wn))
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		l.werrno = e
		return true
	}
}

// ReadFrom reads the next frame for us into p and returns the payload's
// length and the sender's address, a *packet.Addr that may be shared
// between calls. Frames not for us are dropped and counted. A frame longer
// than p is dropped and ReadFrom returns an error wrapping io.ErrShortBuffer.
func (l *Link) ReadFrom(p []byte) (int, net.Addr, error) {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	payload, src, err := l.next(len(p))
	if err != nil {
		return 0, nil, err
	}
	return copy(p, payload), l.addrOf(src), nil
}

// ReadFrame is ReadFrom without the copy: it returns the next frame's
// payload where the kernel put it, in the link's own buffer. The payload is
// valid, and may be changed in place, until the next ReadFrame or ReadFrom,
// which the caller must not make meanwhile from another goroutine.
func (l *Link) ReadFrame() ([]byte, net.Addr, error) {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	payload, src, err := l.next(-1)
	if err != nil {
		return nil, nil, err
	}
	return payload, l.addrOf(src), nil
}

// next returns the next frame for us, taking frames from the kernel when
// none is left of the last batch: its payload and source MAC address,
// slices of rbuf. A payload longer than max (when max >= 0) is dropped with
// an error wrapping io.ErrShortBuffer. The caller holds rmu.
func (l *Link) next(max int) (payload, src []byte, err error) {
	for {
		if l.closed.Load() {
			return nil, nil, l.opError("read", net.ErrClosed)
		}
		if l.rnext >= l.rcount {
			if err := l.rc.Read(l.readFn); err != nil {
				return nil, nil, l.ioError("read", err)
			}
			if l.rerrno != 0 {
				return nil, nil, l.ioError("read", l.rerrno)
			}
		} else if d := l.rdeadline.Load(); d != 0 && time.Now().UnixNano() >= d {
			// Frames already taken from the kernel wait for the next
			// call; the deadline holds as if they were still queued.
			return nil, nil, l.opError("read", os.ErrDeadlineExceeded)
		}
		i := l.rnext
		l.rnext++
		size := int(l.msgs[i].Len)
		if size > l.slot {
			l.oversize.Add(1)
			continue
		}
		frame := l.rbuf[i*l.slot : i*l.slot+size]
		dst, src, payload, err := framing.DecodeEther(frame)
		switch {
		case err != nil && len(frame) >= framing.EtherHeaderLen &&
			(frame[12] != framing.EtherType>>8 || frame[13] != framing.EtherType&0xFF):
			l.foreign.Add(1)
			continue
		case err != nil:
			l.malformed.Add(1)
			continue
		}
		mac := l.local.Load().HardwareAddr
		switch {
		case bytes.Equal(src, mac):
			l.own.Add(1)
			continue
		case !bytes.Equal(dst, mac) && string(dst) != broadcastMAC:
			l.otherHost.Add(1)
			continue
		case len(payload) > l.mtu:
			l.oversize.Add(1)
			continue
		case max >= 0 && len(payload) > max:
			l.oversize.Add(1)
			return nil, nil, l.opError("read", io.ErrShortBuffer)
		}
		l.framesIn.Add(1)
		l.bytesIn.Add(uint64(len(payload)))
		return payload, src, nil
	}
}

// addrOf returns the address for a sender's MAC, from a bounded cache so
// that ReadFrom allocates nothing for peers it has seen.
func (l *Link) addrOf(src []byte) *packet.Addr {
	key := [6]byte(src)
	if a, ok := l.addrs[key]; ok {
		return a
	}
	a := &packet.Addr{HardwareAddr: net.HardwareAddr(slices.Clone(src))}
	if len(l.addrs) < maxAddrCache {
		l.addrs[key] = a
	}
	return a
}

// WriteTo sends p as one frame to addr: a *packet.Addr holding a 6-byte MAC
// address, such as one ReadFrom returned, or BroadcastAddr. p longer than
// MTU is refused with an error wrapping link.ErrFrameTooLarge. A frame the
// interface's transmit queue drops (ENOBUFS) is lost like a frame lost on
// the wire: WriteTo succeeds and Counters.Lost counts it.
//
// When the interface goes down or away, WriteTo returns an error wrapping
// link.ErrDisconnected. The link resumes by itself when the interface comes
// back up or, if it was removed (a USB bridge cable unplugged), when a new
// interface of the same name appears: the next WriteTo moves the socket to
// it, and ReadFrom receives from it again.
func (l *Link) WriteTo(p []byte, addr net.Addr) (int, error) {
	a, ok := addr.(*packet.Addr)
	if !ok || len(a.HardwareAddr) != 6 {
		return 0, l.opError("write", fmt.Errorf("destination %v is not a 6-byte MAC address (*packet.Addr)", addr))
	}
	if len(p) > l.mtu {
		return 0, l.opError("write", fmt.Errorf("%w: %d bytes, MTU %d", link.ErrFrameTooLarge, len(p), l.mtu))
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed.Load() {
		return 0, l.opError("write", net.ErrClosed)
	}
	n, err := framing.EncodeEther(l.wbuf, a.HardwareAddr, l.local.Load().HardwareAddr, p)
	if err != nil {
		return 0, l.opError("write", err)
	}
	l.wn = n
	if err := l.writeFrame(); err != nil {
		return 0, l.ioError("write", err)
	}
	if (l.werrno == unix.ENXIO || l.werrno == unix.ENODEV) && l.rebind() {
		// The interface was replaced by a new one of the same name and
		// the socket now sits on it: send again, from its address.
		n, _ = framing.EncodeEther(l.wbuf, a.HardwareAddr, l.local.Load().HardwareAddr, p)
		l.wn = n
		if err := l.writeFrame(); err != nil {
			return 0, l.ioError("write", err)
		}
	}
	switch l.werrno {
	case 0:
		l.framesOut.Add(1)
		l.bytesOut.Add(uint64(len(p)))
		return len(p), nil
	case unix.ENOBUFS:
		// The interface's queue dropped the frame, as a full queue
		// on the wire would: a lost frame, not a broken link.
		l.lost.Add(1)
		return len(p), nil
	default:
		return 0, l.ioError("write", l.werrno)
	}
}

// rebind moves the socket to a new interface of the link's name, after the
// one it was bound to went away: a USB bridge cable unplugged and plugged
// back in comes back as a new interface. The new interface must be up, have
// Ethernet framing and carry frames as large as the link's MTU. It is looked
// up with ioctls on the socket itself, which answer for the socket's own
// network namespace. The caller holds wmu.
func (l *Link) rebind() bool {
	ok := false
	if err := l.rc.Control(func(fd uintptr) { ok = l.rebindFD(int(fd)) }); err != nil {
		return false
	}
	return ok
}

func (l *Link) rebindFD(fd int) bool {
	ifr, err := unix.NewIfreq(l.ifname)
	if err != nil {
		return false
	}
	query := func(req uint) bool { return unix.IoctlIfreq(fd, req, ifr) == nil }
	if !query(unix.SIOCGIFINDEX) {
		return false
	}
	index := int(ifr.Uint32())
	if index == l.ifindex ||
		!query(unix.SIOCGIFHWADDR) || ifr.Uint16() != unix.ARPHRD_ETHER || // sa_family is the hardware type
		!query(unix.SIOCGIFFLAGS) || ifr.Uint16()&unix.IFF_UP == 0 ||
		!query(unix.SIOCGIFMTU) || int(ifr.Uint32())-framing.EtherOwnLen < l.mtu {
		return false
	}
	claim := -1
	if l.claim >= 0 {
		// The claim moves with the socket: a new interface of the name
		// (a USB bridge cable plugged back in) is ours, unless another
		// p2plink took it meanwhile, and then we stay off it.
		var err error
		if claim, err = claimIndex(l.ifname, index); err != nil {
			return false
		}
	}
	moved := false
	defer func() {
		if !moved {
			unclaim(claim)
		}
	}()
	var be [2]byte // the protocol goes in network byte order
	binary.BigEndian.PutUint16(be[:], framing.EtherType)
	proto := binary.NativeEndian.Uint16(be[:])
	if unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: index}) != nil {
		return false
	}
	if l.txfd >= 0 && unix.Bind(l.txfd, &unix.SockaddrLinklayer{Ifindex: index}) != nil {
		// Frames go out through the socket that moved.
		unix.Close(l.txfd)
		l.txfd = -1
	}
	l.ifindex = index
	if claim >= 0 {
		unclaim(l.claim)
		l.claim = claim
		moved = true
	}
	// Forget the error the old interface's removal left pending on the
	// socket, which the next send or receive would otherwise return.
	_, _ = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if sa, err := unix.Getsockname(fd); err == nil {
		if ll, ok := sa.(*unix.SockaddrLinklayer); ok && ll.Halen == 6 &&
			!bytes.Equal(ll.Addr[:6], l.local.Load().HardwareAddr) {
			l.local.Store(&packet.Addr{HardwareAddr: slices.Clone(ll.Addr[:6])})
		}
	}
	return true
}

// ioError wraps an error of the socket: after Close it is net.ErrClosed;
// an interface that went down or away is link.ErrDisconnected.
func (l *Link) ioError(op string, err error) error {
	if l.closed.Load() {
		return l.opError(op, net.ErrClosed)
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	switch {
	case errors.Is(err, unix.ENETDOWN), errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENODEV):
		err = fmt.Errorf("%w: interface %s is down or gone (%w); check the cable or run: ip link set %s up",
			link.ErrDisconnected, l.ifname, err, l.ifname)
	case errors.Is(err, os.ErrClosed):
		err = net.ErrClosed
	}
	if errno, ok := err.(unix.Errno); ok {
		err = os.NewSyscallError(op, errno)
	}
	return l.opError(op, err)
}

func (l *Link) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: network, Source: l.local.Load(), Err: err}
}

// MTU returns the largest payload WriteTo accepts: the interface MTU less
// p2plink's 3-byte header (the 14-byte Ethernet header is not part of the
// interface MTU).
func (l *Link) MTU() int { return l.mtu }

// BroadcastAddr returns ff:ff:ff:ff:ff:ff, which reaches every peer on the
// segment. Do not modify it.
func (l *Link) BroadcastAddr() net.Addr { return l.broadcast }

// LocalAddr returns the interface's MAC address as a *packet.Addr. Do not
// modify it. It changes only if the interface is replaced by a new one of
// the same name with another address (see WriteTo).
func (l *Link) LocalAddr() net.Addr { return l.local.Load() }

// Interface returns the name of the interface the link is open on.
func (l *Link) Interface() string { return l.ifname }

// SetDeadline sets the read and write deadlines.
func (l *Link) SetDeadline(t time.Time) error {
	l.setReadDeadline(t)
	l.setWriteDeadline(t)
	return l.deadline("set deadline", l.conn.SetDeadline, t)
}

// SetReadDeadline sets the deadline for ReadFrom.
func (l *Link) SetReadDeadline(t time.Time) error {
	l.setReadDeadline(t)
	return l.deadline("set read deadline", l.conn.SetReadDeadline, t)
}

// SetWriteDeadline sets the deadline for WriteTo.
func (l *Link) SetWriteDeadline(t time.Time) error {
	l.setWriteDeadline(t)
	return l.deadline("set write deadline", l.conn.SetWriteDeadline, t)
}

// setReadDeadline records the read deadline for the frames ReadFrom has
// already taken from the kernel.
func (l *Link) setReadDeadline(t time.Time) {
	if t.IsZero() {
		l.rdeadline.Store(0)
	} else {
		l.rdeadline.Store(max(t.UnixNano(), 1))
	}
}

// setWriteDeadline records the write deadline for the transmit socket,
// which the netpoller does not watch.
func (l *Link) setWriteDeadline(t time.Time) {
	if t.IsZero() {
		l.wdeadline.Store(0)
	} else {
		l.wdeadline.Store(max(t.UnixNano(), 1))
	}
}

func (l *Link) deadline(op string, set func(time.Time) error, t time.Time) error {
	if l.closed.Load() {
		return l.opError(op, net.ErrClosed)
	}
	if err := set(t); err != nil {
		return l.ioError(op, err)
	}
	return nil
}

// Close closes the socket, unblocking pending calls, which return errors
// wrapping net.ErrClosed. It returns once they have returned. Later calls
// to Close do nothing and return nil.
func (l *Link) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	// Collect the kernel's counters while the socket is still open.
	l.kernelStats()
	// The kernel waits for a grace period of its packet handlers when it
	// releases a packet socket (some 15-20 ms on an idle machine): the two
	// sockets are closed at once, so that a command's exit waits for one.
	errc := make(chan error, 1)
	go func() { errc <- l.conn.Close() }()
	// Closing conn unblocks a writer waiting in the netpoller; one using
	// the transmit socket does not block. Once the writer is out, no call
	// reaches the transmit socket again.
	l.wmu.Lock()
	if l.txfd >= 0 {
		unix.Close(l.txfd)
		l.txfd = -1
	}
	unclaim(l.claim) // guarded by wmu, as rebind moves it
	l.claim = -1
	l.wmu.Unlock()
	err := <-errc
	if err != nil {
		return l.opError("close", err)
	}
	return nil
}

// kernelStats adds the kernel's counters to ours; reading them resets them.
func (l *Link) kernelStats() {
	l.kmu.Lock()
	defer l.kmu.Unlock()
	st, err := l.conn.Stats()
	if err != nil {
		return
	}
	l.kernelDrops += uint64(st.Drops)
	l.kernelFrames += uint64(st.Packets)
}

// Stats returns the link's traffic counters (link.StatsReporter). Dropped
// includes the frames the kernel dropped for want of buffer space.
func (l *Link) Stats() link.Stats { return l.Counters().Stats }

// Counters returns every counter the link keeps, with the kernel's.
func (l *Link) Counters() Counters {
	if !l.closed.Load() {
		l.kernelStats()
	}
	l.kmu.Lock()
	kd, kf, rb := l.kernelDrops, l.kernelFrames, l.readBuffer
	l.kmu.Unlock()
	c := Counters{
		Own:          l.own.Load(),
		Foreign:      l.foreign.Load(),
		Malformed:    l.malformed.Load(),
		Oversize:     l.oversize.Load(),
		OtherHost:    l.otherHost.Load(),
		Lost:         l.lost.Load(),
		KernelDrops:  kd,
		KernelFrames: kf,
		ReadBuffer:   rb,
	}
	c.Stats = link.Stats{
		FramesIn:  l.framesIn.Load(),
		FramesOut: l.framesOut.Load(),
		BytesIn:   l.bytesIn.Load(),
		BytesOut:  l.bytesOut.Load(),
		Dropped:   c.Own + c.Foreign + c.Malformed + c.Oversize + c.KernelDrops,
	}
	return c
}
