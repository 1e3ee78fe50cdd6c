package ethnet

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/p2plink/p2plink/ethnet/internal/netns"
)

// slowQueue gives the host's interface a queue that sends at rate and
// holds what it cannot send yet, so that sent frames stay charged to the
// sockets that sent them.
func slowQueue(t *testing.T, h *netns.Host, rate string) {
	t.Helper()
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("the tc command (iproute2) is missing")
	}
	if out, err := exec.Command("ip", "netns", "exec", h.NS, "tc", "qdisc", "add", "dev", h.IfName,
		"root", "tbf", "rate", rate, "burst", "1600", "limit", "1000000").CombinedOutput(); err != nil {
		t.Skipf("cannot add a token bucket queue: %v: %s", err, out)
	}
}

// shrinkSendBuffers makes the kernel refuse frames beyond the first few
// queued on the link's transmit socket and, if conn too, on its socket.
func shrinkSendBuffers(t *testing.T, l *Link, conn bool) {
	t.Helper()
	if l.txfd < 0 {
		t.Fatal("the link has no transmit socket")
	}
	if err := unix.SetsockoptInt(l.txfd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1); err != nil {
		t.Fatal(err)
	}
	if conn {
		var serr error
		if err := l.rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, 1)
		}); err != nil || serr != nil {
			t.Fatal(err, serr)
		}
	}
}

// TestTransmitSocketFull checks that frames the transmit socket refuses
// (its buffer is full) go out through the receiving socket, in order.
func TestTransmitSocketFull(t *testing.T) {
	seg := netns.NewPair(t, 1500)
	a := openOn(t, seg.Hosts[0], Config{})
	b := openOn(t, seg.Hosts[1], Config{})
	slowQueue(t, seg.Hosts[0], "20mbit")
	shrinkSendBuffers(t, a, false)
	to := addrOf(seg.Hosts[1].MAC)
	var ps [][]byte
	for i := range 40 {
		p := pattern(a.MTU())
		p[0] = byte(i)
		ps = append(ps, p)
	}
	if n, err := a.WriteBatch(ps[:30], to); n != 30 || err != nil {
		t.Fatalf("WriteBatch: %d, %v; want 30 frames sent", n, err)
	}
	for _, p := range ps[30:] {
		if _, err := a.WriteTo(p, to); err != nil {
			t.Fatalf("WriteTo: %v", err)
		}
	}
	buf := make([]byte, b.MTU())
	for i, p := range ps {
		if got, _ := readOne(t, b, buf); !bytes.Equal(got, p) {
			t.Fatalf("frame %d: got frame %d (%d bytes), want it in order", i, got[0], len(got))
		}
	}
	if c := a.Counters(); c.FramesOut != 40 || c.Lost != 0 {
		t.Fatalf("counters %+v: want 40 out, none lost", c)
	}
}

// TestBlockedWriter checks deadlines and Close on a writer that both
// sockets make wait.
func TestBlockedWriter(t *testing.T) {
	seg := netns.NewPair(t, 1500)
	a := openOn(t, seg.Hosts[0], Config{})
	slowQueue(t, seg.Hosts[0], "100kbit")
	shrinkSendBuffers(t, a, true)
	to := addrOf(seg.Hosts[1].MAC)
	ps := make([][]byte, 64)
	for i := range ps {
		ps[i] = pattern(a.MTU())
	}

	a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := a.WriteBatch(ps, to)
	if !errors.Is(err, os.ErrDeadlineExceeded) || n >= len(ps) {
		t.Fatalf("WriteBatch into full buffers: %d, %v; want a deadline error", n, err)
	}
	if _, err := a.WriteTo(ps[0], to); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WriteTo past its deadline: %v", err)
	}
	a.SetWriteDeadline(time.Time{})

	errc := make(chan error, 1)
	go func() {
		_, err := a.WriteBatch(ps, to)
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond) // let it block; the test holds either way
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBatch blocked across Close: %v", err)
	}
	if a.txfd != -1 {
		t.Errorf("transmit socket %d left open after Close", a.txfd)
	}
}
