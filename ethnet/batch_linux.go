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
// by wmu. Frame i of a batch is msgs[i], gathered from two buffers: its
// header, in slot i of buf, and the caller's payload, not copied (iovs[2i]
// and iovs[2i+1]); a frame too short for the wire is written whole, padded,
// into its slot. One sendmmsg(2) sends msgs[off:count].
type batchWriter struct {
	buf         []byte
	msgs        []unix.Mmsghdr
	iovs        []unix.Iovec
	off, count  int
	sent        int
	errno       unix.Errno
	fn          func(fd uintptr) bool
	dst, source net.HardwareAddr
}

// batchSlot is the room for one frame's header in batchWriter.buf, or for
// a whole short frame.
const batchSlot = 64

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
	defer w.release()
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
	w := &batchWriter{}
	w.buf = make([]byte, maxBatch*batchSlot)
	w.msgs = make([]unix.Mmsghdr, maxBatch)
	w.iovs = make([]unix.Iovec, 2*maxBatch)
	for i := range maxBatch {
		w.iovs[2*i].Base = &w.buf[i*batchSlot]
		w.msgs[i].Hdr.Iov = &w.iovs[2*i]
	}
	w.fn = w.send
	l.bw = w
	return w
}

// encode prepares ps as the frames from slot first on, from src to w.dst.
// The iovecs then point into ps until release.
func (w *batchWriter) encode(ps [][]byte, first int, src net.HardwareAddr) {
	for i, p := range ps {
		s := first + i
		h := w.buf[s*batchSlot : (s+1)*batchSlot]
		if framing.EtherOverhead+len(p) <= framing.EtherMinFrame {
			n, _ := framing.EncodeEther(h, w.dst, src, p)
			w.iovs[2*s].SetLen(n)
			w.msgs[s].Hdr.SetIovlen(1)
			continue
		}
		framing.EncodeEtherHeader(h, w.dst, src, len(p))
		w.iovs[2*s].SetLen(framing.EtherOverhead)
		w.iovs[2*s+1].Base = &p[0]
		w.iovs[2*s+1].SetLen(len(p))
		w.msgs[s].Hdr.SetIovlen(2)
	}
}

// release drops the pointers into the caller's payloads, so that the
// writer does not keep them from the garbage collector.
func (w *batchWriter) release() {
	for i := range w.msgs {
		w.iovs[2*i+1] = unix.Iovec{}
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
