package peer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2plink/p2plink/link"
	"github.com/p2plink/p2plink/link/linktest"
)

type pair struct {
	ea, eb *Endpoint
	sa, sb *Session
	pa, pb *linktest.FrameEnd
}

func testConfig(t testing.TB, name string) Config {
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return Config{Identity: id, Name: name}
}

func endpoints(t testing.TB, pc linktest.PipeConfig, ca, cb Config) (*Endpoint, *Endpoint, *linktest.FrameEnd, *linktest.FrameEnd) {
	t.Helper()
	a, b := linktest.NewFramePipe(pc)
	ea, err := NewEndpoint(a, ca)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := NewEndpoint(b, cb)
	if err != nil {
		t.Fatal(err)
	}
	return ea, eb, a, b
}

func connect(t testing.TB, pc linktest.PipeConfig, ca, cb Config) *pair {
	t.Helper()
	ea, eb, a, b := endpoints(t, pc, ca, cb)
	p := &pair{ea: ea, eb: eb, pa: a, pb: b}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var errA, errB error
	wg.Add(2)
	go func() { defer wg.Done(); p.sa, errA = ea.Connect(ctx, nil) }()
	go func() { defer wg.Done(); p.sb, errB = eb.Connect(ctx, nil) }()
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("connect: %v / %v", errA, errB)
	}
	return p
}

func (p *pair) close() {
	p.ea.Close()
	p.eb.Close()
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

// transfer sends data over a new stream from a to b and checks it arrives
// whole.
func transfer(t testing.TB, from, to *Session, data []byte) {
	t.Helper()
	ctx := context.Background()
	errc := make(chan error, 1)
	go func() {
		st, err := from.OpenStream(ctx, "test", PrioBulk)
		if err != nil {
			errc <- err
			return
		}
		if _, err := st.Write(data); err != nil {
			errc <- err
			return
		}
		errc <- st.CloseWrite()
	}()
	st, err := to.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Service() != "test" {
		t.Fatalf("service %q", st.Service())
	}
	got, err := io.ReadAll(st)
	if err != nil {
		t.Fatalf("read: %v (after %d of %d bytes)", err, len(got), len(data))
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("received %d bytes that differ from the %d sent", len(got), len(data))
	}
	st.Close()
}

func TestHandshakeAndIdentity(t *testing.T) {
	ca, cb := testConfig(t, "alice"), testConfig(t, "bob")
	p := connect(t, linktest.PipeConfig{}, ca, cb)
	defer p.close()
	if got := p.sa.Peer(); got.Name != "bob" || got.Fingerprint != cb.Identity.Fingerprint() {
		t.Errorf("a sees %+v, want bob %s", got, cb.Identity.Fingerprint())
	}
	if got := p.sb.Peer(); got.Name != "alice" || got.Fingerprint != ca.Identity.Fingerprint() {
		t.Errorf("b sees %+v, want alice", got)
	}
	transfer(t, p.sa, p.sb, []byte("hello over an encrypted link"))
	transfer(t, p.sb, p.sa, []byte("and back"))
}

func TestEncryptedOnTheWire(t *testing.T) {
	// A tap between the ends records every frame; the secret never shows.
	secret := bytes.Repeat([]byte("TOP-SECRET-PAYLOAD"), 50)
	ca, cb := testConfig(t, "a"), testConfig(t, "b")
	tp := tapped(t, ca, cb, func([]byte) bool { return true })
	transfer(t, tp.sa, tp.sb, secret)
	seen := tp.frames()
	if len(seen) < 5 {
		t.Fatalf("tap saw only %d frames", len(seen))
	}
	for _, f := range seen {
		if bytes.Contains(f, []byte("TOP-SECRET")) {
			t.Fatal("plaintext seen on the wire")
		}
	}
}

func TestReliableOverLossyLink(t *testing.T) {
	for _, tc := range []struct {
		name string
		pc   linktest.PipeConfig
	}{
		{"loss10", linktest.PipeConfig{Loss: 0.10, Seed: 1}},
		{"loss30+dup", linktest.PipeConfig{Loss: 0.30, Duplicate: 0.1, Seed: 2}},
		{"slowline", linktest.PipeConfig{Loss: 0.05, Bandwidth: 2_000_000, Latency: time.Millisecond, Seed: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := connect(t, tc.pc, testConfig(t, "a"), testConfig(t, "b"))
				defer p.close()
				data := randBytes(7, 1<<20)
				transfer(t, p.sa, p.sb, data)
				if st := p.sa.Stats(); st.Retransmits == 0 {
					t.Errorf("no retransmissions on a lossy link: %+v", st)
				}
			})
		})
	}
}

func TestBothWaysAtOnce(t *testing.T) {
	p := connect(t, linktest.PipeConfig{Loss: 0.05, Seed: 9}, testConfig(t, "a"), testConfig(t, "b"))
	defer p.close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); transfer(t, p.sa, p.sb, randBytes(1, 300_000)) }()
	go func() { defer wg.Done(); transfer(t, p.sb, p.sa, randBytes(2, 300_000)) }()
	wg.Wait()
}

func TestManyStreams(t *testing.T) {
	p := connect(t, linktest.PipeConfig{}, testConfig(t, "a"), testConfig(t, "b"))
	defer p.close()
	ctx := context.Background()
	const n = 20
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := p.sa.OpenStream(ctx, "echo", PrioNormal)
			if err != nil {
				t.Error(err)
				return
			}
			msg := randBytes(uint64(i), 10_000+i)
			st.Write(msg)
			st.CloseWrite()
			got, err := io.ReadAll(st)
			if err != nil || !bytes.Equal(got, msg) {
				t.Errorf("stream %d: echo differs (%v)", i, err)
			}
		}()
	}
	for i := 0; i < n; i++ {
		st, err := p.sb.AcceptStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			io.Copy(st, st)
			st.CloseWrite()
		}()
	}
	wg.Wait()
}

// A chat line written during a bulk transfer overtakes the bulk data queued
// before it.
func TestPriorityOvertakesBulk(t *testing.T) {
	synctest.Test(t, testPriorityOvertakesBulk)
}

func testPriorityOvertakesBulk(t *testing.T) {
	p := connect(t, linktest.PipeConfig{Bandwidth: 200_000, MTU: 1500}, testConfig(t, "a"), testConfig(t, "b"))
	defer p.close()
	ctx := context.Background()
	bulk, _ := p.sa.OpenStream(ctx, "bulk", PrioBulk)
	chat, _ := p.sa.OpenStream(ctx, "chat", PrioInteractive)
	bulkData := randBytes(3, 200_000) // one second of this line
	go bulk.Write(bulkData)
	time.Sleep(50 * time.Millisecond)
	chat.Write([]byte("hi!"))
	chat.CloseWrite()
	var bulkRead int
	var wg sync.WaitGroup
	streams := map[string]*Stream{}
	for i := 0; i < 2; i++ {
		st, _ := p.sb.AcceptStream(ctx)
		streams[st.Service()] = st
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 4096)
		for {
			n, err := streams["bulk"].Read(buf)
			mu.Lock()
			bulkRead += n
			mu.Unlock()
			if err != nil || bulkRead == len(bulkData) {
				return
			}
		}
	}()
	got, err := io.ReadAll(streams["chat"])
	if err != nil || string(got) != "hi!" {
		t.Fatalf("chat got %q %v", got, err)
	}
	mu.Lock()
	at := bulkRead
	mu.Unlock()
	if at > len(bulkData)/2 {
		t.Errorf("chat line arrived after %d of %d bulk bytes: it waited behind bulk data", at, len(bulkData))
	}
	wg.Wait()
}

var mu sync.Mutex

func TestVersionMismatchRefused(t *testing.T) {
	a, b := linktest.NewFramePipe(linktest.PipeConfig{})
	ea, _ := NewEndpoint(a, testConfig(t, "a"))
	defer ea.Close()
	// b speaks version 9: a hand-made hello.
	hello := append([]byte{kindHello}, helloMagic[:]...)
	hello = append(hello, 9, 1, 2, 3, 4, 5, 6, 7, 8)
	b.WriteTo(hello, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := ea.Connect(ctx, nil)
	if !errors.Is(err, ErrVersion) {
		t.Fatalf("err %v, want ErrVersion", err)
	}
	// b is told why.
	buf := make([]byte, 1500)
	b.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		n, _, err := b.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no reject received: %v", err)
		}
		if buf[0] == kindReject {
			if buf[1] != ProtocolVersion || !bytes.Contains(buf[:n], []byte("version")) {
				t.Fatalf("reject %q", buf[:n])
			}
			break
		}
	}
}

func TestKeyPinning(t *testing.T) {
	dir := t.TempDir()
	kp := OpenKnownPeers(filepath.Join(dir, "known_peers"))
	ca := testConfig(t, "alice")
	ca.KnownPeers = kp
	cb := testConfig(t, "bob")
	p := connect(t, linktest.PipeConfig{}, ca, cb)
	if !p.sa.Peer().Pinned {
		t.Error("first contact did not pin bob")
	}
	p.close()
	// Same bob again: accepted, not newly pinned.
	p = connect(t, linktest.PipeConfig{}, ca, cb)
	if p.sa.Peer().Pinned {
		t.Error("bob pinned twice")
	}
	p.close()
	// An impostor named bob: refused loudly.
	imp := testConfig(t, "bob")
	ea, eb, _, _ := endpoints(t, linktest.PipeConfig{}, ca, imp)
	defer ea.Close()
	defer eb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go eb.Connect(ctx, nil)
	_, err := ea.Connect(ctx, nil)
	if !errors.Is(err, ErrKeyChanged) {
		t.Fatalf("impostor: err %v, want ErrKeyChanged", err)
	}
}

func TestRequireFingerprint(t *testing.T) {
	ca, cb := testConfig(t, "a"), testConfig(t, "b")
	ca.RequireFingerprint = "AAAA-BBBB-CCCC-DDDD"
	ea, eb, _, _ := endpoints(t, linktest.PipeConfig{}, ca, cb)
	defer ea.Close()
	defer eb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go eb.Connect(ctx, nil)
	if _, err := ea.Connect(ctx, nil); !errors.Is(err, ErrFingerprintMismatch) {
		t.Fatalf("err %v, want ErrFingerprintMismatch", err)
	}
	ca.RequireFingerprint = cb.Identity.Fingerprint()
	p := connect(t, linktest.PipeConfig{}, ca, cb)
	p.close()
}

func TestGarbageFramesIgnored(t *testing.T) {
	p := connect(t, linktest.PipeConfig{}, testConfig(t, "a"), testConfig(t, "b"))
	defer p.close()
	// Inject forged packets of every kind straight onto the link towards a.
	inj := p.pb
	r := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 500; i++ {
		f := make([]byte, 1+r.IntN(200))
		for j := range f {
			f[j] = byte(r.UintN(256))
		}
		f[0] = byte(1 + i%8)
		if f[0] == kindHello {
			f[0] = kindData
		}
		inj.WriteTo(f, nil)
	}
	transfer(t, p.sb, p.sa, randBytes(5, 100_000))
	if p.sa.Stats().Rejected == 0 {
		t.Error("forged packets not counted as rejected")
	}
}

func TestDeadPeerDetected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := testConfig(t, "a"), testConfig(t, "b")
		ca.DeadPeerTimeout = 10 * time.Second
		p := connect(t, linktest.PipeConfig{}, ca, cb)
		defer p.close()
		p.pa.Unplug()
		<-p.sa.Done()
		if !errors.Is(p.sa.Err(), ErrPeerGone) {
			t.Fatalf("err %v, want ErrPeerGone", p.sa.Err())
		}
	})
}

// A cable pulled mid-transfer and put back within the timeout: the transfer
// carries on and completes intact.
func TestUnplugMidTransferResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := connect(t, linktest.PipeConfig{Bandwidth: 1_000_000}, testConfig(t, "a"), testConfig(t, "b"))
		defer p.close()
		data := randBytes(11, 2<<20)
		done := make(chan struct{})
		go func() {
			defer close(done)
			transfer(t, p.sa, p.sb, data)
		}()
		time.Sleep(500 * time.Millisecond)
		p.pa.Unplug()
		time.Sleep(5 * time.Second)
		p.pa.Replug()
		<-done
		if p.sa.Err() != nil {
			t.Fatalf("session ended: %v", p.sa.Err())
		}
	})
}

func TestPeerRestartDetected(t *testing.T) {
	synctest.Test(t, testPeerRestartDetected)
}

func testPeerRestartDetected(t *testing.T) {
	a, b := linktest.NewFramePipe(linktest.PipeConfig{})
	ca, cb := testConfig(t, "a"), testConfig(t, "b")
	ea, _ := NewEndpoint(a, ca)
	defer ea.Close()
	eb := newTestEndpoint(t, b, cb)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go eb.Connect(ctx, nil)
	sa, err := ea.Connect(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// b "restarts": a new session with a new nonce over the same link.
	sb, _ := eb.Connect(ctx, nil)
	sb.fail(errors.New("crash"))
	sb2, err := eb.Connect(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-sa.Done()
	if !errors.Is(sa.Err(), ErrPeerRestarted) {
		t.Fatalf("old session: %v, want ErrPeerRestarted", sa.Err())
	}
	sa2, err := ea.Connect(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	transfer(t, sb2, sa2, []byte("after restart"))
}

func newTestEndpoint(t *testing.T, l link.Link, c Config) *Endpoint {
	e, err := NewEndpoint(l, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestSegmentAdaptsToDamage(t *testing.T) {
	synctest.Test(t, testSegmentAdaptsToDamage)
}

func testSegmentAdaptsToDamage(t *testing.T) {
	// 20 % of frames lost: segments shrink from the MTU.
	p := connect(t, linktest.PipeConfig{Loss: 0.2, Seed: 4, MTU: 4096}, testConfig(t, "a"), testConfig(t, "b"))
	defer p.close()
	transfer(t, p.sa, p.sb, randBytes(3, 1<<20))
	if seg := p.sa.Stats().Segment; seg >= 4096-pktOverhed {
		t.Errorf("segment %d did not shrink on a lossy line", seg)
	}
	q := connect(t, linktest.PipeConfig{MTU: 4096}, testConfig(t, "a"), testConfig(t, "b"))
	defer q.close()
	transfer(t, q.sa, q.sb, randBytes(3, 1<<20))
	if seg := q.sa.Stats().Segment; seg != 4096-pktOverhed {
		t.Errorf("segment %d on a clean line, want the MTU's %d", seg, 4096-pktOverhed)
	}
}

// Close waits for the data already written, tells the peer, and returns
// promptly: the peer's session ends with ErrPeerClosed.
func TestGracefulClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := connect(t, linktest.PipeConfig{Bandwidth: 100_000}, testConfig(t, "a"), testConfig(t, "b"))
		defer p.close()
		ctx := context.Background()
		st, _ := p.sa.OpenStream(ctx, "x", PrioBulk)
		data := randBytes(1, 50_000)
		st.Write(data)
		st.CloseWrite()
		start := time.Now()
		p.sa.Close()
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Close took %v", d)
		}
		rs, err := p.sb.AcceptStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rs)
		if !bytes.Equal(got, data) {
			t.Errorf("got %d of %d bytes written before Close", len(got), len(data))
		}
		<-p.sb.Done()
		if !errors.Is(p.sb.Err(), ErrPeerClosed) {
			t.Errorf("peer's session ended with %v, want ErrPeerClosed", p.sb.Err())
		}
	})
}

// Handshake packets recorded on the wire and replayed into an established
// session are ignored: the session carries on.
func TestReplayedHandshakeIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tp := tapped(t, testConfig(t, "a"), testConfig(t, "b"), func(f []byte) bool {
			return f[0] != kindData && f[0] != kindCtrl // the handshake
		})
		replay := tp.frames()
		if len(replay) == 0 {
			t.Fatal("nothing recorded")
		}
		for _, f := range replay {
			tp.toB.WriteTo(f, nil)
		}
		time.Sleep(time.Second)
		transfer(t, tp.sa, tp.sb, randBytes(9, 10_000))
		if tp.sb.Err() != nil {
			t.Fatalf("session ended after replay: %v", tp.sb.Err())
		}
	})
}

// batchLink gives a frame pipe end a WriteBatch, as ethnet has.
type batchLink struct {
	*linktest.FrameEnd
	mu      sync.Mutex
	batches int
	frames  int
}

func (b *batchLink) WriteBatch(ps [][]byte, addr net.Addr) (int, error) {
	b.mu.Lock()
	b.batches++
	b.frames += len(ps)
	b.mu.Unlock()
	for i, p := range ps {
		if _, err := b.WriteTo(p, addr); err != nil {
			return i, err
		}
	}
	return len(ps), nil
}

// On a link that sends batches, the writer hands it several packets at
// once, and the data still arrives whole through loss.
func TestBatchedWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := linktest.NewFramePipe(linktest.PipeConfig{Loss: 0.05, Seed: 3, QueueLen: 256})
		ba := &batchLink{FrameEnd: a}
		ea, _ := NewEndpoint(ba, testConfig(t, "a"))
		eb, _ := NewEndpoint(b, testConfig(t, "b"))
		defer ea.Close()
		defer eb.Close()
		ctx := context.Background()
		go eb.Connect(ctx, nil)
		sa, err := ea.Connect(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		sb, _ := eb.Connect(ctx, nil)
		transfer(t, sa, sb, randBytes(4, 1<<20))
		ba.mu.Lock()
		defer ba.mu.Unlock()
		if ba.batches == 0 || ba.frames < 2*ba.batches {
			t.Fatalf("%d batches of %d frames: the writer did not batch", ba.batches, ba.frames)
		}
	})
}

// tap is a session whose frames pass through a relay that records them.
type tap struct {
	sa, sb *Session
	toB    link.Link // writes here reach b as if from a
	mu     sync.Mutex
	seen   [][]byte
}

func (tp *tap) frames() [][]byte {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([][]byte(nil), tp.seen...)
}

// tapped connects two peers through a relay that records every frame that
// keep selects, in both directions.
func tapped(t *testing.T, ca, cb Config, keep func([]byte) bool) *tap {
	t.Helper()
	a, tapA := linktest.NewFramePipe(linktest.PipeConfig{})
	tapB, b := linktest.NewFramePipe(linktest.PipeConfig{})
	tp := &tap{toB: tapB}
	relay := func(from, to link.Link) {
		buf := make([]byte, 1500)
		for {
			n, _, err := from.ReadFrom(buf)
			if err != nil {
				return
			}
			if keep(buf[:n]) {
				tp.mu.Lock()
				tp.seen = append(tp.seen, bytes.Clone(buf[:n]))
				tp.mu.Unlock()
			}
			to.WriteTo(buf[:n], nil)
		}
	}
	go relay(tapA, tapB)
	go relay(tapB, tapA)
	ea := newTestEndpoint(t, a, ca)
	eb := newTestEndpoint(t, b, cb)
	t.Cleanup(func() { tapA.Close(); tapB.Close() })
	ctx := context.Background()
	go eb.Connect(ctx, nil)
	var err error
	if tp.sa, err = ea.Connect(ctx, nil); err != nil {
		t.Fatal(err)
	}
	tp.sb, _ = eb.Connect(ctx, nil)
	return tp
}

// On a clean link with jumbo frames, segments grow to the MTU.
func TestSegmentReachesJumboMTU(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := connect(t, linktest.PipeConfig{MTU: 9000}, testConfig(t, "a"), testConfig(t, "b"))
		defer p.close()
		transfer(t, p.sa, p.sb, randBytes(3, 4<<20))
		if seg := p.sa.Stats().Segment; seg != 9000-pktOverhed {
			t.Errorf("segment %d on a clean jumbo link, want %d", seg, 9000-pktOverhed)
		}
	})
}
