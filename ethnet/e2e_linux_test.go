package ethnet_test

// End-to-end tests: peers (package peer) over ethnet on real kernel sockets,
// in network namespaces joined by a Linux bridge or a veth pair. They need
// root and skip with the reason otherwise (netns.Skip).

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdlayher/packet"

	"github.com/p2plink/p2plink/ethnet"
	"github.com/p2plink/p2plink/ethnet/internal/netns"
	"github.com/p2plink/p2plink/peer"
	"github.com/p2plink/p2plink/peer/xfer"
)

const etherType = 0x88B5

// node is one peer on a test segment: its host, link and endpoint, and
// what its services received.
type node struct {
	host *netns.Host
	link *ethnet.Link
	ep   *peer.Endpoint
	name string
	fp   string // its identity's fingerprint
	dir  string // where the "xfer" service stores files

	wg       sync.WaitGroup // the service goroutines
	mu       sync.Mutex
	served   map[*peer.Session]bool
	messages []string // what the "msg" service read, one entry per stream
	xferErrs []error  // errors of the "xfer" service
	msgWake  chan struct{}
}

// startNode opens the host's interface inside its namespace and starts a
// peer endpoint on it, serving "echo" (bytes back), "msg" (one message per
// stream) and "xfer" (xfer.Receive into a temporary directory) until the
// test ends.
func startNode(t *testing.T, h *netns.Host, name string, cfg peer.Config) *node {
	t.Helper()
	var l *ethnet.Link
	if err := h.Do(func() (err error) {
		l, err = ethnet.Open(h.IfName, ethnet.Config{})
		return err
	}); err != nil {
		t.Fatalf("opening %s in %s: %v", h.IfName, h.NS, err)
	}
	id, err := peer.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Identity, cfg.Name = id, name
	ep, err := peer.NewEndpoint(l, cfg)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	n := &node{host: h, link: l, ep: ep, name: name, fp: id.Fingerprint(), dir: t.TempDir(), msgWake: make(chan struct{}, 1),
		served: make(map[*peer.Session]bool)}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.serve()
	}()
	t.Cleanup(func() {
		ep.Close()
		n.wg.Wait()
	})
	return n
}

// serve accepts sessions until the endpoint closes.
func (n *node) serve() {
	for {
		s, err := n.ep.Accept(context.Background())
		if err != nil {
			return
		}
		n.serveSession(s)
	}
}

// serveSession answers the streams the peer opens on s, once per session:
// a session this node started (Connect) is not returned by Accept, and the
// peer may open streams on it too.
func (n *node) serveSession(s *peer.Session) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.served[s] {
		return
	}
	n.served[s] = true
	ctx := context.Background()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			st, err := s.AcceptStream(ctx)
			if err != nil {
				return
			}
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				n.handle(ctx, st)
			}()
		}
	}()
}

func (n *node) handle(ctx context.Context, st *peer.Stream) {
	defer st.Close()
	switch st.Service() {
	case "echo":
		io.Copy(st, st)
	case "msg":
		b, err := io.ReadAll(io.LimitReader(st, 4096))
		if err != nil {
			return
		}
		n.mu.Lock()
		n.messages = append(n.messages, string(b))
		n.mu.Unlock()
		select {
		case n.msgWake <- struct{}{}:
		default:
		}
	case "xfer":
		if _, err := xfer.Receive(ctx, st, n.dir, xfer.ReceiveOptions{}); err != nil {
			n.mu.Lock()
			n.xferErrs = append(n.xferErrs, err)
			n.mu.Unlock()
		}
	}
}

// connect finds the neighbor called name and starts a session with it.
func (n *node) connect(ctx context.Context, name string) (*peer.Session, error) {
	nb, err := n.ep.FindNeighbor(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%s looking for %s: %w", n.name, name, err)
	}
	s, err := n.ep.ConnectNeighbor(ctx, nb)
	if err != nil {
		return nil, fmt.Errorf("%s connecting to %s: %w", n.name, name, err)
	}
	n.serveSession(s)
	return s, nil
}

// randomFile writes size random bytes to a new file and returns its path
// and SHA-256.
func randomFile(t *testing.T, size int) (string, [32]byte) {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	p := filepath.Join(t.TempDir(), "payload.bin")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, sha256.Sum256(b)
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the received file: %v", err)
	}
	return sha256.Sum256(b)
}

// sendFile sends path to the neighbor called to over a fresh "xfer" stream
// of s.
func sendFile(ctx context.Context, s *peer.Session, path string, opts xfer.SendOptions) (xfer.Result, error) {
	st, err := s.OpenStream(ctx, "xfer", peer.PrioBulk)
	if err != nil {
		return xfer.Result{}, err
	}
	return xfer.Send(ctx, st, []string{path}, opts)
}

// echoCheck sends size random bytes through the peer's echo service and
// checks that the same bytes come back.
func echoCheck(ctx context.Context, s *peer.Session, size int) error {
	st, err := s.OpenStream(ctx, "echo", peer.PrioNormal)
	if err != nil {
		return err
	}
	defer st.Close()
	want := make([]byte, size)
	rand.Read(want)
	werr := make(chan error, 1)
	go func() {
		_, err := st.Write(want)
		if err == nil {
			err = st.CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(st)
	if err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("echo of %d bytes came back as %d different bytes", size, len(got))
	}
	return nil
}

// TestSegmentOfFive runs five peers on one bridge: discovery, sessions to
// several peers at once, a verified file transfer with the kernel's drop
// counter at zero, and a message to everyone.
func TestSegmentOfFive(t *testing.T) {
	const n = 5
	seg := netns.NewBridged(t, n, 1500)
	start := time.Now()
	nodes := make([]*node, n)
	for i, h := range seg.Hosts {
		nodes[i] = startNode(t, h, fmt.Sprintf("host%d", i), peer.Config{})
	}

	t.Run("discovery", func(t *testing.T) {
		// Target: everyone knows everyone within 2 s of start. Wall-clock
		// time on a loaded machine varies, so the test allows 2 s plus a
		// generous margin and logs what it measured.
		const limit = 2*time.Second + 3*time.Second
		for {
			missing := ""
			for i, nd := range nodes {
				if got := len(nd.ep.Neighbors()); got != n-1 {
					missing += fmt.Sprintf(" host%d knows %d;", i, got)
				}
			}
			if missing == "" {
				break
			}
			if time.Since(start) > limit {
				t.Fatalf("discovery incomplete %v after start:%s", time.Since(start).Round(time.Millisecond), missing)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("all %d peers discovered each other %v after start (target 2 s)", n, time.Since(start).Round(time.Millisecond))
		for i, nd := range nodes {
			for _, nb := range nd.ep.Neighbors() {
				var j int
				if _, err := fmt.Sscanf(nb.Name, "host%d", &j); err != nil || j == i || j >= n {
					t.Errorf("host%d lists a neighbor %q", i, nb.Name)
					continue
				}
				other := nodes[j]
				if nb.Fingerprint != other.fp {
					t.Errorf("host%d: neighbor %s has fingerprint %s, want %s", i, nb.Name, nb.Fingerprint, other.fp)
				}
				if want := seg.Hosts[j].MAC.String(); nb.Addr.String() != want {
					t.Errorf("host%d: neighbor %s at %v, want %s", i, nb.Name, nb.Addr, want)
				}
				if time.Since(nb.LastSeen) > 10*time.Second {
					t.Errorf("host%d: neighbor %s last seen %v ago", i, nb.Name, time.Since(nb.LastSeen))
				}
			}
		}
	})

	t.Run("sessions at once", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// host0 talks to every other host at the same time, and host1 to
		// host2 and host3 meanwhile.
		type pair struct{ from, to int }
		pairs := []pair{{0, 1}, {0, 2}, {0, 3}, {0, 4}, {1, 2}, {1, 3}}
		var wg sync.WaitGroup
		errs := make([]error, len(pairs))
		for k, p := range pairs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := nodes[p.from].connect(ctx, fmt.Sprintf("host%d", p.to))
				if err != nil {
					errs[k] = err
					return
				}
				if got := s.Peer().Name; got != fmt.Sprintf("host%d", p.to) {
					errs[k] = fmt.Errorf("host%d reached %q, want host%d", p.from, got, p.to)
					return
				}
				if err := echoCheck(ctx, s, 256<<10); err != nil {
					errs[k] = fmt.Errorf("host%d → host%d: %w", p.from, p.to, err)
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("transfer", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		path, sum := randomFile(t, 16<<20)
		rx := nodes[4]
		before := rx.link.Counters()
		s, err := nodes[3].connect(ctx, rx.name)
		if err != nil {
			t.Fatal(err)
		}
		res, err := sendFile(ctx, s, path, xfer.SendOptions{})
		if err != nil {
			t.Fatalf("sending: %v", err)
		}
		if res.Bytes != 16<<20 {
			t.Errorf("sent %d bytes of file data, want %d", res.Bytes, 16<<20)
		}
		if got := fileHash(t, filepath.Join(rx.dir, "payload.bin")); got != sum {
			t.Errorf("received file differs from the one sent")
		}
		after := rx.link.Counters()
		if d := after.KernelDrops - before.KernelDrops; d != 0 {
			t.Errorf("the kernel dropped %d frames during the transfer (receive buffer %d bytes)", d, after.ReadBuffer)
		}
		if d := nodes[3].link.Counters().Lost; d != 0 {
			t.Logf("sender's transmit queue dropped %d frames (resent by the protocol)", d)
		}
		t.Logf("receiver: %d frames queued by the kernel, %d dropped; session: %+v",
			after.KernelFrames-before.KernelFrames, after.KernelDrops-before.KernelDrops, s.Stats())
	})

	t.Run("message to everyone", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		from := nodes[2]
		msg := "hello everyone, from host2"
		nbs := from.ep.Neighbors()
		if len(nbs) != n-1 {
			t.Fatalf("host2 knows %d neighbors, want %d", len(nbs), n-1)
		}
		var wg sync.WaitGroup
		errs := make(chan error, len(nbs))
		for _, nb := range nbs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := from.ep.ConnectNeighbor(ctx, nb)
				if err != nil {
					errs <- fmt.Errorf("to %s: %w", nb.Name, err)
					return
				}
				from.serveSession(s)
				st, err := s.OpenStream(ctx, "msg", peer.PrioInteractive)
				if err == nil {
					_, err = io.WriteString(st, msg)
				}
				if err == nil {
					err = st.CloseWrite()
				}
				if err != nil {
					errs <- fmt.Errorf("to %s: %w", nb.Name, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for i, nd := range nodes {
			if i == 2 {
				continue
			}
			for !nd.hasMessage(msg) {
				select {
				case <-nd.msgWake:
				case <-ctx.Done():
					t.Fatalf("host%d never got the message", i)
				}
			}
		}
		if from.hasMessage(msg) {
			t.Errorf("host2 got its own message")
		}
	})
}

func (n *node) hasMessage(m string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, got := range n.messages {
		if got == m {
			return true
		}
	}
	return false
}

// rawConn opens a raw packet socket (whole frames, header included) for
// protocol proto on the host's interface, inside its namespace.
func rawConn(t *testing.T, h *netns.Host, proto int) *packet.Conn {
	t.Helper()
	var c *packet.Conn
	if err := h.Do(func() error {
		ifi, err := net.InterfaceByName(h.IfName)
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, proto, nil)
		return err
	}); err != nil {
		t.Fatalf("raw socket in %s: %v", h.NS, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func frame(dst, src net.HardwareAddr, typ uint16, body []byte) []byte {
	f := make([]byte, 0, 14+len(body))
	f = append(f, dst...)
	f = append(f, src...)
	f = append(f, byte(typ>>8), byte(typ))
	return append(f, body...)
}

// Packet kinds of the peer protocol (peer/SPEC.md): the first byte of a
// frame's payload.
const (
	kindHello = 0x01
	kindHS1   = 0x02
	kindHS3   = 0x04
	kindData  = 0x05
	kindCtrl  = 0x06
)

// frameCapture is one frame a tap saw: the whole Ethernet frame and the
// peer packet kind it carries.
type frameCapture struct {
	frame []byte
	kind  byte
}

// capture reads frames from src arriving on tap until max are read or
// the tap is quiet for quiet.
func capture(tap *packet.Conn, src net.HardwareAddr, quiet time.Duration, max int) []frameCapture {
	var got []frameCapture
	buf := make([]byte, 9216)
	for len(got) < max {
		tap.SetReadDeadline(time.Now().Add(quiet))
		n, _, err := tap.ReadFrom(buf)
		if err != nil {
			break
		}
		// dst(6) src(6) type(2) version(1) length(2) payload
		if n > 17 && bytes.Equal(buf[6:12], src) {
			got = append(got, frameCapture{frame: bytes.Clone(buf[:n]), kind: buf[17]})
		}
	}
	tap.SetReadDeadline(time.Time{})
	return got
}

// TestReplayedHandshake records the handshake of a session on both peers'
// wires and has a stranger replay every handshake packet to the peer it was
// meant for once the session is established. A replay proves nothing new:
// the session must carry on.
func TestReplayedHandshake(t *testing.T) {
	seg := netns.NewBridged(t, 3, 1500)
	if out, err := exec.Command("ip", "-n", seg.Bridge, "link", "set", "port2", "type", "bridge_slave", "learning", "off").CombinedOutput(); err != nil {
		t.Fatalf("turning off learning on the stranger's bridge port: %v: %s", err, out)
	}
	cfg := peer.Config{DeadPeerTimeout: 5 * time.Second}
	a := startNode(t, seg.Hosts[0], "alice", cfg)
	b := startNode(t, seg.Hosts[1], "bob", cfg)
	stranger := rawConn(t, seg.Hosts[2], etherType)
	tapA, tapB := rawConn(t, a.host, etherType), rawConn(t, b.host, etherType)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	toA, toB := make(chan []frameCapture, 1), make(chan []frameCapture, 1)
	go func() { toA <- capture(tapA, b.host.MAC, time.Second, 256) }()
	go func() { toB <- capture(tapB, a.host.MAC, time.Second, 256) }()
	s, err := a.connect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := echoCheck(ctx, s, 16<<10); err != nil {
		t.Fatal(err)
	}
	type replay struct {
		frame []byte
		to    net.HardwareAddr
		kind  byte
	}
	var replays []replay
	for _, c := range <-toA {
		if c.kind >= kindHello && c.kind <= kindHS3 {
			replays = append(replays, replay{c.frame, a.host.MAC, c.kind})
		}
	}
	for _, c := range <-toB {
		if c.kind >= kindHello && c.kind <= kindHS3 {
			replays = append(replays, replay{c.frame, b.host.MAC, c.kind})
		}
	}
	kinds := map[byte]int{}
	for _, r := range replays {
		kinds[r.kind]++
	}
	for k := byte(kindHello); k <= kindHS3; k++ {
		if kinds[k] == 0 {
			t.Fatalf("captured no packet of kind %#x (hello and the three handshake messages); captured %v", k, kinds)
		}
	}
	for range 3 {
		for _, r := range replays {
			if _, err := stranger.WriteTo(r.frame, &packet.Addr{HardwareAddr: r.to}); err != nil {
				t.Fatalf("replaying: %v", err)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The session still carries data, well within the dead-peer timeout.
	ectx, ecancel := context.WithTimeout(ctx, 3*time.Second)
	defer ecancel()
	if err := echoCheck(ectx, s, 64<<10); err != nil {
		b.mu.Lock()
		for bs := range b.served {
			t.Logf("bob's session: err %v, %+v", bs.Err(), bs.Stats())
		}
		b.mu.Unlock()
		t.Fatalf("the session stopped carrying data after %d replayed handshake packets (%v by kind) (alice initiator: %v): %v (session: %v)",
			len(replays), kinds, s.Initiator(), err, s.Err())
	}
	if err := s.Err(); err != nil {
		t.Fatalf("the session ended after replayed handshake packets: %v", err)
	}
}

// TestStranger runs a transfer between two peers while a third host on the
// segment sends garbage of our EtherType, frames of another EtherType,
// frames with a spoofed source address, and replays of the session's own
// frames captured on the receiver's wire. The session must survive and
// deliver exactly what was sent.
func TestStranger(t *testing.T) {
	seg := netns.NewBridged(t, 3, 1500)
	// The bridge does not learn addresses on the stranger's port. Otherwise
	// its spoofed source addresses would steer the bridge's forwarding of
	// alice's and bob's frames to the stranger: a layer-2 attack that no
	// protocol above can stop (a switch with port security stops it).
	// The spoofed frames still reach bob.
	if out, err := exec.Command("ip", "-n", seg.Bridge, "link", "set", "port2", "type", "bridge_slave", "learning", "off").CombinedOutput(); err != nil {
		t.Fatalf("turning off learning on the stranger's bridge port: %v: %s", err, out)
	}
	a := startNode(t, seg.Hosts[0], "alice", peer.Config{})
	b := startNode(t, seg.Hosts[1], "bob", peer.Config{})
	strangerHost := seg.Hosts[2]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	stranger := rawConn(t, strangerHost, etherType)
	s, err := a.connect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	// A tap on bob's interface captures the session's frames as they
	// arrive (a socket bound to one protocol sees incoming frames only),
	// handshake over: data and control packets. TestReplayedHandshake
	// replays the handshake.
	tap := rawConn(t, b.host, etherType)
	done := make(chan []frameCapture, 1)
	go func() { done <- capture(tap, a.host.MAC, 2*time.Second, 64) }()
	if err := echoCheck(ctx, s, 64<<10); err != nil {
		t.Fatal(err)
	}
	var captured [][]byte
	for _, c := range <-done {
		if c.kind == kindData || c.kind == kindCtrl {
			captured = append(captured, c.frame)
		}
	}
	if len(captured) == 0 {
		t.Fatal("the tap on bob's interface captured no data packet from alice")
	}

	// The stranger's traffic, repeated until the transfer is done.
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	var sent atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		garbage := make([]byte, 1400)
		dst := &packet.Addr{HardwareAddr: b.host.MAC}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			rand.Read(garbage)
			frames := [][]byte{
				// garbage of our EtherType, to bob and to everyone
				frame(b.host.MAC, strangerHost.MAC, etherType, garbage[:1+i%1400]),
				frame(bcast, strangerHost.MAC, etherType, garbage[:60]),
				// a valid-looking header with a short, bogus packet
				frame(b.host.MAC, strangerHost.MAC, etherType, append([]byte{1, 0, 8}, garbage[:8]...)),
				// another EtherType
				frame(b.host.MAC, strangerHost.MAC, etherType+1, garbage[:200]),
				// spoofed sources: alice's address and bob's own
				frame(b.host.MAC, a.host.MAC, etherType, garbage[:300]),
				frame(b.host.MAC, b.host.MAC, etherType, garbage[:300]),
				// replays of the session's real frames, sent as alice
				captured[i%len(captured)],
			}
			for _, f := range frames {
				if _, err := stranger.WriteTo(f, dst); err == nil {
					sent.Add(1)
				}
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()

	path, sum := randomFile(t, 8<<20)
	_, serr := sendFile(ctx, s, path, xfer.SendOptions{})
	eerr := echoCheck(ctx, s, 256<<10)
	close(stop)
	wg.Wait()
	if serr != nil {
		t.Fatalf("transfer during the stranger's traffic: %v", serr)
	}
	if eerr != nil {
		t.Fatalf("echo after the stranger's traffic: %v", eerr)
	}
	if got := fileHash(t, filepath.Join(b.dir, "payload.bin")); got != sum {
		t.Fatal("received file differs from the one sent")
	}
	if err := s.Err(); err != nil {
		t.Fatalf("session ended: %v", err)
	}
	c := b.link.Counters()
	t.Logf("stranger sent %d frames; bob's link: malformed %d, own %d, foreign %d, frames in %d; alice's session %+v",
		sent.Load(), c.Malformed, c.Own, c.Foreign, c.FramesIn, s.Stats())
	if c.Malformed == 0 {
		t.Errorf("bob's link counted none of the stranger's malformed frames as malformed")
	}
	if c.Foreign != 0 {
		t.Errorf("%d frames of another EtherType reached bob's link", c.Foreign)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for bs := range b.served {
		t.Logf("bob's session with %s: %+v", bs.Peer().Name, bs.Stats())
	}
	if len(b.xferErrs) != 0 {
		t.Errorf("bob's xfer service failed: %v", b.xferErrs)
	}
}

// setLink sets the host's interface up or down.
func setLink(h *netns.Host, state string) error {
	out, err := exec.Command("ip", "-n", h.NS, "link", "set", h.IfName, state).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip link set %s %s in %s: %v: %s", h.IfName, state, h.NS, err, out)
	}
	return nil
}

// TestPeerVanishes takes the receiver's interface down in the middle of a
// transfer. Back within the dead-peer timeout, the transfer resumes and
// completes; gone for longer, the transfer fails with ErrPeerGone.
func TestPeerVanishes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		down     time.Duration
		deadPeer time.Duration
		resumes  bool
	}{
		{"back in time", 1500 * time.Millisecond, 10 * time.Second, true},
		{"gone too long", 4 * time.Second, 1500 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seg := netns.NewPair(t, 1500)
			cfg := peer.Config{DeadPeerTimeout: tc.deadPeer, KeepAlive: 200 * time.Millisecond}
			a := startNode(t, seg.Hosts[0], "alice", cfg)
			b := startNode(t, seg.Hosts[1], "bob", cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			s, err := a.connect(ctx, "bob")
			if err != nil {
				t.Fatal(err)
			}
			const size = 32 << 20
			path, sum := randomFile(t, size)

			var once sync.Once
			cut := make(chan error, 1)
			progress := func(p xfer.Progress) {
				if p.Done < size/4 {
					return
				}
				once.Do(func() {
					// Down before the sender goes on, however fast
					// the transfer; up again after tc.down.
					if err := setLink(b.host, "down"); err != nil {
						cut <- err
						return
					}
					go func() {
						time.Sleep(tc.down)
						cut <- setLink(b.host, "up")
					}()
				})
			}
			res, serr := sendFile(ctx, s, path, xfer.SendOptions{Progress: progress})
			var cutErr error
			select {
			case cutErr = <-cut: // bob came back before the transfer ended
			default:
				if serr == nil {
					t.Fatal("the transfer finished while bob's interface was down, or before it was taken down")
				}
				select {
				case cutErr = <-cut:
				case <-ctx.Done():
					t.Fatalf("the interface was never taken down (transfer: %v)", serr)
				}
			}
			if cutErr != nil {
				t.Fatal(cutErr)
			}
			t.Logf("send: %v; result %+v; session stats %+v", serr, res, s.Stats())
			if tc.resumes {
				if serr != nil {
					t.Fatalf("transfer did not survive %v without the peer: %v", tc.down, serr)
				}
				if got := fileHash(t, filepath.Join(b.dir, "payload.bin")); got != sum {
					t.Fatal("received file differs from the one sent")
				}
				return
			}
			if serr == nil {
				t.Fatalf("transfer completed although the peer was gone for %v (dead-peer timeout %v)", tc.down, tc.deadPeer)
			}
			if !errors.Is(serr, peer.ErrPeerGone) && !errors.Is(s.Err(), peer.ErrPeerGone) {
				t.Errorf("transfer failed with %v (session: %v), want an error wrapping peer.ErrPeerGone", serr, s.Err())
			}
			if _, err := os.Stat(filepath.Join(b.dir, "payload.bin")); err == nil {
				t.Error("a file was stored although the transfer failed")
			}
		})
	}
}
