package peer

import (
	"context"
	"io"
	"testing"
	"testing/synctest"

	"github.com/p2plink/p2plink/link/linktest"
)

// TestAckRidesOnReply: in a ping-pong each message's ack travels inside the
// reply, so a round trip costs one packet each way, not two.
func TestAckRidesOnReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := connect(t, linktest.PipeConfig{}, testConfig(t, "a"), testConfig(t, "b"))
		defer p.close()
		ctx := context.Background()
		go func() {
			st, err := p.sb.AcceptStream(ctx)
			if err != nil {
				return
			}
			io.Copy(st, st)
		}()
		st, err := p.sa.OpenStream(ctx, "echo", PrioInteractive)
		if err != nil {
			t.Fatal(err)
		}
		msg, buf := []byte("0123456789abcdef0123456789abcdef"), make([]byte, 32)
		round := func() {
			if _, err := st.Write(msg); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(st, buf); err != nil {
				t.Fatal(err)
			}
		}
		for range 10 {
			round() // the stream's opening and its window grants settle
		}
		synctest.Wait()
		a0, b0 := p.sa.Stats().PacketsSent, p.sb.Stats().PacketsSent
		const n = 200
		for range n {
			round()
		}
		synctest.Wait()
		a, b := p.sa.Stats().PacketsSent-a0, p.sb.Stats().PacketsSent-b0
		// One packet per message each way; a few lone acks at the end and
		// keepalives are allowed.
		if a > n+5 || b > n+5 {
			t.Fatalf("%d round trips took %d packets from a and %d from b, want about %d each", n, a, b, n)
		}
		if a < n || b < n {
			t.Fatalf("%d round trips took only %d and %d packets", n, a, b)
		}
	})
}
