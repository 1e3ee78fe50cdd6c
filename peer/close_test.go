package peer

import (
	"bytes"
	"context"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2plink/p2plink/link/linktest"
)

// TestCloseDeliversDataWaitingForCredit: Session.Close delivers data
// written to a stream that waits for credit (the peer's application reads
// slower than the line) before it tells the peer; it counted as sent, and
// the rest was lost (found by review).
func TestCloseDeliversDataWaitingForCredit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := connect(t, linktest.PipeConfig{Bandwidth: 10_000_000}, testConfig(t, "a"), testConfig(t, "b"))
		defer p.close()
		ctx := context.Background()
		st, err := p.sa.OpenStream(ctx, "x", PrioBulk)
		if err != nil {
			t.Fatal(err)
		}
		data := randBytes(1, streamWindow+10_000) // 10 kB more than b grants unread
		if _, err := st.Write(data); err != nil {
			t.Fatal(err)
		}
		st.CloseWrite()
		time.Sleep(2 * time.Second) // all in flight is acked; 10 kB wait for credit
		type res struct {
			got []byte
			err error
		}
		rc := make(chan res, 1)
		go func() {
			time.Sleep(3 * time.Second) // b's application is busy for a moment
			rs, err := p.sb.AcceptStream(ctx)
			if err != nil {
				rc <- res{nil, err}
				return
			}
			got, err := io.ReadAll(rs)
			rc <- res{got, err}
		}()
		p.sa.Close()
		r := <-rc
		if !bytes.Equal(r.got, data) || r.err != nil {
			t.Fatalf("peer got %d of %d bytes written before Session.Close (read error: %v)", len(r.got), len(data), r.err)
		}
	})
}

// TestCloseWaitsWhileProgress: the wait of Close for the peer to take
// what was written gives up after the dead-peer timeout without progress,
// but starts again each time the peer takes some (a slow line, a reader
// that grants credit as it reads).
func TestCloseWaitsWhileProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &Session{state: stEstablished, done: make(chan struct{})}
		never := func() bool { return false }
		start := time.Now()
		s.waitLocked(10*time.Second, never, func() uint64 { return 0 })
		if el := time.Since(start); el < 10*time.Second || el > 11*time.Second {
			t.Errorf("without progress the wait took %v, want 10 s", el)
		}
		var acked uint64
		go func() {
			for range 6 { // progress every 5 s for 30 s
				time.Sleep(5 * time.Second)
				s.mu.Lock()
				acked++
				s.mu.Unlock()
			}
		}()
		start = time.Now()
		s.waitLocked(10*time.Second, never, func() uint64 { return acked })
		if el := time.Since(start); el < 40*time.Second || el > 41*time.Second {
			t.Errorf("with progress until 30 s the wait took %v, want 40 s", el)
		}
	})
}
