package ethnet

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/p2plink/p2plink/ethnet/internal/netns"
	"github.com/p2plink/p2plink/framing"
)

// BenchmarkThroughput streams frames from one namespace to another over a
// veth pair, as fast as a sender goroutine can write them, and measures
// what the receiver reads: one op is one frame received, and MB/s counts
// payload. Beside each Link figure stands its anchor, measured in the same
// run: a bare packet.Conn writing and reading the same frames with no
// framing, filtering or address handling. Frames the receiver's buffer
// could not hold are lost, as on a real link; drops/frame reports how many
// the kernel dropped per frame received.
func BenchmarkThroughput(b *testing.B) {
	for _, mtu := range []int{1500, 9000} {
		for _, size := range []int{64, mtu - framing.EtherOwnLen} {
			name := fmt.Sprintf("mtu=%d/payload=%d", mtu, size)
			b.Run(name+"/ethnet/batch=1", func(b *testing.B) { benchLink(b, mtu, size, 1) })
			b.Run(name+"/ethnet", func(b *testing.B) { benchLink(b, mtu, size, 0) })
			b.Run(name+"/ethnet/writebatch", func(b *testing.B) { benchLink(b, mtu, size, -1) })
			b.Run(name+"/ethnet/writebatch/one-socket", func(b *testing.B) { benchLink(b, mtu, size, -2) })
			b.Run(name+"/packet", func(b *testing.B) { benchPacket(b, mtu, size) })
		}
	}
}

// stream runs send in a loop on its own goroutine until the benchmark's
// loop of recv is done, and reports frames/s and loss.
func stream(b *testing.B, size int, send func() (int, error), recv func() error, drops func() uint64) {
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			if _, err := send(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	defer wg.Wait()
	defer stop.Store(true)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := recv(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(float64(drops())/float64(n), "drops/frame")
}

// benchLink streams over a Link whose receiver takes batch frames per
// system call (0: the default); batch -1 also sends with WriteBatch, and
// -2 does so without the transmit socket (Config.oneSocket).
func benchLink(b *testing.B, mtu, size, batch int) {
	seg := netns.NewPair(b, mtu)
	tx := openOn(b, seg.Hosts[0], Config{oneSocket: batch == -2})
	rx := openOn(b, seg.Hosts[1], Config{batch: max(batch, 0)})
	to := addrOf(seg.Hosts[1].MAC)
	p := pattern(size)
	ps := make([][]byte, maxBatch)
	for i := range ps {
		ps[i] = p
	}
	buf := make([]byte, rx.MTU())
	rx.SetReadDeadline(time.Now().Add(time.Minute))
	send := func() (int, error) { _, err := tx.WriteTo(p, to); return 1, err }
	if batch < 0 {
		send = func() (int, error) { return tx.WriteBatch(ps, to) }
	}
	stream(b, size, send,
		func() error {
			n, _, err := rx.ReadFrom(buf)
			if err == nil && n != size {
				err = fmt.Errorf("read %d bytes, want %d", n, size)
			}
			return err
		},
		func() uint64 { return rx.Counters().KernelDrops })
}

func benchPacket(b *testing.B, mtu, size int) {
	seg := netns.NewPair(b, mtu)
	tx, rx := bareConn(b, seg.Hosts[0]), bareConn(b, seg.Hosts[1])
	// The same bytes on the wire as the Link sends, built once.
	frame := make([]byte, max(framing.EtherOverhead+size, framing.EtherMinFrame))
	n, err := framing.EncodeEther(frame, seg.Hosts[1].MAC, seg.Hosts[0].MAC, pattern(size))
	if err != nil {
		b.Fatal(err)
	}
	frame = frame[:n]
	to := addrOf(seg.Hosts[1].MAC)
	buf := make([]byte, mtu+framing.EtherHeaderLen)
	rx.SetReadDeadline(time.Now().Add(time.Minute))
	stream(b, size,
		func() (int, error) { _, err := tx.WriteTo(frame, to); return 1, err },
		func() error {
			n, _, err := rx.ReadFrom(buf)
			if err == nil && n != len(frame) {
				err = fmt.Errorf("read %d bytes, want %d", n, len(frame))
			}
			return err
		},
		func() uint64 {
			st, err := rx.Stats()
			if err != nil {
				b.Fatal(err)
			}
			return uint64(st.Drops)
		})
}

// BenchmarkReceive measures what receiving costs the receiver alone: the
// socket is filled with a burst while the timer is stopped, then drained.
// One op is one frame read; the anchor is a bare packet.Conn.
func BenchmarkReceive(b *testing.B) {
	for _, mtu := range []int{1500, 9000} {
		size := mtu - framing.EtherOwnLen
		for _, batch := range []int{1, maxBatch} {
			b.Run(fmt.Sprintf("mtu=%d/payload=%d/ethnet/batch=%d", mtu, size, batch), func(b *testing.B) {
				seg := netns.NewPair(b, mtu)
				tx, rx := openOn(b, seg.Hosts[0], Config{}), openOn(b, seg.Hosts[1], Config{batch: batch})
				to := addrOf(seg.Hosts[1].MAC)
				p := pattern(size)
				buf := make([]byte, rx.MTU())
				drain(b, size, func() error { _, err := tx.WriteTo(p, to); return err },
					func() error { _, _, err := rx.ReadFrom(buf); return err })
			})
		}
		b.Run(fmt.Sprintf("mtu=%d/payload=%d/packet", mtu, size), func(b *testing.B) {
			seg := netns.NewPair(b, mtu)
			tx, rx := bareConn(b, seg.Hosts[0]), bareConn(b, seg.Hosts[1])
			frame := make([]byte, framing.EtherOverhead+size)
			framing.EncodeEther(frame, seg.Hosts[1].MAC, seg.Hosts[0].MAC, pattern(size))
			to := addrOf(seg.Hosts[1].MAC)
			buf := make([]byte, mtu+framing.EtherHeaderLen)
			drain(b, size, func() error { _, err := tx.WriteTo(frame, to); return err },
				func() error { _, _, err := rx.ReadFrom(buf); return err })
		})
	}
}

func drain(b *testing.B, size int, send, recv func() error) {
	// A burst that the receive buffer holds whole: the kernel charges a
	// frame about twice its size, and doubles the buffer size asked for.
	burst := min(1000, DefaultReadBuffer/(size+framing.EtherOverhead))
	b.SetBytes(int64(size))
	b.ReportAllocs()
	queued := 0
	for b.Loop() {
		if queued == 0 {
			b.StopTimer()
			for range burst {
				if err := send(); err != nil {
					b.Fatal(err)
				}
			}
			queued = burst
			b.StartTimer()
		}
		if err := recv(); err != nil {
			b.Fatal(err)
		}
		queued--
	}
}

func bareConn(b *testing.B, h *netns.Host) *packet.Conn {
	var c *packet.Conn
	if err := h.Do(func() error {
		ifi, err := net.InterfaceByName(h.IfName)
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, framing.EtherType, nil)
		if err != nil {
			return err
		}
		// The same receive buffer as a Link's, for a fair comparison.
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, DefaultReadBuffer)
		}); err != nil {
			return err
		}
		return serr
	}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}
