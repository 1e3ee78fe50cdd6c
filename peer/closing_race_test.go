package peer

import (
	"testing"
	"time"

	"github.com/p2plink/p2plink/link"
	"github.com/p2plink/p2plink/link/linktest"
)

// TestHelloWhileClosing: a hello that restarts a session while the
// endpoint closes must not make dispatch panic (it did, taking the command
// down with a SIGSEGV; found by review). The race is timing-bound: this
// failed within about 100 of its 300 rounds before the fix.
func TestHelloWhileClosing(t *testing.T) {
	for i := 0; i < 300; i++ {
		p := connect(t, linktest.PipeConfig{}, testConfig(t, "a"), testConfig(t, "b"))
		stop := make(chan struct{})
		done := make(chan any)
		go func() {
			defer func() { done <- recover() }()
			pkt := make([]byte, 14)
			pkt[0] = kindHello
			for {
				select {
				case <-stop:
					return
				default:
				}
				p.ea.dispatch(pkt, link.PeerAddr)
			}
		}()
		hold := make(chan struct{})
		go func() { // keep the session's lock busy, as a transfer does
			for {
				select {
				case <-hold:
					return
				default:
				}
				p.sa.mu.Lock()
				time.Sleep(20 * time.Microsecond)
				p.sa.mu.Unlock()
			}
		}()
		time.Sleep(time.Millisecond)
		p.ea.Close()
		close(stop)
		close(hold)
		if r := <-done; r != nil {
			t.Fatalf("iteration %d: dispatch panicked: %v", i, r)
		}
		p.eb.Close()
	}
}
