package ethnet

import (
	"fmt"
	"net"
	"unsafe"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/p2plink/p2plink/framing"
	"github.com/p2plink/p2plink/link"
)

// batchWriter is the state of WriteBatch, made on its first use and guarded
// by wmu: len(msgs) slots of buf, each slot bytes long, with msgs[i] and
// iovs[i] describing slot i. One sendmmsg(2) sends msgs[off:count].
type batchWriter struct {
	buf         []byte
	slot        int
	msgs        []unix.Mmsghdr
	iovs        []unix.Iovec
	off, count  int
	sent        int
	errno       unix.Errno
	fn          func(fd uintptr) bool
	dst, source net.HardwareAddr
}

// WriteBatch sends each of ps as one frame to addr, as WriteTo would, with
// one sendmmsg(2) system call for up to 32 frames. It returns how many
// frames of ps were sent (a frame the interface's queue dropped counts as
// sent, as in WriteTo). Every frame is checked against the MTU before any
// is sent. On an error, the frames from the n-th on were not sent.
func (l *Link) WriteBatch(ps [][]byte, addr net.Addr) (int, error) {
	a, ok := addr.(*packet.Addr)
	if !ok || len(a.HardwareAddr) != 6 {
		return 0, l.opError("write", fmt.Errorf("destination %v is not a 6-byte MAC address (*packet.Addr)", addr))
	}
	for i, p := range ps {
		if len(p) > l.mtu {
			return 0, l.opError("write", fmt.Errorf("%w: frame %d of the batch has %d bytes, MTU %d", link.ErrFrameTooLarge, i, len(p), l.mtu))
		}
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed.Load() {
		return 0, l.opError("write", net.ErrClosed)
	}
	w := l.batchWriter()
	w.dst = a.HardwareAddr
	done := 0
	for done < len(ps) {
		w.count = min(len(ps)-done, len(w.msgs))
		w.encode(ps[done:done+w.count], 0, l.local.Load().HardwareAddr)
		w.off = 0
		for w.off < w.count {
			if err := l.writeBatch(w); err != nil {
				return done + w.off, l.ioError("write", err)
			}
			switch w.errno {
			case 0:
				for _, p := range ps[done+w.off : done+w.off+w.sent] {
					l.framesOut.Add(1)
					l.bytesOut.Add(uint64(len(p)))
				}
				w.off += w.sent
			case unix.ENOBUFS:
				// The queue dropped this frame: lost, as in WriteTo.
				l.lost.Add(1)
				w.off++
			case unix.ENXIO, unix.ENODEV:
				if !l.rebind() {
					return done + w.off, l.ioError("write", w.errno)
				}
				// Resend the rest from the new interface's address.
				w.encode(ps[done+w.off:done+w.count], w.off, l.local.Load().HardwareAddr)
			default:
				return done + w.off, l.ioError("write", w.errno)
			}
		}
		done += w.count
	}
	return done, nil
}

// writeBatch sends msgs[off:count] as writeFrame sends one frame: through
// the transmit socket when it takes them at once, through conn otherwise.
func (l *Link) writeBatch(w *batchWriter) error {
	if l.txfd >= 0 {
		if err := l.writeDeadlinePassed(); err != nil {
			return err
		}
		if w.send(uintptr(l.txfd)) {
			return nil
		}
	}
	return l.rc.Write(w.fn)
}

// batchWriter returns the link's batch writer, making it on first use. The
// caller holds wmu.
func (l *Link) batchWriter() *batchWriter {
	if l.bw != nil {
		return l.bw
	}
	w := &batchWriter{slot: max(framing.EtherOverhead+l.mtu, framing.EtherMinFrame)}
	n := max(1, min(maxBatch, maxBatchBytes/w.slot))
	w.buf = make([]byte, n*w.slot)
	w.msgs = make([]unix.Mmsghdr, n)
	w.iovs = make([]unix.Iovec, n)
	for i := range n {
		w.iovs[i].Base = &w.buf[i*w.slot]
		w.msgs[i].Hdr.Iov = &w.iovs[i]
		w.msgs[i].Hdr.SetIovlen(1)
	}
	w.fn = w.send
	l.bw = w
	return w
}

// encode writes ps into the slots from slot first on, from src to w.dst.
func (w *batchWriter) encode(ps [][]byte, first int, src net.HardwareAddr) {
	for i, p := range ps {
		s := first + i
		n, _ := framing.EncodeEther(w.buf[s*w.slot:(s+1)*w.slot], w.dst, src, p)
		w.iovs[s].SetLen(n)
	}
}

// send is the write callback given to the netpoller: one sendmmsg(2) of
// msgs[off:count]. Raw, as Link.recv, since the socket never blocks.
func (w *batchWriter) send(fd uintptr) bool {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd,
			uintptr(unsafe.Pointer(&w.msgs[w.off])), uintptr(w.count-w.off), 0, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		w.sent, w.errno = 0, e
		if e == 0 {
			w.sent = int(n)
		}
		return true
	}
}
