package peer

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/p2plink/p2plink/link/linktest"
)

// liveMatchesMap checks that the streams scanned per packet are exactly
// the session's streams.
func liveMatchesMap(t *testing.T, who string, s *Session) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.live) != len(s.streams) {
		t.Fatalf("%s: %d live streams, %d in the map", who, len(s.live), len(s.streams))
	}
	for _, st := range s.live {
		if s.streams[st.id] != st {
			t.Fatalf("%s: live stream %d is not the map's", who, st.id)
		}
	}
}

// TestLiveStreams: streams that end every way (both sides close, a reader
// closes early, the peer resets) leave the per-packet scan as they leave
// the map, and the ones left keep flowing.
func TestLiveStreams(t *testing.T) {
	p := connect(t, linktest.PipeConfig{}, testConfig(t, "a"), testConfig(t, "b"))
	defer p.close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	open := func() (*Stream, *Stream) {
		a, err := p.sa.OpenStream(ctx, "t", PrioBulk)
		if err != nil {
			t.Fatal(err)
		}
		a.Write([]byte("x")) // the peer learns of it with data
		b, err := p.sb.AcceptStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
	var keep [2]*Stream
	keep[0], keep[1] = open()
	for round := 0; round < 3; round++ {
		// Both sides close after an exchange.
		a, b := open()
		a.CloseWrite()
		io.ReadAll(b)
		b.CloseWrite()
		io.ReadAll(a)
		a.Close()
		b.Close()
		// The reader closes while the writer still sends.
		a, b = open()
		b.Close()
		a.Write(make([]byte, 10_000))
		a.Close()
	}
	// Let the closes and resets cross.
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.sa.mu.Lock()
		na := len(p.sa.streams)
		p.sa.mu.Unlock()
		p.sb.mu.Lock()
		nb := len(p.sb.streams)
		p.sb.mu.Unlock()
		if na == 1 && nb == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	liveMatchesMap(t, "a", p.sa)
	liveMatchesMap(t, "b", p.sb)
	p.sa.mu.Lock()
	left := len(p.sa.live)
	p.sa.mu.Unlock()
	if left != 1 {
		t.Errorf("a still scans %d streams, want the one kept open", left)
	}
	// The stream kept open still carries data both ways.
	go keep[0].Write(make([]byte, 100_000))
	got := make([]byte, 1+100_000)
	if _, err := io.ReadFull(keep[1], got); err != nil {
		t.Fatalf("the stream kept open: %v", err)
	}
}
