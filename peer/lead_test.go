package peer

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2plink/p2plink/link/linktest"
)

// echoPair connects two endpoints over an in-memory pipe, echoes every
// stream b accepts (drains those for "sink", writes a megabyte into those
// for "source"), and returns a's stream to the echo.
func echoPair(t *testing.T, prio ...Priority) (*pair, *Stream) {
	t.Helper()
	p := connect(t, linktest.PipeConfig{}, testConfig(t, "a"), testConfig(t, "b"))
	ctx := context.Background()
	go func() {
		for {
			st, err := p.sb.AcceptStream(ctx)
			if err != nil {
				return
			}
			switch st.Service() {
			case "sink":
				go io.Copy(io.Discard, st)
			case "source":
				go func() {
					st.Write(make([]byte, 1<<20))
					st.Close()
				}()
			default:
				go io.Copy(st, st)
			}
		}
	}()
	pr := PrioInteractive
	if len(prio) > 0 {
		pr = prio[0]
	}
	st, err := p.sa.OpenStream(ctx, "echo", pr)
	if err != nil {
		t.Fatal(err)
	}
	return p, st
}

func pingRound(t *testing.T, st *Stream) {
	t.Helper()
	msg, buf := []byte("0123456789abcdef0123456789abcdef"), make([]byte, 32)
	if _, err := st.Write(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(st, buf); err != nil {
		t.Fatal(err)
	}
}

func loopPkts(e *Endpoint) uint64 { return e.loopPkts.Load() }

// leading reports whether a stream reader holds the read token.
func leading(e *Endpoint) bool {
	e.rmu.Lock()
	defer e.rmu.Unlock()
	return e.reading && e.leader
}

// TestReaderReadsLink: in a ping-pong, the goroutine blocked in Read takes
// the packet from the link itself, on both ends, instead of the endpoint's
// read loop taking it and handing it over. Bulk streams leave the link to
// the read loop.
func TestReaderReadsLink(t *testing.T) {
	for _, prio := range []Priority{PrioInteractive, PrioNormal, PrioBulk} {
		t.Run(itoa(int(prio)), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p, st := echoPair(t, prio)
				defer p.close()
				for range 10 {
					pingRound(t, st) // lead mode starts on both ends
				}
				a0, b0 := loopPkts(p.ea), loopPkts(p.eb)
				const n = 200
				for range n {
					pingRound(t, st)
				}
				a, b := loopPkts(p.ea)-a0, loopPkts(p.eb)-b0
				if prio == PrioBulk {
					if a < n || b < n {
						t.Fatalf("bulk stream: the read loops read %d and %d of the %d packets each way, want all", a, b, n)
					}
					return
				}
				// Timers (a keepalive, a late ack) may have the read loop
				// take a packet or two; the messages go to the readers.
				if a > 5 || b > 5 {
					t.Fatalf("the read loops read %d and %d of the %d packets each way; the blocked readers should have", a, b, n)
				}
			})
		})
	}
}

// TestLeaderUnblocks: a Read that is reading the link itself returns when
// the stream is closed, its deadline passes, or the session ends.
func TestLeaderUnblocks(t *testing.T) {
	cases := []struct {
		name string
		stop func(p *pair, st *Stream)
		want error
	}{
		{"Close", func(p *pair, st *Stream) { st.Close() }, ErrClosed},
		{"SetReadDeadline", func(p *pair, st *Stream) { st.SetReadDeadline(time.Now().Add(time.Second)) }, os.ErrDeadlineExceeded},
		{"SessionClose", func(p *pair, st *Stream) { p.sa.Close() }, ErrClosed},
		{"EndpointClose", func(p *pair, st *Stream) { p.ea.Close() }, ErrClosed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p, st := echoPair(t)
				defer p.close()
				for range 10 {
					pingRound(t, st)
				}
				done := make(chan error, 1)
				go func() {
					_, err := st.Read(make([]byte, 32))
					done <- err
				}()
				synctest.Wait()
				if !leading(p.ea) {
					t.Fatal("the blocked Read does not read the link")
				}
				c.stop(p, st)
				if err := <-done; !errors.Is(err, c.want) {
					t.Fatalf("Read returned %v, want %v", err, c.want)
				}
			})
		})
	}
}

// TestLinkReadAfterReaderLeaves: once the application stops reading, the
// read loop takes the link back, so a writer still gets its acks and
// window grants.
func TestLinkReadAfterReaderLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, st := echoPair(t)
		defer p.close()
		for range 10 {
			pingRound(t, st)
		}
		// Four stream windows and more than the packet window to b, which
		// drains it: this completes only if someone reads a's link for
		// the acks and window grants, and a reads nothing.
		sink, err := p.sa.OpenStream(context.Background(), "sink", PrioBulk)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sink.Write(make([]byte, 4*streamWindow)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Write([]byte("after")); err != nil {
			t.Fatal(err)
		}
		sink.Close()
	})
}

// TestFollowersGetData: several readers blocked at once; whichever reads
// the link hands the others their data, and each gets its own.
func TestFollowersGetData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, st := echoPair(t)
		defer p.close()
		for range 10 {
			pingRound(t, st)
		}
		const k = 4
		sts := make([]*Stream, k)
		for i := range sts {
			s, err := p.sa.OpenStream(context.Background(), "echo", PrioNormal)
			if err != nil {
				t.Fatal(err)
			}
			sts[i] = s
		}
		got := make(chan error, k)
		for i, s := range sts {
			go func() {
				buf := make([]byte, 1)
				if _, err := io.ReadFull(s, buf); err != nil {
					got <- err
					return
				}
				if buf[0] != byte(i) {
					got <- errors.New("a reader got another stream's data")
					return
				}
				got <- nil
			}()
		}
		synctest.Wait()
		// Last stream first: the readers that wait longest are followers.
		for i := k - 1; i >= 0; i-- {
			if _, err := sts[i].Write([]byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		for range k {
			if err := <-got; err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestLeaderHandsBackBusyLink: a leader that took many packets for others
// (a bulk transfer beside a chat) hands the link back to the read loop when
// it returns.
func TestLeaderHandsBackBusyLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, st := echoPair(t)
		defer p.close()
		for range 10 {
			pingRound(t, st)
		}
		got := make(chan error, 1)
		go func() {
			buf := make([]byte, 1)
			_, err := io.ReadFull(st, buf)
			got <- err
		}()
		synctest.Wait()
		if !leading(p.ea) {
			t.Fatal("the blocked Read does not read the link")
		}
		src, err := p.sa.OpenStream(context.Background(), "source", PrioBulk)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, src); n != 1<<20 || err != nil {
			t.Fatalf("bulk stream: %d bytes, %v", n, err)
		}
		st.Write([]byte("x"))
		if err := <-got; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		p.ea.rmu.Lock()
		lm := p.ea.leadMode
		p.ea.rmu.Unlock()
		if lm {
			t.Fatal("the leader read the bulk transfer and kept the link from the read loop")
		}
	})
}

// writerWakeIn is how long until the session's idle writer wakes.
func writerWakeIn(s *Session) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.writerIdle {
		return 0
	}
	return time.Until(s.writerWake)
}

// TestLazyAckArmsNoTimer: in a ping-pong the reply carries each message's
// ack, so the writer's timer is not armed for it: neither end's writer is
// due to wake within the ack delay after a round.
func TestLazyAckArmsNoTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, st := echoPair(t)
		defer p.close()
		for range 10 {
			pingRound(t, st)
		}
		time.Sleep(2 * ackDelay) // past the timers the start armed
		synctest.Wait()          // and the writers they woke are idle again
		for range 10 {
			pingRound(t, st)
			synctest.Wait()
			if a, b := writerWakeIn(p.sa), writerWakeIn(p.sb); a <= ackDelay || b <= ackDelay {
				t.Fatalf("after a round the writers wake in %v and %v: a timer was armed for an ack that rode on the reply", a, b)
			}
		}
	})
}

// TestLazyAckStillSent: a message the application reads and does not
// answer is still acknowledged: within the ack delay when it reads again or
// when a bulk reader ends lead mode, and soon after the read loop's check
// when it does nothing at all; the sender resends nothing.
func TestLazyAckStillSent(t *testing.T) {
	for _, then := range []string{"ReadAgain", "Idle", "BulkRead"} {
		t.Run(then, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := connect(t, linktest.PipeConfig{}, testConfig(t, "a"), testConfig(t, "b"))
				defer p.close()
				ctx := context.Background()
				bst, err := p.sa.OpenStream(ctx, "bulk", PrioBulk)
				if err != nil {
					t.Fatal(err)
				}
				bst.Write([]byte("b"))
				bulk, err := p.sb.AcceptStream(ctx)
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 64)
				bulk.Read(buf)
				st, err := p.sa.OpenStream(ctx, "oneway", PrioInteractive)
				if err != nil {
					t.Fatal(err)
				}
				st.Write([]byte("open"))
				rst, err := p.sb.AcceptStream(ctx)
				if err != nil {
					t.Fatal(err)
				}
				rst.Read(buf)
				// The read loop hands the link to b's readers once it took
				// a packet for one that waited.
				go rst.Read(buf)
				synctest.Wait()
				st.Write([]byte("x"))
				synctest.Wait()
				go rst.Read(buf)
				time.Sleep(2 * ackDelay)
				synctest.Wait()
				if !leading(p.eb) {
					t.Fatal("b's reader does not read the link")
				}
				st.Write([]byte("one"))
				synctest.Wait() // b's reader took it and returned
				wait := ackDelay
				switch then {
				case "ReadAgain":
					go rst.Read(buf)
				case "Idle":
					wait = 2*leadCheck + ackDelay
				case "BulkRead":
					// It ends lead mode, and with it the read loop's
					// checks, which now wait for the link.
					go bulk.Read(buf)
				}
				time.Sleep(wait + time.Microsecond)
				synctest.Wait()
				p.sa.mu.Lock()
				una, nxt, re := p.sa.sndUna, p.sa.sndNxt, p.sa.stats.Retransmits
				p.sa.mu.Unlock()
				if una != nxt || re != 0 {
					t.Fatalf("%v after the message: %d packets unacked, %d resent", wait, nxt-una, re)
				}
			})
		})
	}
}

// holdLink is a link whose WriteTo blocks, once armed, until released.
type holdLink struct {
	*linktest.FrameEnd
	hold    chan struct{} // armed when not nil: WriteTo waits for it to close
	entered chan struct{}
}

func (h *holdLink) WriteTo(p []byte, addr net.Addr) (int, error) {
	if h.hold != nil {
		hold := h.hold
		h.hold = nil
		close(h.entered)
		<-hold
	}
	return h.FrameEnd.WriteTo(p, addr)
}

// TestInlineSendWakesWaitingWriter: when the session's writer runs while a
// Write sends inline, it waits for that send; the send then wakes it, so
// that its timers (retransmission, acks, keepalive) are armed again.
func TestInlineSendWakesWaitingWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x, y := linktest.NewFramePipe(linktest.PipeConfig{})
		hx := &holdLink{FrameEnd: x}
		ea, err := NewEndpoint(hx, testConfig(t, "a"))
		if err != nil {
			t.Fatal(err)
		}
		defer ea.Close()
		eb, err := NewEndpoint(y, testConfig(t, "b"))
		if err != nil {
			t.Fatal(err)
		}
		defer eb.Close()
		ctx := context.Background()
		go func() {
			s, err := eb.Accept(ctx)
			if err != nil {
				return
			}
			st, err := s.AcceptStream(ctx)
			if err != nil {
				return
			}
			io.Copy(io.Discard, st)
		}()
		sa, err := ea.Connect(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		st, err := sa.OpenStream(ctx, "sink", PrioInteractive)
		if err != nil {
			t.Fatal(err)
		}
		st.Write([]byte("hello"))
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		hx.hold, hx.entered = make(chan struct{}), make(chan struct{})
		hold := hx.hold
		go st.Write([]byte("inline"))
		<-hx.entered // the Write holds the send token, blocked in the link
		sa.kick()    // the writer wakes meanwhile and finds the token taken
		synctest.Wait()
		close(hold)
		synctest.Wait()
		if in := writerWakeIn(sa); in <= 0 || in > time.Minute {
			t.Fatalf("after the inline send the writer wakes in %v (0: not idle): its timers are not armed", in)
		}
	})
}

// TestLazyAckTimedWhenLeadModeEnds: on a segment, a reader in one session
// leaves an ack lazy; a bulk reader in another session then ends lead mode
// (and the read loop's checks, as the read loop waits for the link): the
// lazy ack is timed then, not left to a keepalive.
func TestLazyAckTimedWhenLeadModeEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := linktest.NewHub(linktest.PipeConfig{})
		ep := func(name string) *Endpoint {
			e, err := NewEndpoint(hub.Attach(name), testConfig(t, name))
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		ea, eb, ec := ep("a"), ep("b"), ep("c")
		defer ea.Close()
		defer eb.Close()
		defer ec.Close()
		time.Sleep(time.Second) // they hear each other's announcements
		ctx := context.Background()
		dial := func(e *Endpoint) (*Session, *Session) {
			nb, err := e.FindNeighbor(ctx, "b")
			if err != nil {
				t.Fatal(err)
			}
			s, err := e.ConnectNeighbor(ctx, nb)
			if err != nil {
				t.Fatal(err)
			}
			rs, err := eb.Accept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return s, rs
		}
		sa, _ := dial(ea)
		sc, _ := dial(ec)
		buf := make([]byte, 64)
		// c → b: a bulk stream b reads.
		cst, err := sc.OpenStream(ctx, "bulk", PrioBulk)
		if err != nil {
			t.Fatal(err)
		}
		cst.Write([]byte("b"))
		bulk := acceptOn(t, eb, "c")
		bulk.Read(buf)
		// a → b: messages b's reader takes from the link itself.
		ast, err := sa.OpenStream(ctx, "oneway", PrioInteractive)
		if err != nil {
			t.Fatal(err)
		}
		ast.Write([]byte("open"))
		rst := acceptOn(t, eb, "a")
		rst.Read(buf)
		go rst.Read(buf)
		synctest.Wait()
		ast.Write([]byte("x"))
		synctest.Wait()
		go rst.Read(buf)
		time.Sleep(2 * ackDelay)
		synctest.Wait()
		if !leading(eb) {
			t.Fatal("b's reader does not read the link")
		}
		ast.Write([]byte("one"))
		synctest.Wait()   // b's reader took it and returned
		go bulk.Read(buf) // ends lead mode
		time.Sleep(ackDelay + time.Microsecond)
		synctest.Wait()
		sa.mu.Lock()
		una, nxt := sa.sndUna, sa.sndNxt
		sa.mu.Unlock()
		if una != nxt {
			t.Fatalf("%v after the message: %d packets unacked", ackDelay, nxt-una)
		}
	})
}

// acceptOn returns the next stream e's session with the peer named name
// accepts.
func acceptOn(t *testing.T, e *Endpoint, name string) *Stream {
	t.Helper()
	e.mu.Lock()
	var s *Session
	for _, x := range e.sessions {
		if x.Peer().Name == name {
			s = x
		}
	}
	e.mu.Unlock()
	if s == nil {
		t.Fatalf("no session with %s", name)
	}
	st, err := s.AcceptStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestNeedReaderRemembered: a bulk reader (or blocked writer) asks for the
// read loop while a stream reader leads. The request is remembered: when the
// leader returns to its application and does not read again, the read loop
// takes the link at once, and the bulk reader's data does not wait for the
// read loop's checks (up to two leadCheck periods).
func TestNeedReaderRemembered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, st := echoPair(t)
		defer p.close()
		for range 10 {
			pingRound(t, st)
		}
		bst, err := p.sa.OpenStream(context.Background(), "echo", PrioBulk)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1)
		bst.Write([]byte{1})
		if _, err := io.ReadFull(bst, buf); err != nil {
			t.Fatal(err)
		}
		// A reader that blocks now leads, unless the read loop took the
		// token back meanwhile (its check found it unused while the bulk
		// stream ran); then the next packet gives it to readers again.
		// Retry until one leads: that is the state under test.
		var leaderDone chan struct{}
		for try := 0; ; try++ {
			for range 3 {
				pingRound(t, st)
			}
			leaderDone = make(chan struct{})
			go func(done chan struct{}) { st.Read(make([]byte, 1)); close(done) }(leaderDone)
			synctest.Wait()
			if leading(p.ea) {
				break
			}
			if try == 10 {
				t.Fatal("no reader leads after 10 tries")
			}
			st.Write([]byte("x")) // let this reader go
			<-leaderDone
		}
		bulkGot := make(chan time.Time, 1)
		go func() {
			io.ReadFull(bst, buf)
			bulkGot <- time.Now()
		}()
		synctest.Wait()       // the bulk reader waits; its needReader found a leader
		st.Write([]byte("x")) // echoed: the leader returns and its app stops reading
		<-leaderDone
		synctest.Wait()
		t0 := time.Now()
		bst.Write([]byte{2}) // echoed on the bulk stream
		t1 := <-bulkGot
		t.Logf("bulk reader got its echo %v after the write (leadCheck %v)", t1.Sub(t0), leadCheck)
		if d := t1.Sub(t0); d >= time.Millisecond {
			t.Errorf("bulk data waited %v for someone to read the link", d)
		}
	})
}
