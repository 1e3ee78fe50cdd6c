package linktest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/p2plink/p2plink/link"
)

// MakePair makes two connected ends of the link under test. stop releases
// whatever else the pair needs (a fake medium, a peer process); TestLink
// calls it after closing both ends. Returning a and b on one multi-peer
// link works too: TestLink sends to b.LocalAddr() when a is a
// link.Broadcaster.
type MakePair func(t *testing.T) (a, b link.Link, stop func())

// Options tunes TestLink to the link under test.
type Options struct {
	// Lossy says the link loses (or duplicates) frames: TestLink then
	// resends until a frame arrives, ignores extra copies of frames it
	// sent, and checks counts loosely. It never tolerates a corrupted
	// frame.
	Lossy bool
	// Wait is how long a frame may take to arrive. Default 5 s.
	Wait time.Duration
	// Retry is how long a lossy test waits before sending again. Default
	// 200 ms.
	Retry time.Duration
}

// TestLink checks a link driver against every sentence of the contract in
// package link, each as a subtest. It makes a fresh pair for each subtest
// with mk. Pass at most one Options. It counts goroutines, so do not run it
// in parallel with other tests.
func TestLink(t *testing.T, mk MakePair, opts ...Options) {
	s := &suite{mk: mk}
	if len(opts) > 0 {
		s.Options = opts[0]
	}
	if s.Wait <= 0 {
		s.Wait = 5 * time.Second
	}
	if s.Retry <= 0 {
		s.Retry = 200 * time.Millisecond
	}
	for _, c := range []struct {
		name string
		f    func(*testing.T, link.Link, link.Link)
	}{
		{"MTU", s.testMTU},
		{"WholeFrames", s.testWholeFrames},
		{"Addresses", s.testAddresses},
		{"WriteDoesNotRetain", s.testNotRetained},
		{"TooLarge", s.testTooLarge},
		{"ShortBuffer", s.testShortBuffer},
		{"PastDeadline", s.testPastDeadline},
		{"FutureDeadline", s.testFutureDeadline},
		{"DeadlineWhileBlocked", s.testDeadlineWhileBlocked},
		{"ZeroDeadlineClears", s.testZeroDeadline},
		{"Concurrent", s.testConcurrent},
		{"ConcurrentWriters", s.testConcurrentWriters},
		{"Stats", s.testStats},
		{"CloseUnblocksRead", s.testCloseUnblocks},
		{"CallsAfterClose", s.testAfterClose},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b, stop := mk(t)
			defer stop()
			defer b.Close()
			defer a.Close()
			c.f(t, a, b)
		})
	}
	t.Run("NoGoroutineLeak", s.testNoLeak)
}

type suite struct {
	Options
	mk MakePair

	mu   sync.Mutex
	sent map[string]bool // payloads sent, for spotting stale copies
}

// dst is the address a writes to, to reach b.
func dst(a, b link.Link) net.Addr {
	if _, ok := a.(link.Broadcaster); ok {
		return b.LocalAddr()
	}
	return nil
}

// payload returns a self-checking frame of n bytes numbered seq.
func payload(seq uint32, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(int(seq)*7 + i*13 + 1)
	}
	if n >= 4 {
		binary.BigEndian.PutUint32(p, seq)
	}
	return p
}

// checkPayload reports whether p is a frame payload made.
func checkPayload(p []byte) (uint32, bool) {
	if len(p) < 4 {
		return 0, false
	}
	seq := binary.BigEndian.Uint32(p)
	return seq, bytes.Equal(p, payload(seq, len(p)))
}

func (s *suite) remember(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sent == nil {
		s.sent = make(map[string]bool)
	}
	s.sent[string(p)] = true
}

func (s *suite) wasSent(p []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent[string(p)]
}

// exchange sends p from a to b (again and again on a lossy link) until b
// reads it, and returns the sender address b reports.
func (s *suite) exchange(t *testing.T, a, b link.Link, p []byte) net.Addr {
	t.Helper()
	s.remember(p)
	buf := make([]byte, b.MTU())
	tries, wait := 1, s.Wait
	if s.Lossy {
		tries, wait = max(1, int(s.Wait/s.Retry)), s.Retry
	}
	defer b.SetReadDeadline(time.Time{})
	defer a.SetWriteDeadline(time.Time{})
	for range tries {
		a.SetWriteDeadline(time.Now().Add(s.Wait))
		if _, err := a.WriteTo(p, dst(a, b)); err != nil {
			t.Fatalf("WriteTo of a %d-byte frame: %v", len(p), err)
		}
		if err := b.SetReadDeadline(time.Now().Add(wait)); err != nil {
			t.Fatalf("SetReadDeadline: %v", err)
		}
		for {
			n, from, err := b.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				t.Fatalf("ReadFrom waiting for a %d-byte frame: %v", len(p), err)
			}
			if bytes.Equal(buf[:n], p) {
				return from
			}
			if s.Lossy && s.wasSent(buf[:n]) {
				continue // a late or duplicate copy of an earlier frame
			}
			t.Fatalf("sent a %d-byte frame, received a different %d-byte frame: corrupted, or out of order on a lossless link", len(p), n)
		}
	}
	t.Fatalf("a %d-byte frame did not arrive within %v", len(p), s.Wait)
	return nil
}

// Sentence: MTU is the largest frame; it does not change.
func (s *suite) testMTU(t *testing.T, a, b link.Link) {
	if a.MTU() <= 0 || b.MTU() <= 0 {
		t.Fatalf("MTU %d and %d, want positive", a.MTU(), b.MTU())
	}
	if a.MTU() != a.MTU() {
		t.Fatal("MTU changed between calls")
	}
}

// Sentence: WriteTo sends p as one frame; ReadFrom copies the next frame
// into p. Frames arrive whole and unchanged, any size up to the MTU.
func (s *suite) testWholeFrames(t *testing.T, a, b link.Link) {
	mtu := min(a.MTU(), b.MTU())
	sizes := []int{0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 64, 100, 255, 256, 257, 511, 1000, 1023, 1024, 1025}
	sizes = append(sizes, mtu/2, mtu-1, mtu)
	seq := uint32(1)
	for _, n := range sizes {
		if n < 0 || n > mtu {
			continue
		}
		for _, dir := range [][2]link.Link{{a, b}, {b, a}} {
			s.exchange(t, dir[0], dir[1], payload(seq, n))
			seq++
		}
	}
	// Bytes that framing codecs treat specially, in every position.
	for _, fill := range []byte{0x00, 0xFF, 0x7E, 0x7D, 0xC0, 0xDB, 0x0A, 0x0D, 0x11, 0x13} {
		p := bytes.Repeat([]byte{fill}, min(mtu, 300))
		s.exchange(t, a, b, p)
	}
}

// Sentence: ReadFrom returns the sender's address: PeerAddr on a
// point-to-point link, and WriteTo accepts nil or PeerAddr there; a
// multi-peer link reports the sending station and carries broadcasts.
func (s *suite) testAddresses(t *testing.T, a, b link.Link) {
	if a.LocalAddr() == nil || b.LocalAddr() == nil {
		t.Fatal("LocalAddr is nil")
	}
	if br, ok := a.(link.Broadcaster); ok {
		from := s.exchange(t, a, b, payload(1, 10))
		if from == nil || from.String() != a.LocalAddr().String() {
			t.Fatalf("ReadFrom reported sender %v, want %v", from, a.LocalAddr())
		}
		// A broadcast reaches b.
		p := payload(2, 10)
		s.remember(p)
		if _, err := a.WriteTo(p, br.BroadcastAddr()); err != nil {
			t.Fatalf("WriteTo BroadcastAddr: %v", err)
		}
		if !s.Lossy {
			b.SetReadDeadline(time.Now().Add(s.Wait))
			buf := make([]byte, b.MTU())
			n, _, err := b.ReadFrom(buf)
			if err != nil || !bytes.Equal(buf[:n], p) {
				t.Fatalf("broadcast frame: got %d bytes, %v", n, err)
			}
		}
		return
	}
	from := s.exchange(t, a, b, payload(3, 10))
	if from == nil || from.Network() != link.PeerAddr.Network() || from.String() != link.PeerAddr.String() {
		t.Fatalf("ReadFrom reported sender %v, want link.PeerAddr", from)
	}
	// WriteTo accepts PeerAddr as well as nil.
	p := payload(4, 10)
	s.remember(p)
	if _, err := a.WriteTo(p, link.PeerAddr); err != nil {
		t.Fatalf("WriteTo link.PeerAddr: %v", err)
	}
	if !s.Lossy {
		b.SetReadDeadline(time.Now().Add(s.Wait))
		buf := make([]byte, b.MTU())
		n, _, err := b.ReadFrom(buf)
		if err != nil || !bytes.Equal(buf[:n], p) {
			t.Fatalf("frame sent to PeerAddr: got %d bytes, %v", n, err)
		}
	}
}

// Sentence: WriteTo does not retain p after it returns.
func (s *suite) testNotRetained(t *testing.T, a, b link.Link) {
	n := min(a.MTU(), 200)
	want := payload(5, n)
	s.remember(want)
	tries, wait := 1, s.Wait
	if s.Lossy {
		tries, wait = max(1, int(s.Wait/s.Retry)), s.Retry
	}
	buf := make([]byte, b.MTU())
	defer b.SetReadDeadline(time.Time{})
	for range tries {
		p := bytes.Clone(want)
		if _, err := a.WriteTo(p, dst(a, b)); err != nil {
			t.Fatal(err)
		}
		for i := range p {
			p[i] = ^p[i] // scribble over the caller's buffer
		}
		b.SetReadDeadline(time.Now().Add(wait))
		m, _, err := b.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) && s.Lossy {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:m], want) {
			t.Fatalf("received %d bytes that are not the frame as it was when WriteTo returned", m)
		}
		return
	}
	t.Fatalf("the frame did not arrive within %v", s.Wait)
}

// Sentence: a frame longer than MTU is refused with ErrFrameTooLarge and
// nothing is sent.
func (s *suite) testTooLarge(t *testing.T, a, b link.Link) {
	big := payload(6, a.MTU()+1)
	if n, err := a.WriteTo(big, dst(a, b)); !errors.Is(err, link.ErrFrameTooLarge) {
		t.Fatalf("WriteTo of MTU+1 bytes: %d, %v; want an error wrapping link.ErrFrameTooLarge", n, err)
	}
	big = payload(7, 2*a.MTU()+100)
	if _, err := a.WriteTo(big, dst(a, b)); !errors.Is(err, link.ErrFrameTooLarge) {
		t.Fatalf("WriteTo of 2*MTU+100 bytes: %v; want link.ErrFrameTooLarge", err)
	}
	// Nothing was sent: the next frame b reads is the next one a sends.
	s.exchange(t, a, b, payload(8, 20))
}

// Sentence: a frame that does not fit p is dropped and ReadFrom returns
// io.ErrShortBuffer.
func (s *suite) testShortBuffer(t *testing.T, a, b link.Link) {
	n := min(a.MTU(), 100)
	if n < 2 {
		t.Skip("MTU too small for a short-buffer test")
	}
	p := payload(9, n)
	s.remember(p)
	short := make([]byte, n-1)
	tries, wait := 1, s.Wait
	if s.Lossy {
		tries, wait = max(1, int(s.Wait/s.Retry)), s.Retry
	}
	got := false
	for i := 0; i < tries && !got; i++ {
		if _, err := a.WriteTo(p, dst(a, b)); err != nil {
			t.Fatal(err)
		}
		b.SetReadDeadline(time.Now().Add(wait))
		_, _, err := b.ReadFrom(short)
		switch {
		case errors.Is(err, io.ErrShortBuffer):
			got = true
		case errors.Is(err, os.ErrDeadlineExceeded) && s.Lossy:
		default:
			t.Fatalf("ReadFrom with a %d-byte buffer for a %d-byte frame: %v; want io.ErrShortBuffer", len(short), n, err)
		}
	}
	if !got {
		t.Fatalf("no frame arrived within %v", s.Wait)
	}
	b.SetReadDeadline(time.Time{})
	// The frame was dropped, not kept for the next call.
	next := payload(10, 30)
	if s.Lossy {
		s.exchange(t, a, b, next)
		return
	}
	if _, err := a.WriteTo(next, dst(a, b)); err != nil {
		t.Fatal(err)
	}
	b.SetReadDeadline(time.Now().Add(s.Wait))
	buf := make([]byte, b.MTU())
	m, _, err := b.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:m], next) {
		t.Fatalf("after a short read: %d bytes, %v; want the next frame (the short one dropped)", m, err)
	}
}

// watch fails the test and closes the link if f is still running after
// s.Wait: a link whose deadlines do not work would otherwise hang the suite.
func (s *suite) watch(t *testing.T, l link.Link, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(s.Wait):
		l.Close()
		<-done
		t.Fatalf("%s was still blocked after %v", what, s.Wait)
	}
}

// Sentence: a deadline in the past makes calls fail at once.
func (s *suite) testPastDeadline(t *testing.T, a, b link.Link) {
	past := time.Now().Add(-time.Second)
	if err := b.SetReadDeadline(past); err != nil {
		t.Fatal(err)
	}
	var err error
	s.watch(t, b, "ReadFrom past its deadline", func() { _, _, err = b.ReadFrom(make([]byte, b.MTU())) })
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrom past its deadline: %v; want os.ErrDeadlineExceeded", err)
	}
	if err := a.SetWriteDeadline(past); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteTo(payload(11, 10), dst(a, b)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WriteTo past its deadline: %v; want os.ErrDeadlineExceeded", err)
	}
	// SetDeadline sets both.
	a.SetWriteDeadline(time.Time{})
	b.SetReadDeadline(time.Time{})
	if err := a.SetDeadline(past); err != nil {
		t.Fatal(err)
	}
	s.watch(t, a, "ReadFrom after SetDeadline(past)", func() { _, _, err = a.ReadFrom(make([]byte, a.MTU())) })
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrom after SetDeadline(past): %v", err)
	}
	if _, err := a.WriteTo(nil, dst(a, b)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WriteTo after SetDeadline(past): %v", err)
	}
}

// Sentence: a call blocked past its deadline returns os.ErrDeadlineExceeded.
func (s *suite) testFutureDeadline(t *testing.T, a, b link.Link) {
	const d = 50 * time.Millisecond
	start := time.Now()
	b.SetReadDeadline(start.Add(d))
	var err error
	s.watch(t, b, "ReadFrom with a 50ms deadline", func() { _, _, err = b.ReadFrom(make([]byte, b.MTU())) })
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrom with nothing to read: %v; want os.ErrDeadlineExceeded", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("deadline error %v is not a net.Error with Timeout() true", err)
	}
	if el := time.Since(start); el < d {
		t.Fatalf("ReadFrom gave up after %v, before its %v deadline", el, d)
	}
}

// Sentence: deadlines may be set concurrently with blocked calls.
func (s *suite) testDeadlineWhileBlocked(t *testing.T, a, b link.Link) {
	for _, when := range []time.Duration{-time.Second, 20 * time.Millisecond} {
		b.SetReadDeadline(time.Time{})
		errc := make(chan error, 1)
		go func() {
			_, _, err := b.ReadFrom(make([]byte, b.MTU()))
			errc <- err
		}()
		time.Sleep(20 * time.Millisecond) // let ReadFrom block; no harm if not yet
		b.SetReadDeadline(time.Now().Add(when))
		select {
		case err := <-errc:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("blocked ReadFrom after SetReadDeadline(now%+v): %v", when, err)
			}
		case <-time.After(s.Wait):
			t.Fatalf("SetReadDeadline(now%+v) did not unblock a pending ReadFrom", when)
		}
	}
}

// Sentence: the zero time clears the deadline.
func (s *suite) testZeroDeadline(t *testing.T, a, b link.Link) {
	b.SetReadDeadline(time.Now().Add(-time.Second))
	a.SetWriteDeadline(time.Now().Add(-time.Second))
	b.SetReadDeadline(time.Time{})
	a.SetWriteDeadline(time.Time{})
	s.exchange(t, a, b, payload(12, 10)) // exchange clears b's deadline itself only after use
}

// frameStream writes frames seq first..first+n-1 from a, of varying sizes.
func frameStream(a, b link.Link, first uint32, n int) error {
	mtu := a.MTU()
	for i := range n {
		seq := first + uint32(i)
		size := min(mtu, 4+int(seq*37)%max(1, mtu-3))
		if mtu < 4 {
			return nil
		}
		if _, err := a.WriteTo(payload(seq, size), dst(a, b)); err != nil {
			return err
		}
	}
	return nil
}

// collect reads frames on b until it has want distinct sequence numbers in
// [first, first+want) or the link stays quiet for quiet. It fails on any
// frame that is not one of them, whole.
func collect(t *testing.T, b link.Link, first uint32, want int, quiet time.Duration) (distinct, dups int) {
	seen := make(map[uint32]bool)
	buf := make([]byte, b.MTU())
	defer b.SetReadDeadline(time.Time{})
	for len(seen) < want {
		b.SetReadDeadline(time.Now().Add(quiet))
		n, _, err := b.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Errorf("ReadFrom: %v", err)
			return len(seen), dups
		}
		seq, ok := checkPayload(buf[:n])
		if !ok || seq < first || seq >= first+uint32(want) {
			t.Errorf("received a %d-byte frame that was never sent whole (corrupted or torn)", n)
			return len(seen), dups
		}
		if seen[seq] {
			dups++
		}
		seen[seq] = true
	}
	return len(seen), dups
}

// quiet is how long a stream of frames may pause before the receiver
// decides the rest were lost.
func (s *suite) quiet() time.Duration {
	if s.Lossy {
		return 5 * s.Retry
	}
	return s.Wait
}

// Sentence: one reader and one writer may run concurrently (run it with
// the race detector).
func (s *suite) testConcurrent(t *testing.T, a, b link.Link) {
	if a.MTU() < 4 {
		t.Skip("MTU below 4 bytes")
	}
	const n = 300
	var wg sync.WaitGroup
	for i, dir := range [][2]link.Link{{a, b}, {b, a}} {
		first := uint32(1000 * (i + 1))
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := frameStream(dir[0], dir[1], first, n); err != nil {
				t.Errorf("WriteTo: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			got, dups := collect(t, dir[1], first, n, s.quiet())
			if !s.Lossy && (got != n || dups != 0) {
				t.Errorf("%d of %d frames arrived, %d twice", got, n, dups)
			}
			if s.Lossy && got == 0 {
				t.Errorf("none of %d frames arrived", n)
			}
		}()
	}
	wg.Wait()
}

// Sentence: the link serialises concurrent writers itself.
func (s *suite) testConcurrentWriters(t *testing.T, a, b link.Link) {
	if a.MTU() < 4 {
		t.Skip("MTU below 4 bytes")
	}
	const writers, n = 4, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := frameStream(a, b, 5000+uint32(w*n), n); err != nil {
				t.Errorf("WriteTo: %v", err)
			}
		}()
	}
	got, dups := collect(t, b, 5000, writers*n, s.quiet())
	wg.Wait()
	if !s.Lossy && (got != writers*n || dups != 0) {
		t.Errorf("%d of %d frames arrived, %d twice", got, writers*n, dups)
	}
}

// Sentence (link.Stats): counters count frames and bytes of WriteTo and
// ReadFrom, and only grow.
func (s *suite) testStats(t *testing.T, a, b link.Link) {
	sa, ok1 := a.(link.StatsReporter)
	sb, ok2 := b.(link.StatsReporter)
	if !ok1 || !ok2 {
		t.Skip("the link does not report Stats")
	}
	a0, b0 := sa.Stats(), sb.Stats()
	const k, size = 5, 40
	for i := range k {
		s.exchange(t, a, b, payload(uint32(20+i), size))
	}
	a1, b1 := sa.Stats(), sb.Stats()
	if s.Lossy {
		if a1.FramesOut < a0.FramesOut+k || b1.FramesIn < b0.FramesIn+k {
			t.Fatalf("after %d frames: sender %+v, receiver %+v", k, a1, b1)
		}
		return
	}
	if a1.FramesOut-a0.FramesOut != k || a1.BytesOut-a0.BytesOut != k*size {
		t.Errorf("sender counted %d frames, %d bytes out; want %d, %d", a1.FramesOut-a0.FramesOut, a1.BytesOut-a0.BytesOut, k, k*size)
	}
	if b1.FramesIn-b0.FramesIn != k || b1.BytesIn-b0.BytesIn != k*size {
		t.Errorf("receiver counted %d frames, %d bytes in; want %d, %d", b1.FramesIn-b0.FramesIn, b1.BytesIn-b0.BytesIn, k, k*size)
	}
	if b1.Dropped < b0.Dropped || b1.Garbage < b0.Garbage || a1.Dropped < a0.Dropped {
		t.Errorf("a counter went down: %+v then %+v", b0, b1)
	}
}

// Sentence: Close unblocks every pending call, which returns net.ErrClosed.
func (s *suite) testCloseUnblocks(t *testing.T, a, b link.Link) {
	errc := make(chan error, 1)
	go func() {
		_, _, err := b.ReadFrom(make([]byte, b.MTU()))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond) // let ReadFrom block; no harm if not yet
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadFrom pending at Close: %v; want an error wrapping net.ErrClosed", err)
		}
	case <-time.After(s.Wait):
		t.Fatal("Close did not unblock a pending ReadFrom")
	}
}

// Sentence: every call after Close returns net.ErrClosed; Close may be
// called more than once.
func (s *suite) testAfterClose(t *testing.T, a, b link.Link) {
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := a.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v; want nil or net.ErrClosed", err)
	}
	if _, _, err := a.ReadFrom(make([]byte, a.MTU())); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadFrom after Close: %v; want net.ErrClosed", err)
	}
	if _, err := a.WriteTo(payload(30, 10), dst(a, b)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo after Close: %v; want net.ErrClosed", err)
	}
	for name, set := range map[string]func(time.Time) error{
		"SetDeadline": a.SetDeadline, "SetReadDeadline": a.SetReadDeadline, "SetWriteDeadline": a.SetWriteDeadline,
	} {
		if err := set(time.Now()); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s after Close: %v; want nil or net.ErrClosed", name, err)
		}
	}
}

// Sentence: Close waits for every goroutine the link started.
func (s *suite) testNoLeak(t *testing.T) {
	before := goroutineBaseline()
	a, b, stop := s.mk(t)
	s.exchange(t, a, b, payload(40, 10))
	s.exchange(t, b, a, payload(41, 10))
	b.SetReadDeadline(time.Now().Add(10 * time.Millisecond)) // a timer to clean up
	a.Close()
	b.Close()
	stop()
	if err := settleGoroutines(before); err != nil {
		t.Fatal(err)
	}
}
