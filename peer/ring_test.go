package peer

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"bytes"
	"github.com/p2plink/p2plink/link/linktest"
	"math/rand/v2"
	"testing"
)

// TestByteRing checks the ring against a plain slice through random writes,
// reads and peeks that wrap around and grow it.
func TestByteRing(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var q byteRing
	var model []byte
	next := byte(0)
	for i := range 20000 {
		switch rng.IntN(3) {
		case 0:
			p := make([]byte, rng.IntN(3000))
			for j := range p {
				p[j] = next
				next++
			}
			q.write(p)
			model = append(model, p...)
		case 1:
			p := make([]byte, rng.IntN(5000))
			n := q.read(p)
			want := min(len(p), len(model))
			if n != want || !bytes.Equal(p[:n], model[:n]) {
				t.Fatalf("step %d: read %d bytes, want %d, content equal %v", i, n, want, bytes.Equal(p[:n], model[:min(n, len(model))]))
			}
			model = model[n:]
		case 2:
			n := rng.IntN(q.Len() + 1)
			a, b := q.peek(n)
			if got := append(append([]byte{}, a...), b...); !bytes.Equal(got, model[:n]) {
				t.Fatalf("step %d: peek(%d) differs from what was written", i, n)
			}
			q.discard(n)
			model = model[n:]
		}
		if q.Len() != len(model) {
			t.Fatalf("step %d: Len %d, holds %d", i, q.Len(), len(model))
		}
		if len(q.buf)&(len(q.buf)-1) != 0 {
			t.Fatalf("step %d: buffer of %d bytes is not a power of two", i, len(q.buf))
		}
	}
}

// TestByteRingNoMoves checks that a ring that is written and drained at
// steady state keeps its buffer: nothing is allocated or moved.
func TestByteRingNoMoves(t *testing.T) {
	var q byteRing
	p := make([]byte, 1400)
	out := make([]byte, 1000)
	q.write(make([]byte, 60<<10))
	buf := &q.buf[0]
	allocs := testing.AllocsPerRun(1000, func() {
		q.write(p)
		for range 2 {
			q.read(out[:700])
		}
	})
	if allocs != 0 || &q.buf[0] != buf {
		t.Fatalf("steady writes and reads allocated %.1f times per run (buffer replaced: %v)", allocs, &q.buf[0] != buf)
	}
}

// TestWriterWokenByHalves checks that a Write blocked on a full send buffer
// is woken once the line took half of it, not for every packet sent: the
// wake-ups of a writer that queued one packet's worth at a time cost more
// CPU than the data's copies.
func TestWriterWokenByHalves(t *testing.T) {
	s, st := openedStream(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	// A Write blocked on a full buffer, as Write leaves it.
	limit := s.sendLimit()
	st.send.write(make([]byte, limit))
	st.credit = 1 << 40
	st.sendWaiting = true
	for len(st.writeC) > 0 {
		<-st.writeC
	}
	body := make([]byte, 0, 1500)
	wakes := 0
	for st.send.Len() > 0 {
		before := st.send.Len()
		s.fillStreams(body[:0], 1400)
		woke := len(st.writeC) > 0
		if woke {
			<-st.writeC
			wakes++
		}
		if want := before > limit/2 && st.send.Len() <= limit/2; woke != want {
			t.Fatalf("after a packet took the buffer from %d to %d bytes (limit %d): woken %v, want %v", before, st.send.Len(), limit, woke, want)
		}
	}
	if wakes != 1 {
		t.Fatalf("woken %d times while the buffer drained; want once", wakes)
	}
}

// TestWriteBuffers checks that WriteBuffers delivers its buffers joined,
// through a send buffer far smaller than they are (so it queues them in
// pieces), and leaves the caller's buffers as they were.
func TestWriteBuffers(t *testing.T) {
	p := connect(t, linktest.PipeConfig{}, testConfig(t, "a"), testConfig(t, "b"))
	defer p.close()
	data := randBytes(3, 3<<20)
	bufs := [][]byte{data[:5], nil, data[5 : 1<<20], data[1<<20 : 1<<20+1], data[1<<20+1:]}
	orig := slices.Clone(bufs)
	ctx := context.Background()
	errc := make(chan error, 1)
	go func() {
		st, err := p.sa.OpenStream(ctx, "test", PrioBulk)
		if err == nil {
			var n int
			n, err = st.WriteBuffers(bufs...)
			if err == nil && n != len(data) {
				err = fmt.Errorf("WriteBuffers returned %d of %d bytes", n, len(data))
			}
		}
		if err == nil {
			err = st.CloseWrite()
		}
		errc <- err
	}()
	rs, err := p.sb.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rs)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("received %d bytes that differ from the %d written", len(got), len(data))
	}
	for i := range bufs {
		if len(bufs[i]) != len(orig[i]) || (len(bufs[i]) > 0 && &bufs[i][0] != &orig[i][0]) {
			t.Fatalf("buffer %d was changed: %d bytes, was %d", i, len(bufs[i]), len(orig[i]))
		}
	}
}

// TestZeroLengthIO: an empty Write returns at once even on a full send
// buffer, and an empty Read with data queued returns (0, nil), not the
// io.EOF of a FIN that follows the data.
func TestZeroLengthIO(t *testing.T) {
	s, st := openedStream(t)
	// Once the peer's first grant is in (no more come: nobody reads
	// there), a buffer filled past any limit with no credit left stays
	// full.
	for {
		s.mu.Lock()
		granted := st.credit > initialCredit
		s.mu.Unlock()
		if granted {
			break
		}
		time.Sleep(time.Millisecond)
	}
	s.mu.Lock()
	st.send.write(make([]byte, maxSendBuf))
	st.credit = 0
	s.mu.Unlock()
	st.SetWriteDeadline(time.Now().Add(2 * time.Second))
	if n, err := st.Write(nil); n != 0 || err != nil {
		t.Errorf("Write(nil) on a full buffer: %d, %v; want 0, nil at once", n, err)
	}
	if n, err := st.WriteBuffers([]byte{}, nil); n != 0 || err != nil {
		t.Errorf("WriteBuffers of empty buffers on a full buffer: %d, %v; want 0, nil at once", n, err)
	}

	s.mu.Lock()
	st.recv.write([]byte("data"))
	st.recvFin = true
	s.mu.Unlock()
	if n, err := st.Read(nil); n != 0 || err != nil {
		t.Errorf("Read(nil) with data queued: %d, %v; want 0, nil", n, err)
	}
	buf := make([]byte, 8)
	if n, err := st.Read(buf); n != 4 || err != nil || string(buf[:n]) != "data" {
		t.Errorf("Read: %q, %v; want the queued data", buf[:n], err)
	}
	if _, err := st.Read(buf); err != io.EOF {
		t.Errorf("Read after the data: %v; want io.EOF", err)
	}
}

// openedStream connects two endpoints over a pipe and opens a bulk stream
// from the first; both are closed when the test ends.
func openedStream(t *testing.T) (*Session, *Stream) {
	t.Helper()
	p := connect(t, linktest.PipeConfig{}, testConfig(t, "a"), testConfig(t, "b"))
	t.Cleanup(p.close)
	st, err := p.sa.OpenStream(context.Background(), "test", PrioBulk)
	if err != nil {
		t.Fatal(err)
	}
	return p.sa, st
}
