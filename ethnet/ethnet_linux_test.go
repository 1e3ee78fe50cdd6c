package ethnet

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/p2plink/p2plink/ethnet/internal/netns"
	"github.com/p2plink/p2plink/framing"
)

// openOn opens a Link on the host's interface, inside its namespace, and
// closes it when the test ends.
func openOn(tb testing.TB, h *netns.Host, cfg Config) *Link {
	tb.Helper()
	var l *Link
	if err := h.Do(func() (err error) {
		l, err = Open(h.IfName, cfg)
		return err
	}); err != nil {
		tb.Fatalf("Open on %s: %v", h.NS, err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

// stranger opens a bare packet socket on the host's interface, bound to
// every EtherType, from which a test writes whatever frames it likes.
func stranger(tb testing.TB, h *netns.Host) *packet.Conn {
	tb.Helper()
	var c *packet.Conn
	if err := h.Do(func() error {
		ifi, err := net.InterfaceByName(h.IfName)
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
		return err
	}); err != nil {
		tb.Fatalf("stranger socket on %s: %v", h.NS, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// readOne reads one frame with a generous deadline, so that a frame that
// never comes fails the test instead of hanging it.
func readOne(tb testing.TB, l *Link, buf []byte) ([]byte, net.Addr) {
	tb.Helper()
	l.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer l.SetReadDeadline(time.Time{})
	n, from, err := l.ReadFrom(buf)
	if err != nil {
		tb.Fatalf("ReadFrom on %s: %v", l.Interface(), err)
	}
	return buf[:n], from
}

// expectNothing checks that no frame is waiting for l. Frames cross a veth
// pair synchronously within the sender's system call, so anything sent
// before is already queued; a short deadline only bounds the check.
func expectNothing(tb testing.TB, l *Link) {
	tb.Helper()
	l.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	defer l.SetReadDeadline(time.Time{})
	buf := make([]byte, l.MTU())
	n, from, err := l.ReadFrom(buf)
	if err == nil {
		tb.Fatalf("unexpected frame of %d bytes from %v: %q", n, from, buf[:n])
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		tb.Fatalf("ReadFrom: %v, want a deadline error", err)
	}
}

func addrOf(mac net.HardwareAddr) net.Addr { return &packet.Addr{HardwareAddr: mac} }

func TestUnicastAndBroadcast(t *testing.T) {
	seg := netns.NewBridged(t, 3, 1500)
	links := make([]*Link, 3)
	for i, h := range seg.Hosts {
		links[i] = openOn(t, h, Config{})
		if got := links[i].LocalAddr().(*packet.Addr).HardwareAddr; !bytes.Equal(got, h.MAC) {
			t.Fatalf("LocalAddr %v, want %v", got, h.MAC)
		}
		if got, want := links[i].MTU(), 1500-framing.EtherOwnLen; got != want {
			t.Fatalf("MTU %d, want %d", got, want)
		}
	}
	buf := make([]byte, links[0].MTU())

	// Unicast between every ordered pair; nobody else gets it.
	for i, from := range links {
		for j, to := range links {
			if i == j {
				continue
			}
			msg := fmt.Appendf(nil, "hello from %d to %d", i, j)
			if _, err := from.WriteTo(msg, addrOf(seg.Hosts[j].MAC)); err != nil {
				t.Fatal(err)
			}
			got, src := readOne(t, to, buf)
			if !bytes.Equal(got, msg) {
				t.Fatalf("%d→%d: got %q, want %q", i, j, got, msg)
			}
			if !bytes.Equal(src.(*packet.Addr).HardwareAddr, seg.Hosts[i].MAC) {
				t.Fatalf("%d→%d: from %v, want %v", i, j, src, seg.Hosts[i].MAC)
			}
			for k, other := range links {
				if k != i && k != j {
					expectNothing(t, other)
				}
			}
		}
	}

	// Broadcast reaches everybody but the sender.
	msg := []byte("to everyone")
	if _, err := links[1].WriteTo(msg, links[1].BroadcastAddr()); err != nil {
		t.Fatal(err)
	}
	for k, l := range links {
		if k == 1 {
			expectNothing(t, l)
			continue
		}
		got, src := readOne(t, l, buf)
		if !bytes.Equal(got, msg) || src.String() != seg.Hosts[1].MAC.String() {
			t.Fatalf("broadcast at %d: %q from %v", k, got, src)
		}
	}
	st := links[1].Stats()
	if st.FramesOut != 3 || st.BytesOut == 0 || st.FramesIn != 2 {
		t.Errorf("stats of host 1: %+v", st)
	}
}
