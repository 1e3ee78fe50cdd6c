package peer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/p2plink/p2plink/link/linktest"
)

// TestWindowOverrun: a peer that sends past the window it was granted gets
// the stream reset, and both a blocked Write and a Read on our side return
// ErrStreamReset instead of waiting.
func TestWindowOverrun(t *testing.T) {
	p := connect(t, linktest.PipeConfig{}, testConfig(t, "a"), testConfig(t, "b"))
	defer p.close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := p.sa.OpenStream(ctx, "t", PrioBulk)
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("x"))
	b, err := p.sb.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// a writes more than b ever reads: a's Write blocks for credit.
	werr := make(chan error, 1)
	go func() {
		_, err := a.Write(make([]byte, 16<<20))
		werr <- err
	}()
	time.Sleep(100 * time.Millisecond)
	// b turns hostile: it ignores the credit a granted it and sends on.
	p.sb.mu.Lock()
	b.credit = 1 << 40
	p.sb.mu.Unlock()
	go b.Write(make([]byte, 2*maxStreamWindow+1))
	select {
	case err := <-werr:
		if !errors.Is(err, ErrStreamReset) {
			t.Fatalf("blocked Write after the peer overran the window: %v, want ErrStreamReset", err)
		}
	case <-ctx.Done():
		t.Fatal("a Write blocked for credit did not return when the peer overran the window")
	}
	buf := make([]byte, 1<<20)
	for {
		_, err := a.Read(buf)
		if err == nil {
			continue // what arrived within the window
		}
		if !errors.Is(err, ErrStreamReset) {
			t.Fatalf("Read after the overrun: %v, want ErrStreamReset", err)
		}
		break
	}
}
