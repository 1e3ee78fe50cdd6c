package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/p2plink/p2plink/peer"
)

// svcPing is the echo service ping measures round trips against.
const svcPing = "ping"

// ping sends count small messages on an interactive stream, one at a time,
// and reports round-trip times.
func (e *env) ping(ctx context.Context, s *peer.Session, count int) error {
	st, err := s.OpenStream(ctx, svcPing, peer.PrioInteractive)
	if err != nil {
		return err
	}
	defer st.Close()
	msg := make([]byte, 32)
	back := make([]byte, 32)
	var rtts []time.Duration
	for i := 0; i < count; i++ {
		binary.BigEndian.PutUint64(msg, uint64(i))
		t0 := time.Now()
		if _, err := st.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(st, back); err != nil {
			return fmt.Errorf("no echo (does the other end run serve?): %w", err)
		}
		if binary.BigEndian.Uint64(back) != uint64(i) {
			return fmt.Errorf("echo out of order")
		}
		rtts = append(rtts, time.Since(t0))
		if ctx.Err() != nil {
			break
		}
	}
	slices.Sort(rtts)
	q := func(f float64) time.Duration { return rtts[min(len(rtts)-1, int(f*float64(len(rtts))))] }
	fmt.Fprintf(e.stdout, "%d round trips of 32 bytes to %s: min %v, median %v, p99 %v, max %v\n",
		len(rtts), s.Peer().Name, rtts[0].Round(time.Microsecond), q(0.5).Round(time.Microsecond),
		q(0.99).Round(time.Microsecond), rtts[len(rtts)-1].Round(time.Microsecond))
	return nil
}

// echo answers a ping stream.
func echo(st *peer.Stream) {
	io.Copy(st, st)
	st.Close()
}
