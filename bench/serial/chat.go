package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2plink/p2plink/peer"
	"github.com/p2plink/p2plink/serialnet"
)

// chatDelay measures how long a chat line takes to arrive while a bulk
// stream keeps the line full in the same direction.
func chatDelay(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	portA := fs.String("a", "", "first end of the null-modem (sender)")
	portB := fs.String("b", "", "second end of the null-modem (receiver)")
	baud := fs.Int("baud", 115200, "line rate")
	lines := fs.Int("lines", 100, "chat lines to time")
	interval := fs.Duration("interval", 500*time.Millisecond, "time between chat lines (plus up to 20% random)")
	warmup := fs.Duration("warmup", 5*time.Second, "bulk transfer time before the first chat line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *portA == "" || *portB == "" {
		return errors.New("give both ends of the null-modem: --a PORT --b PORT")
	}
	la, err := serialnet.Open(*portA, serialnet.Config{Baud: *baud})
	if err != nil {
		return err
	}
	lb, err := serialnet.Open(*portB, serialnet.Config{Baud: *baud})
	if err != nil {
		la.Close()
		return err
	}
	p, err := connectPair(ctx, la, lb, peer.Config{})
	if err != nil {
		return err
	}
	defer p.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	t0 := time.Now()
	var bulkBytes atomic.Int64
	delays := make(chan time.Duration, *lines)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	// Receiver: bulk data is counted and dropped, chat lines are timed.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			st, err := p.sb.AcceptStream(ctx)
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer st.Close()
				go func() { <-ctx.Done(); st.Close() }()
				if st.Service() == "bulk" {
					buf := make([]byte, 32<<10)
					for {
						n, err := st.Read(buf)
						bulkBytes.Add(int64(n))
						if err != nil {
							return
						}
					}
				}
				sc := bufio.NewScanner(st)
				for sc.Scan() {
					f := strings.Fields(sc.Text())
					if len(f) < 2 {
						continue
					}
					ns, err := strconv.ParseInt(f[1], 10, 64)
					if err != nil {
						continue
					}
					select {
					case delays <- time.Since(t0) - time.Duration(ns):
					default:
					}
				}
			}()
		}
	}()

	// Sender: a bulk stream that never runs dry.
	bulk, err := p.sa.OpenStream(ctx, "bulk", peer.PrioBulk)
	if err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer bulk.Close()
		go func() { <-ctx.Done(); bulk.Close() }()
		buf := make([]byte, 64<<10)
		r := rand.New(rand.NewPCG(1, 2))
		for i := range buf {
			buf[i] = byte(r.UintN(256))
		}
		for ctx.Err() == nil {
			if _, err := bulk.Write(buf); err != nil {
				return
			}
		}
	}()

	select {
	case <-time.After(*warmup):
	case <-ctx.Done():
		return ctx.Err()
	}
	chat, err := p.sa.OpenStream(ctx, "chat", peer.PrioInteractive)
	if err != nil {
		return err
	}
	defer chat.Close()
	jit := rand.New(rand.NewPCG(3, 4))
	var got []time.Duration
	b0, m0 := bulkBytes.Load(), time.Now()
	for seq := 0; seq < *lines; seq++ {
		// A line of about 60 bytes, like one typed in a chat.
		line := fmt.Sprintf("%04d %d hello over the busy line\n", seq, time.Since(t0).Nanoseconds())
		if _, err := io.WriteString(chat, line); err != nil {
			return fmt.Errorf("chat write: %w", err)
		}
		select {
		case d := <-delays:
			got = append(got, d)
		case <-time.After(30 * time.Second):
			return fmt.Errorf("chat line %d did not arrive within 30 s (bulk at %d bytes)", seq, bulkBytes.Load())
		case <-ctx.Done():
			return ctx.Err()
		}
		wait := *interval + time.Duration(jit.Int64N(int64(*interval)/5+1))
		// Keep the pace of one line per interval even if a line was slow.
		if rest := wait - got[len(got)-1]; rest > 0 {
			time.Sleep(rest)
		}
	}
	bulkRate := float64(bulkBytes.Load()-b0) / time.Since(m0).Seconds()
	st := p.sa.Stats()

	slices.Sort(got)
	med, p99 := percentile(got, 0.5), percentile(got, 0.99)
	var sum time.Duration
	for _, d := range got {
		sum += d
	}
	lineRate := float64(*baud) / 10
	fmt.Printf("chat lines sent during bulk transfer at %d baud: %d lines, min %v, median %v, mean %v, p90 %v, p99 %v, max %v\n",
		*baud, len(got), ms(got[0]), ms(med), ms(sum/time.Duration(len(got))), ms(percentile(got, 0.9)), ms(p99), ms(got[len(got)-1]))
	fmt.Printf("bulk goodput meanwhile %.0f B/s = %.1f%% of line rate; sender stats: %d packets, %d retransmits, segment %d B, srtt %v, min rtt %v, cwnd %d, loss %.4f\n",
		bulkRate, 100*bulkRate/lineRate, st.PacketsSent, st.Retransmits, st.Segment, ms(st.SRTT), ms(st.MinRTT), st.Cwnd, st.LossRate)
	fmt.Printf("RESULT chat n=%d median_ms=%.0f p99_ms=%.0f max_ms=%.0f bulk_pct=%.1f\n",
		len(got), msf(med), msf(p99), msf(got[len(got)-1]), 100*bulkRate/lineRate)
	return nil
}

// percentile returns the nearest-rank q-quantile of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
