package serialnet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2plink/p2plink/framing"
	"github.com/p2plink/p2plink/link"
)

var _ link.Link = (*Link)(nil)
var _ link.StatsReporter = (*Link)(nil)

func payload(rng *rand.Rand, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(rng.UintN(256))
	}
	return p
}

func TestFramesBothWays(t *testing.T) {
	nm := newNullModem(t)
	cfg := testConfig(t)
	cfg.MTU = 2000
	a := openLink(t, nm.a.path, cfg)
	b := openLink(t, nm.b.path, cfg)

	const frames = 200
	sizes := func(seed uint64) [][]byte {
		rng := rand.New(rand.NewPCG(seed, 1))
		out := make([][]byte, frames)
		for i := range out {
			n := rng.IntN(cfg.MTU + 1)
			switch i {
			case 0:
				n = 0
			case 1:
				n = cfg.MTU
			}
			out[i] = payload(rng, n)
			if n > 0 && i%3 == 0 {
				clear(out[i][:n/2]) // zeros exercise COBS
			}
		}
		return out
	}
	send := map[*Link][][]byte{a: sizes(1), b: sizes(2)}

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for from, to := range map[*Link]*Link{a: b, b: a} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i, p := range send[from] {
				if n, err := from.WriteTo(p, link.PeerAddr); err != nil || n != len(p) {
					errs <- fmt.Errorf("WriteTo frame %d: %d, %v", i, n, err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			to.SetReadDeadline(time.Now().Add(20 * time.Second))
			buf := make([]byte, to.MTU())
			for i, want := range send[from] {
				n, addr, err := to.ReadFrom(buf)
				if err != nil {
					errs <- fmt.Errorf("ReadFrom frame %d: %v", i, err)
					return
				}
				if addr != link.PeerAddr {
					errs <- fmt.Errorf("frame %d from %v, want link.PeerAddr", i, addr)
				}
				if !bytes.Equal(buf[:n], want) {
					errs <- fmt.Errorf("frame %d: got %d bytes, want %d (content differs)", i, n, len(want))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, l := range []*Link{a, b} {
		st := l.Stats()
		if st.FramesIn != frames || st.FramesOut != frames || st.Dropped != 0 || st.Garbage != 0 {
			t.Errorf("%s stats %+v: want %d frames each way, nothing dropped", l.LocalAddr(), st, frames)
		}
	}
	var total uint64
	for _, p := range send[a] {
		total += uint64(len(p))
	}
	if got := a.Stats().BytesOut; got != total {
		t.Errorf("BytesOut = %d, want %d", got, total)
	}
	if got := b.Stats().BytesIn; got != total {
		t.Errorf("BytesIn = %d, want %d", got, total)
	}
}

func TestGarbageDroppedAndCounted(t *testing.T) {
	p := newPty(t)
	l := openLink(t, p.path, testConfig(t))
	rng := rand.New(rand.NewPCG(3, 3))

	good1, good2, good3 := payload(rng, 100), payload(rng, 300), payload(rng, 50)
	noise := []byte("line noise \xff\xfe\x13") // no 0x00: it ends at the next delimiter
	damaged := encode(t, FrameType, payload(rng, 200))
	damaged[50] ^= 0x04 // one flipped bit
	var wire []byte
	wire = append(wire, encode(t, FrameType, good1)...)
	wire = append(wire, noise...)
	wire = append(wire, 0) // a sender's lone delimiter after idle
	wire = append(wire, encode(t, FrameType, good2)...)
	wire = append(wire, damaged...)
	wire = append(wire, encode(t, 7, []byte("another type"))...)
	wire = append(wire, encode(t, FrameType, good3)...)
	if _, err := p.master.Write(wire); err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]byte{good1, good2, good3} {
		if got := readFrame(t, l); !bytes.Equal(got, want) {
			t.Fatalf("frame %d: got %d bytes, want %d", i, len(got), len(want))
		}
	}
	st := l.Stats()
	if st.Dropped != 3 {
		t.Errorf("Dropped = %d, want 3 (noise, damaged frame, foreign type)", st.Dropped)
	}
	if want := uint64(len(noise) + 1 + len(damaged)); st.Garbage != want {
		t.Errorf("Garbage = %d, want %d: the noise and the damaged frame, delimiters included", st.Garbage, want)
	}
	// The link is still up both ways.
	if _, err := l.WriteTo([]byte("still here"), nil); err != nil {
		t.Fatal(err)
	}
	if got := newFrameReader(p.master).next(t); string(got) != "still here" {
		t.Fatalf("got %q", got)
	}
}

func TestIdleLineGetsLeadingDelimiter(t *testing.T) {
	p := newPty(t)
	cfg := testConfig(t)
	cfg.Baud = 1 << 30 // two character times are a few ns: every write follows idle
	l := openLink(t, p.path, cfg)
	for range 2 {
		if _, err := l.WriteTo([]byte("x"), nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // idle for far more than two character times
	}
	want := append([]byte{0}, encode(t, FrameType, []byte("x"))...)
	want = append(want, want...)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(p.master, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("wire % x\nwant % x", got, want)
	}
}

func TestWriteToChecks(t *testing.T) {
	p := newPty(t)
	cfg := testConfig(t)
	cfg.MTU = 100
	l := openLink(t, p.path, cfg)
	if l.MTU() != 100 {
		t.Fatalf("MTU() = %d", l.MTU())
	}
	if _, err := l.WriteTo(make([]byte, 101), nil); !errors.Is(err, link.ErrFrameTooLarge) {
		t.Errorf("101 bytes over MTU 100: %v, want ErrFrameTooLarge", err)
	}
	if _, err := l.WriteTo([]byte("x"), &net.UDPAddr{}); err == nil {
		t.Error("WriteTo a UDP address succeeded")
	}
	if n, err := l.WriteTo(make([]byte, 100), link.PeerAddr); err != nil || n != 100 {
		t.Errorf("WriteTo MTU bytes: %d, %v", n, err)
	}
	if st := l.Stats(); st.FramesOut != 1 || st.BytesOut != 100 {
		t.Errorf("stats after one frame: %+v", st)
	}
}

func TestShortBuffer(t *testing.T) {
	p := newPty(t)
	l := openLink(t, p.path, testConfig(t))
	p.master.Write(encode(t, FrameType, []byte("twelve bytes")))
	p.master.Write(encode(t, FrameType, []byte("ok")))
	l.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 5)
	if _, _, err := l.ReadFrom(buf); !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("12-byte frame into 5 bytes: %v, want io.ErrShortBuffer", err)
	}
	n, _, err := l.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ok" {
		t.Fatalf("next frame: %q, %v", buf[:n], err)
	}
	if st := l.Stats(); st.Dropped != 1 || st.FramesIn != 1 {
		t.Errorf("stats %+v: want 1 dropped, 1 in", st)
	}
}

func TestReadDeadline(t *testing.T) {
	p := newPty(t)
	l := openLink(t, p.path, testConfig(t))
	buf := make([]byte, l.MTU())

	l.SetReadDeadline(time.Now().Add(-time.Second))
	p.master.Write(encode(t, FrameType, []byte("waiting")))
	if _, _, err := l.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline in the past: %v", err)
	}
	var ne net.Error
	if _, _, err := l.ReadFrom(buf); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("deadline error is not a net.Error timeout: %v", err)
	}
	l.SetReadDeadline(time.Time{})
	if n, _, err := l.ReadFrom(buf); err != nil || string(buf[:n]) != "waiting" {
		t.Fatalf("after clearing the deadline: %q, %v", buf[:n], err)
	}

	// A deadline set while ReadFrom waits releases it.
	done := make(chan error)
	go func() {
		_, _, err := l.ReadFrom(buf)
		done <- err
	}()
	l.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline set while waiting: %v", err)
	}
}

// fillUntilBlocked writes frames until a write fails; nobody reads the far
// end, so the pty's buffer fills and a write blocks.
func fillUntilBlocked(l *Link) error {
	p := make([]byte, 1000)
	for {
		if _, err := l.WriteTo(p, nil); err != nil {
			return err
		}
	}
}

func TestWriteDeadlineOnFullLine(t *testing.T) {
	p := newPty(t)
	l := openLink(t, p.path, testConfig(t))
	l.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	err := fillUntilBlocked(l)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write blocked by a full line: %v, want os.ErrDeadlineExceeded", err)
	}
	if _, err := l.WriteTo([]byte("x"), nil); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline in the past: %v", err)
	}
	// Drain the line; after clearing the deadline the link works, and the
	// frame cut short by the deadline does not spoil the next one.
	l.SetWriteDeadline(time.Time{})
	fr := newFrameReader(p.master)
	go l.WriteTo([]byte("after"), nil)
	fr.dec = framing.NewDecoder(framing.MaxPayload)
	for {
		n, err := p.master.Read(fr.buf)
		if err != nil {
			t.Fatal(err)
		}
		in := fr.buf[:n]
		for len(in) > 0 {
			k, f, ok, _ := fr.dec.Next(in)
			in = in[k:]
			if ok && string(f.Payload) == "after" {
				return
			}
		}
	}
}

func TestCloseUnblocks(t *testing.T) {
	p := newPty(t)
	l, err := Open(p.path, testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error)
	go func() {
		_, _, err := l.ReadFrom(make([]byte, l.MTU()))
		readErr <- err
	}()
	writeErr := make(chan error)
	go func() { writeErr <- fillUntilBlocked(l) }()
	// Wait until the writer is blocked: the pty holds a bounded amount.
	for l.Stats().FramesOut < 4 {
		time.Sleep(time.Millisecond)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-readErr; !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadFrom after Close: %v, want net.ErrClosed", err)
	}
	if err := <-writeErr; !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo blocked at Close: %v, want net.ErrClosed", err)
	}
	if _, _, err := l.ReadFrom(nil); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadFrom later: %v", err)
	}
	if _, err := l.WriteTo(nil, nil); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo later: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// The port is free again: it opens once more.
	l2 := openLink(t, p.path, testConfig(t))
	l2.Close()
}

// syncBuffer is a log sink read while the Link writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestUnplugAndResume(t *testing.T) {
	t.Run("same path", func(t *testing.T) { testUnplugAndResume(t, false) })
	t.Run("ReopenPath", func(t *testing.T) { testUnplugAndResume(t, true) })
}

// testUnplugAndResume pulls the pty out from under a Link and puts a new one
// under the same name: a symlink the Link opened, or Config.ReopenPath.
func testUnplugAndResume(t *testing.T, viaReopenPath bool) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ttyUSB-test")
	repoint := func(target string) {
		tmp := path + ".new"
		os.Remove(tmp)
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	first := newPty(t)
	repoint(first.path)
	cfg := testConfig(t)
	var logs syncBuffer
	cfg.Logger = slogTo(&logs)
	openPath := path
	if viaReopenPath {
		openPath = first.path
		cfg.ReopenPath = path
	}
	l := openLink(t, openPath, cfg)

	first.master.Write(encode(t, FrameType, []byte("hello")))
	if got := readFrame(t, l); string(got) != "hello" {
		t.Fatalf("got %q", got)
	}

	// Unplug: the adapter (the pty) disappears.
	repoint(filepath.Join(dir, "nothing-here"))
	first.close()
	l.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := l.ReadFrom(make([]byte, l.MTU()))
	if !errors.Is(err, link.ErrDisconnected) {
		t.Fatalf("ReadFrom after unplug: %v, want link.ErrDisconnected", err)
	}
	if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		t.Fatalf("unplug error also matches ErrClosed or EOF: %v", err)
	}
	t.Logf("unplugged: %v", err)
	if _, err := l.WriteTo([]byte("lost"), nil); !errors.Is(err, link.ErrDisconnected) {
		t.Fatalf("WriteTo while unplugged: %v, want link.ErrDisconnected", err)
	}

	// Replug: a new adapter under the same name.
	second := newPty(t)
	repoint(second.path)
	for {
		_, err := l.WriteTo([]byte("back"), nil)
		if err == nil {
			break
		}
		if !errors.Is(err, link.ErrDisconnected) {
			t.Fatalf("WriteTo while waiting for the port: %v", err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if got := newFrameReader(second.master).next(t); string(got) != "back" {
		t.Fatalf("after replug the far end got %q", got)
	}
	second.master.Write(encode(t, FrameType, []byte("welcome back")))
	if got := readFrame(t, l); string(got) != "welcome back" {
		t.Fatalf("after replug got %q", got)
	}
	out := logs.String()
	for _, want := range []string{"went away", "is back"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestModemLinesOnPtyUnsupported(t *testing.T) {
	p := newPty(t)
	l := openLink(t, p.path, testConfig(t))
	if err := l.SetDTR(true); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("SetDTR on a pty: %v, want errors.ErrUnsupported", err)
	}
	if err := l.SetRTS(true); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("SetRTS on a pty: %v, want errors.ErrUnsupported", err)
	}
	if _, err := l.ModemStatus(); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("ModemStatus on a pty: %v, want errors.ErrUnsupported", err)
	}
	// ...and the link still works.
	p.master.Write(encode(t, FrameType, []byte("fine")))
	if got := readFrame(t, l); string(got) != "fine" {
		t.Fatalf("got %q", got)
	}
}

func TestNoAllocationsPerFrame(t *testing.T) {
	nm := newNullModem(t)
	a := openLink(t, nm.a.path, testConfig(t))
	b := openLink(t, nm.b.path, testConfig(t))
	p := bytes.Repeat([]byte{1, 0, 2}, 300)
	buf := make([]byte, b.MTU())
	roundTrip := func() {
		if _, err := a.WriteTo(p, nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
	}
	roundTrip()
	if allocs := testing.AllocsPerRun(200, roundTrip); allocs > 0.05 {
		t.Errorf("%.2f allocations per frame, want 0", allocs)
	}
}

// TestSlowReaderLosesNothing checks that a full queue makes the reader
// goroutine wait, so the line (here a pty, which blocks its writer) holds the
// frames instead of the Link dropping them.
func TestSlowReaderLosesNothing(t *testing.T) {
	nm := newNullModem(t)
	a := openLink(t, nm.a.path, testConfig(t))
	b := openLink(t, nm.b.path, testConfig(t))
	const frames = 100 // far more than the queue holds
	p := make([]byte, 1000)
	done := make(chan error, 1)
	go func() {
		for i := range frames {
			p[0] = byte(i)
			if _, err := a.WriteTo(p, nil); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	// Let the writer run ahead until it blocks on the full line.
	for a.Stats().FramesOut < 20 {
		time.Sleep(time.Millisecond)
	}
	buf := make([]byte, b.MTU())
	b.SetReadDeadline(time.Now().Add(20 * time.Second))
	for i := range frames {
		n, _, err := b.ReadFrom(buf)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if n != len(p) || buf[0] != byte(i) {
			t.Fatalf("frame %d: %d bytes, number %d", i, n, buf[0])
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Dropped != 0 {
		t.Errorf("%d frames dropped", st.Dropped)
	}
}

func TestWriteDeadlineSetWhileBlocked(t *testing.T) {
	p := newPty(t)
	l := openLink(t, p.path, testConfig(t))
	errc := make(chan error, 1)
	go func() { errc <- fillUntilBlocked(l) }()
	for l.Stats().FramesOut < 4 {
		time.Sleep(time.Millisecond)
	}
	l.SetWriteDeadline(time.Now())
	if err := <-errc; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("blocked write after SetWriteDeadline(now): %v", err)
	}
}

func TestUnplugWhileWriteBlocked(t *testing.T) {
	p := newPty(t)
	l := openLink(t, p.path, testConfig(t))
	errc := make(chan error, 1)
	go func() { errc <- fillUntilBlocked(l) }()
	for l.Stats().FramesOut < 4 {
		time.Sleep(time.Millisecond)
	}
	p.close()
	err := <-errc
	if !errors.Is(err, link.ErrDisconnected) {
		t.Fatalf("write blocked at unplug: %v, want link.ErrDisconnected", err)
	}
	t.Log(err)
}

var _ link.Corrector = (*Link)(nil)
