package ethnet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/p2plink/p2plink/ethnet/internal/netns"
	"github.com/p2plink/p2plink/framing"
	"github.com/p2plink/p2plink/link"
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

// pattern fills a payload of n bytes that differs in every position and
// from one size to the next, so a truncated or shifted frame is noticed.
func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + n)
	}
	return p
}

func TestSizes(t *testing.T) {
	for _, mtu := range []int{1500, 9000} {
		t.Run(fmt.Sprintf("mtu%d", mtu), func(t *testing.T) {
			seg := netns.NewPair(t, mtu)
			a, b := openOn(t, seg.Hosts[0], Config{}), openOn(t, seg.Hosts[1], Config{})
			if got, want := a.MTU(), mtu-framing.EtherOwnLen; got != want {
				t.Fatalf("MTU %d, want %d", got, want)
			}
			to := addrOf(seg.Hosts[1].MAC)
			buf := make([]byte, b.MTU())
			// Every size that the wire pads, the edges of the padding, and a
			// spread up to the MTU itself.
			var sizes []int
			for n := 0; n <= framing.EtherMinFrame; n++ {
				sizes = append(sizes, n)
			}
			for n := 61; n < a.MTU(); n += 97 {
				sizes = append(sizes, n)
			}
			sizes = append(sizes, a.MTU()-1, a.MTU())
			for _, n := range sizes {
				p := pattern(n)
				if _, err := a.WriteTo(p, to); err != nil {
					t.Fatalf("WriteTo %d bytes: %v", n, err)
				}
				got, _ := readOne(t, b, buf)
				if !bytes.Equal(got, p) {
					t.Fatalf("size %d: got %d bytes, want %d (or contents differ)", n, len(got), n)
				}
			}
			// One byte over the MTU is refused, and nothing is sent.
			_, err := a.WriteTo(make([]byte, a.MTU()+1), to)
			if !errors.Is(err, link.ErrFrameTooLarge) {
				t.Fatalf("WriteTo MTU+1: %v, want ErrFrameTooLarge", err)
			}
			expectNothing(t, b)
			// A reader's buffer too short for the frame: io.ErrShortBuffer,
			// the frame is dropped and counted, and the next one is fine.
			a.WriteTo(pattern(100), to)
			a.WriteTo(pattern(10), to)
			b.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := b.ReadFrom(make([]byte, 50)); !errors.Is(err, io.ErrShortBuffer) {
				t.Fatalf("ReadFrom into a short buffer: %v, want io.ErrShortBuffer", err)
			}
			if got, _ := readOne(t, b, buf); !bytes.Equal(got, pattern(10)) {
				t.Fatalf("after a short buffer: got %q", got)
			}
			c := b.Counters()
			if c.Oversize != 1 || c.FramesIn != uint64(len(sizes)+1) || c.Dropped != 1 {
				t.Fatalf("counters %+v: want 1 oversize, %d frames in, 1 dropped", c, len(sizes)+1)
			}
			if sent := a.Stats(); sent.FramesOut != uint64(len(sizes)+2) {
				t.Fatalf("sender counted %d frames out, want %d", sent.FramesOut, len(sizes)+2)
			}
		})
	}
}

// rawFrame builds a frame by hand: header fields as given, then body.
func rawFrame(dst, src net.HardwareAddr, etherType uint16, body ...byte) []byte {
	f := append(append(append([]byte{}, dst...), src...), byte(etherType>>8), byte(etherType))
	return append(f, body...)
}

func TestStrangers(t *testing.T) {
	seg := netns.NewBridged(t, 3, 1500)
	victim := openOn(t, seg.Hosts[0], Config{})
	friend := openOn(t, seg.Hosts[1], Config{})
	evil := stranger(t, seg.Hosts[2])
	buf := make([]byte, victim.MTU())
	vmac, fmac, emac := seg.Hosts[0].MAC, seg.Hosts[1].MAC, seg.Hosts[2].MAC
	to := addrOf(vmac)

	send := func(frame []byte) {
		t.Helper()
		if _, err := evil.WriteTo(frame, to); err != nil {
			t.Fatalf("stranger WriteTo: %v", err)
		}
	}
	good := func(src net.HardwareAddr, payload string) []byte {
		f := make([]byte, 64+len(payload))
		n, err := framing.EncodeEther(f, vmac, src, []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		return f[:n]
	}
	// Let the bridge learn every port, so unicast is not flooded.
	for _, l := range []*Link{victim, friend} {
		l.WriteTo([]byte("hello"), l.BroadcastAddr())
	}
	send(good(emac, "hello"))
	readOne(t, victim, buf)
	readOne(t, victim, buf)
	readOne(t, friend, buf)
	before := victim.Counters()

	// Foreign EtherTypes: IPv4, ARP, and one next to ours.
	send(rawFrame(vmac, emac, 0x0800, make([]byte, 46)...))
	send(rawFrame(vmac, emac, 0x0806, make([]byte, 46)...))
	send(rawFrame(vmac, emac, framing.EtherType+1, 1, 0, 4, 'a', 'b', 'c', 'd'))
	// Our EtherType, but garbage: another version, a length longer than the
	// frame, a header cut short.
	send(rawFrame(vmac, emac, framing.EtherType, 9, 0, 4, 'a', 'b', 'c', 'd'))
	send(rawFrame(vmac, emac, framing.EtherType, 1, 0x05, 0xdc, 'a', 'b', 'c', 'd'))
	send(rawFrame(vmac, emac, framing.EtherType, 1))
	// Well formed but spoofed: our own source address. This teaches the
	// bridge that the victim lives behind the stranger's port, as on a real
	// switch; the victim's next frame teaches it back.
	spoof := good(vmac, "I am you")
	copy(spoof, []byte(broadcastMAC)) // to vmac itself, the bridge would drop it
	send(spoof)
	victim.WriteTo([]byte("I am here"), victim.BroadcastAddr())
	for _, want := range []string{"I am you", "I am here"} {
		if got, _ := readOne(t, friend, buf); string(got) != want {
			t.Fatalf("friend got %q, want %q", got, want)
		}
	}
	// Addressed to another host: the bridge does not send it here.
	evil.WriteTo(func() []byte { f := good(emac, "not yours"); copy(f, fmac); return f }(), addrOf(fmac))
	// Finally a good frame: everything before it has been handled once it
	// arrives, since frames on this path stay in order.
	send(good(emac, "last"))

	got, from := readOne(t, victim, buf)
	if string(got) != "last" || from.String() != emac.String() {
		t.Fatalf("got %q from %v, want the stranger's last frame", got, from)
	}
	expectNothing(t, victim)
	after := victim.Counters()
	if d := after.Malformed - before.Malformed; d != 3 {
		t.Errorf("Malformed grew by %d, want 3", d)
	}
	if d := after.Own - before.Own; d != 1 {
		t.Errorf("Own grew by %d, want 1", d)
	}
	if d := after.Dropped - before.Dropped; d != 4 {
		t.Errorf("Dropped grew by %d, want 4", d)
	}
	// The kernel filters foreign EtherTypes for us: they never arrive.
	if after.Foreign != 0 {
		t.Errorf("Foreign %d: the kernel should have filtered them", after.Foreign)
	}
	if got, _ := readOne(t, friend, buf); string(got) != "not yours" {
		t.Errorf("friend got %q", got)
	}
}

func TestOwnTransmissionsIgnored(t *testing.T) {
	seg := netns.NewBridged(t, 3, 1500)
	a1 := openOn(t, seg.Hosts[0], Config{})
	a2 := openOn(t, seg.Hosts[0], Config{}) // same host, same MAC
	b := openOn(t, seg.Hosts[1], Config{})
	buf := make([]byte, a1.MTU())
	for _, p := range []string{"broadcast", "unicast"} {
		to := a1.BroadcastAddr()
		if p == "unicast" {
			to = addrOf(seg.Hosts[1].MAC)
		}
		if _, err := a1.WriteTo([]byte(p), to); err != nil {
			t.Fatal(err)
		}
		if got, _ := readOne(t, b, buf); string(got) != p {
			t.Fatalf("peer got %q, want %q", got, p)
		}
		expectNothing(t, a1)
		expectNothing(t, a2)
	}
}

func TestDeadlinesAndClose(t *testing.T) {
	seg := netns.NewPair(t, 1500)
	a := openOn(t, seg.Hosts[0], Config{})
	b := openOn(t, seg.Hosts[1], Config{})
	buf := make([]byte, a.MTU())

	// A deadline in the past fails at once, and clearing it lets frames in.
	a.SetReadDeadline(time.Now().Add(-time.Second))
	_, _, err := a.ReadFrom(buf)
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("ReadFrom past its deadline: %v", err)
	}
	a.SetReadDeadline(time.Time{})
	b.WriteTo([]byte("x"), addrOf(seg.Hosts[0].MAC))
	if got, _ := readOne(t, a, buf); string(got) != "x" {
		t.Fatalf("got %q", got)
	}
	a.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := a.WriteTo([]byte("x"), a.BroadcastAddr()); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WriteTo past its deadline: %v", err)
	}
	a.SetWriteDeadline(time.Time{})

	// A deadline set while a reader is blocked wakes it.
	errc := make(chan error, 1)
	go func() {
		_, _, err := a.ReadFrom(buf)
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond) // let it block; the test holds either way
	a.SetReadDeadline(time.Now())
	if err := <-errc; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blocked ReadFrom after SetReadDeadline: %v", err)
	}
	a.SetReadDeadline(time.Time{})

	// Close unblocks a reader with net.ErrClosed.
	go func() {
		_, _, err := a.ReadFrom(buf)
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom blocked across Close: %v", err)
	}
	if _, _, err := a.ReadFrom(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom after Close: %v", err)
	}
	if _, err := a.WriteTo([]byte("x"), a.BroadcastAddr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteTo after Close: %v", err)
	}
	if err := a.SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("SetDeadline after Close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_ = a.Counters() // still answers after Close
}

func TestBadAddress(t *testing.T) {
	seg := netns.NewPair(t, 1500)
	a := openOn(t, seg.Hosts[0], Config{})
	for _, to := range []net.Addr{nil, link.PeerAddr, &packet.Addr{}, &net.UDPAddr{}} {
		if _, err := a.WriteTo([]byte("x"), to); err == nil {
			t.Errorf("WriteTo(%#v) succeeded", to)
		}
	}
}

func TestInterfaceDownAndUp(t *testing.T) {
	seg := netns.NewPair(t, 1500)
	a := openOn(t, seg.Hosts[0], Config{})
	b := openOn(t, seg.Hosts[1], Config{})
	buf := make([]byte, a.MTU())
	seg.Hosts[0].IP(t, "link", "set", "eth0", "down")
	_, err := a.WriteTo([]byte("x"), addrOf(seg.Hosts[1].MAC))
	if !errors.Is(err, link.ErrDisconnected) {
		t.Fatalf("WriteTo on a down interface: %v, want ErrDisconnected", err)
	}
	if !strings.Contains(err.Error(), "ip link set eth0 up") {
		t.Errorf("error does not say what to do: %v", err)
	}
	seg.Hosts[0].IP(t, "link", "set", "eth0", "up")
	seg.Hosts[0].WaitUp(t)
	// The kernel may report the down event once to a reader: it is
	// ErrDisconnected, and the link carries on.
	b.WriteTo([]byte("back"), addrOf(seg.Hosts[0].MAC))
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, _, err := a.ReadFrom(buf)
		if errors.Is(err, link.ErrDisconnected) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != "back" {
			t.Fatalf("got %q", buf[:n])
		}
		break
	}
	if _, err := a.WriteTo([]byte("x"), addrOf(seg.Hosts[1].MAC)); err != nil {
		t.Fatalf("WriteTo after the interface came back: %v", err)
	}
}

func TestReadBuffer(t *testing.T) {
	seg := netns.NewPair(t, 1500)
	def := openOn(t, seg.Hosts[0], Config{})
	if got := def.Counters().ReadBuffer; got < DefaultReadBuffer {
		t.Errorf("default receive buffer %d, want at least %d", got, DefaultReadBuffer)
	}
	big := openOn(t, seg.Hosts[0], Config{ReadBuffer: 16 << 20})
	if got := big.Counters().ReadBuffer; got < 16<<20 {
		t.Errorf("receive buffer %d, want at least %d", got, 16<<20)
	}
	kernel := openOn(t, seg.Hosts[0], Config{ReadBuffer: -1})
	if got := kernel.Counters().ReadBuffer; got >= DefaultReadBuffer {
		t.Errorf("kernel default receive buffer %d: was it raised anyway?", got)
	}
}

func TestAllocs(t *testing.T) {
	seg := netns.NewPair(t, 1500)
	a := openOn(t, seg.Hosts[0], Config{})
	b := openOn(t, seg.Hosts[1], Config{})
	to := addrOf(seg.Hosts[1].MAC)
	p := pattern(1000)
	buf := make([]byte, b.MTU())
	// Prime the address cache.
	a.WriteTo(p, to)
	readOne(t, b, buf)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := a.WriteTo(p, to); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per frame sent and received, want 0", allocs)
	}
	// The batched paths the peer protocol uses: WriteBatch and ReadFrame.
	batch := [][]byte{p, pattern(20), pattern(1400)}
	allocs = testing.AllocsPerRun(300, func() {
		if _, err := a.WriteBatch(batch, to); err != nil {
			t.Fatal(err)
		}
		for range batch {
			if _, _, err := b.ReadFrame(); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch sent and read in place, want 0", allocs)
	}
}

func TestOpenErrors(t *testing.T) {
	seg := netns.NewPair(t, 1500)
	h := seg.Hosts[0]
	open := func(name string) error {
		return h.Do(func() error {
			l, err := Open(name, Config{})
			if err == nil {
				l.Close()
			}
			return err
		})
	}
	check := func(t *testing.T, err, sentinel error, hints ...string) {
		t.Helper()
		if !errors.Is(err, sentinel) {
			t.Fatalf("got %v, want an error wrapping %v", err, sentinel)
		}
		for _, hint := range hints {
			if !strings.Contains(err.Error(), hint) {
				t.Errorf("error %q does not say %q", err, hint)
			}
		}
	}

	t.Run("no such interface", func(t *testing.T) {
		check(t, open("nope0"), ErrNoInterface, `"nope0"`, "Ethernet interfaces here: eth0")
	})
	t.Run("no Ethernet interface at all", func(t *testing.T) {
		empty := netns.NewEmpty(t)
		err := empty.Do(func() error { _, err := Open("eth0", Config{}); return err })
		check(t, err, ErrNoInterface, "no Ethernet interface")
	})
	t.Run("loopback", func(t *testing.T) {
		check(t, open("lo"), ErrNotEthernet, "loopback")
	})
	t.Run("tun", func(t *testing.T) {
		if _, err := os.Stat("/dev/net/tun"); err != nil {
			t.Skipf("no TUN devices here: %v", err)
		}
		h.IP(t, "tuntap", "add", "mode", "tun", "name", "tun0")
		h.IP(t, "link", "set", "tun0", "up")
		check(t, open("tun0"), ErrNotEthernet, "TUN")
	})
	t.Run("down", func(t *testing.T) {
		h.IP(t, "link", "set", "eth0", "down")
		defer h.IP(t, "link", "set", "eth0", "up")
		check(t, open("eth0"), ErrInterfaceDown, "ip link set eth0 up")
	})
	t.Run("permission", func(t *testing.T) {
		// Capabilities belong to a thread: drop CAP_NET_RAW from the
		// effective set of the one Do runs on, and raise it again after.
		err := h.Do(func() error {
			restore, err := dropCapability(unix.CAP_NET_RAW)
			if err != nil {
				return err
			}
			_, oerr := Open("eth0", Config{})
			if err := restore(); err != nil {
				panic(fmt.Sprintf("restoring CAP_NET_RAW: %v", err))
			}
			return oerr
		})
		check(t, err, ErrPermission, "run as root or: sudo setcap cap_net_raw+ep $(which p2plink)")
		if !errors.Is(err, os.ErrPermission) {
			t.Errorf("%v does not wrap os.ErrPermission", err)
		}
	})
}

// dropCapability removes capability c from the calling thread's effective
// set and returns a function that puts it back. The caller must hold its
// OS thread locked.
func dropCapability(c uint) (restore func() error, err error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil, fmt.Errorf("capget: %w", err)
	}
	saved := data
	data[c/32].Effective &^= 1 << (c % 32)
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return nil, fmt.Errorf("capset: %w", err)
	}
	return func() error { return unix.Capset(&hdr, &saved[0]) }, nil
}

func TestClassifyOpen(t *testing.T) {
	for _, tc := range []struct {
		err      error
		sentinel error
		hint     string
	}{
		{os.NewSyscallError("socket", unix.EPERM), ErrPermission, "setcap cap_net_raw+ep"},
		{&net.OpError{Op: "listen", Err: os.NewSyscallError("socket", unix.EACCES)}, ErrPermission, "run as root"},
		{os.NewSyscallError("bind", unix.ENODEV), ErrNoInterface, "went away"},
		{os.NewSyscallError("bind", unix.ENETDOWN), ErrInterfaceDown, "ip link set eth7 up"},
		{os.NewSyscallError("socket", unix.EAFNOSUPPORT), ErrUnsupported, "CONFIG_PACKET"},
	} {
		err := classifyOpen("eth7", tc.err)
		if !errors.Is(err, tc.sentinel) || !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("classifyOpen(%v) = %v, want %v with %q", tc.err, err, tc.sentinel, tc.hint)
		}
	}
	other := os.NewSyscallError("socket", unix.EMFILE)
	err := classifyOpen("eth7", other)
	for _, s := range []error{ErrPermission, ErrNoInterface, ErrInterfaceDown, ErrNotEthernet, ErrUnsupported} {
		if errors.Is(err, s) {
			t.Errorf("classifyOpen(EMFILE) = %v, wraps %v", err, s)
		}
	}
	if !errors.Is(err, unix.EMFILE) {
		t.Errorf("classifyOpen(EMFILE) = %v, lost the cause", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	seg := netns.NewBridged(t, 3, 1500)
	a := openOn(t, seg.Hosts[0], Config{})
	b := openOn(t, seg.Hosts[1], Config{})
	to := addrOf(seg.Hosts[1].MAC)
	const writers, each = 4, 200
	errc := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				// Each frame says who wrote it and repeats that through its
				// length, so interleaved writes would show.
				p := bytes.Repeat([]byte{byte(w), byte(i)}, 50+w*100+i)
				if _, err := a.WriteTo(p, to); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	buf := make([]byte, b.MTU())
	next := make([]int, writers)
	for range writers * each {
		got, _ := readOne(t, b, buf)
		w, i := int(got[0]), int(got[1])
		if w >= writers || i != next[w] || !bytes.Equal(got, bytes.Repeat([]byte{byte(w), byte(i)}, 50+w*100+i)) {
			t.Fatalf("frame %d of %d bytes mangled or out of order (next %v)", i, len(got), next)
		}
		next[w]++
	}
	for range writers {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

func TestTransmitQueueDrops(t *testing.T) {
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("the tc command (iproute2) is missing")
	}
	seg := netns.NewPair(t, 1500)
	a := openOn(t, seg.Hosts[0], Config{})
	// A queue that holds nothing drops every frame handed to it.
	if out, err := exec.Command("ip", "netns", "exec", seg.Hosts[0].NS,
		"tc", "qdisc", "add", "dev", "eth0", "root", "pfifo", "limit", "0").CombinedOutput(); err != nil {
		t.Skipf("cannot add a dropping queue: %v: %s", err, out)
	}
	for range 3 {
		if _, err := a.WriteTo([]byte("into the void"), a.BroadcastAddr()); err != nil {
			t.Fatalf("WriteTo into a dropping queue: %v, want a lost frame and no error", err)
		}
	}
	if c := a.Counters(); c.Lost != 3 || c.FramesOut != 0 {
		t.Fatalf("counters %+v: want 3 lost, 0 out", c)
	}
}

// readSkippingDisconnect reads one frame, passing over the one
// ErrDisconnected the kernel reports to a reader when its interface went
// down or away.
func readSkippingDisconnect(tb testing.TB, l *Link, buf []byte) ([]byte, net.Addr) {
	tb.Helper()
	l.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer l.SetReadDeadline(time.Time{})
	for {
		n, from, err := l.ReadFrom(buf)
		if errors.Is(err, link.ErrDisconnected) {
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		return buf[:n], from
	}
}

func TestInterfaceReplaced(t *testing.T) {
	seg := netns.NewPair(t, 1500)
	h0, h1 := seg.Hosts[0], seg.Hosts[1]
	a := openOn(t, h0, Config{})
	b := openOn(t, h1, Config{})
	buf := make([]byte, a.MTU())
	a.WriteTo([]byte("before"), addrOf(h1.MAC))
	readOne(t, b, buf)

	// Unplug: both ends of the veth pair go away.
	h0.IP(t, "link", "del", "eth0")
	_, err := a.WriteTo([]byte("x"), addrOf(h1.MAC))
	if !errors.Is(err, link.ErrDisconnected) {
		t.Fatalf("WriteTo with the interface gone: %v, want ErrDisconnected", err)
	}

	// Plug back in: a new pair of the same names, h0's with a new address.
	newMAC := net.HardwareAddr{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}
	h0.IP(t, "link", "add", "eth0", "address", newMAC.String(), "type", "veth",
		"peer", "name", "eth0", "address", h1.MAC.String(), "netns", h1.NS)
	h0.IP(t, "link", "set", "eth0", "up")
	h1.IP(t, "link", "set", "eth0", "up")
	h0.WaitUp(t)
	h1.WaitUp(t)

	// Each side's next write moves its socket to the new interface; a
	// frame sent before the other side moved is lost, as on a cable.
	if _, err := a.WriteTo([]byte("lost"), addrOf(h1.MAC)); err != nil {
		t.Fatalf("WriteTo after replug: %v", err)
	}
	if got := a.LocalAddr().String(); got != newMAC.String() {
		t.Errorf("LocalAddr %s after replug, want %s", got, newMAC)
	}
	if _, err := b.WriteTo([]byte("back from b"), addrOf(newMAC)); err != nil {
		t.Fatalf("WriteTo after replug: %v", err)
	}
	if got, _ := readSkippingDisconnect(t, a, buf); string(got) != "back from b" {
		t.Fatalf("a got %q", got)
	}
	a.WriteTo([]byte("back from a"), addrOf(h1.MAC))
	if got, from := readSkippingDisconnect(t, b, buf); string(got) != "back from a" || from.String() != newMAC.String() {
		t.Fatalf("b got %q from %v", got, from)
	}
}

// TestBatchedFrames checks that frames taken from the kernel in one batch
// but not yet read obey the contract as if they were still queued.
func TestBatchedFrames(t *testing.T) {
	seg := netns.NewPair(t, 1500)
	a := openOn(t, seg.Hosts[0], Config{})
	b := openOn(t, seg.Hosts[1], Config{})
	to := addrOf(seg.Hosts[1].MAC)
	for i := range 5 {
		a.WriteTo([]byte{byte(i)}, to)
	}
	buf := make([]byte, b.MTU())
	if got, _ := readOne(t, b, buf); got[0] != 0 {
		t.Fatalf("first frame %v", got)
	}
	if b.rcount-b.rnext != 4 {
		t.Fatalf("%d frames left in the batch, want 4: the test no longer tests batches", b.rcount-b.rnext)
	}
	// A deadline in the past fails at once, though frames wait.
	b.SetReadDeadline(time.Now().Add(-time.Second))
	if _, _, err := b.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrom past its deadline with frames waiting: %v", err)
	}
	// Clearing it hands them out in order; so does a deadline in the future.
	b.SetReadDeadline(time.Time{})
	if got, _ := readOne(t, b, buf); got[0] != 1 {
		t.Fatalf("second frame %v", got)
	}
	b.SetDeadline(time.Now().Add(time.Hour))
	if n, _, err := b.ReadFrom(buf); err != nil || buf[0] != 2 || n != 1 {
		t.Fatalf("third frame: %v %v", buf[:n], err)
	}
	// A short buffer drops only the frame it could not hold.
	if _, _, err := b.ReadFrom(buf[:0]); !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("ReadFrom into an empty buffer: %v", err)
	}
	if got, _ := readOne(t, b, buf); got[0] != 4 {
		t.Fatalf("fifth frame %v", got)
	}
	// After Close, waiting frames are gone.
	a.WriteTo([]byte{5}, to)
	a.WriteTo([]byte{6}, to)
	readOne(t, b, buf)
	b.Close()
	if _, _, err := b.ReadFrom(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom after Close with a frame waiting: %v", err)
	}
}

// TestUnprivileged runs where the other tests skip: as a user without
// CAP_NET_RAW, opening a real interface must fail with ErrPermission and
// say what to do.
func TestUnprivileged(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root; TestOpenErrors/permission drops CAP_NET_RAW instead")
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagLoopback != 0 || len(ifi.HardwareAddr) != 6 {
			continue
		}
		l, err := Open(ifi.Name, Config{})
		if err == nil {
			l.Close()
			t.Skip("this process may open raw sockets (cap_net_raw)")
		}
		if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "setcap cap_net_raw+ep") {
			t.Fatalf("Open(%q) as an unprivileged user: %v, want ErrPermission with advice", ifi.Name, err)
		}
		return
	}
	t.Skip("no Ethernet interface that is up to try")
}
