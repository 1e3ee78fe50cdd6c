package peer

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/p2plink/p2plink/link"
	"github.com/p2plink/p2plink/link/linktest"
)

// sessionsOver starts endpoints on la and lb (closed when the test ends) and
// returns their connected sessions.
func sessionsOver(ctx context.Context, t *testing.T, la, lb link.Link) (sa, sb *Session) {
	t.Helper()
	ea, err := NewEndpoint(la, testConfig(t, "a"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ea.Close() })
	eb, err := NewEndpoint(lb, testConfig(t, "b"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eb.Close() })
	var errB error
	done := make(chan struct{})
	go func() { defer close(done); sb, errB = eb.Connect(ctx, nil) }()
	sa, err = ea.Connect(ctx, nil)
	<-done
	if err != nil || errB != nil {
		t.Fatalf("connect: %v / %v", err, errB)
	}
	return sa, sb
}

// sizeLink records the size of every frame written.
type sizeLink struct {
	*linktest.FrameEnd
	mu    sync.Mutex
	sizes []int
}

func (l *sizeLink) WriteTo(p []byte, a net.Addr) (int, error) {
	l.mu.Lock()
	l.sizes = append(l.sizes, len(p))
	l.mu.Unlock()
	return l.FrameEnd.WriteTo(p, a)
}

// TestBulkPacketsAreFull: a bulk transfer over a line paced at 1 MB/s sends
// whole segments. A packet shorter than a segment costs the same header,
// tag, framing and ack; filling whatever room the in-flight limit leaves
// (it had) cut a third of the packets short and cost a serial line a few
// percent of its rate.
func TestBulkPacketsAreFull(t *testing.T) {
	a, b := linktest.NewFramePipe(linktest.PipeConfig{MTU: 4096, Bandwidth: 1e6, Latency: 2 * time.Millisecond})
	la := &sizeLink{FrameEnd: a}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sa, sb := sessionsOver(ctx, t, la, b)
	const size = 2 << 20
	got := make(chan int64, 1)
	go func() {
		st, err := sb.AcceptStream(ctx)
		if err != nil {
			got <- -1
			return
		}
		n, _ := io.Copy(io.Discard, st)
		got <- n
	}()
	st, err := sa.OpenStream(ctx, "bulk", PrioBulk)
	if err != nil {
		t.Fatal(err)
	}
	la.mu.Lock()
	la.sizes = la.sizes[:0] // from here on: the transfer
	la.mu.Unlock()
	if _, err := st.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if n := <-got; n != size {
		t.Fatalf("received %d bytes of %d", n, size)
	}
	full := sa.e.mtu * 3 / 4
	la.mu.Lock()
	defer la.mu.Unlock()
	var data, short int
	for _, n := range la.sizes {
		if n < 256 {
			continue // acks, pings
		}
		data++
		if n < full {
			short++
		}
	}
	t.Logf("%d data packets, %d shorter than %d bytes; segment %d", data, short, full, sa.Stats().Segment)
	// Sessions start at 1024-byte segments and grow them: a few dozen
	// short packets come from that (before this rule: half of them).
	if short*5 > data {
		t.Fatalf("%d of %d data packets shorter than three quarters of the MTU", short, data)
	}
}
