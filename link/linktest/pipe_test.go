package linktest

import (
	"bytes"
	"errors"
	"math"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2plink/p2plink/link"
)

func TestFramePipeRoundTrip(t *testing.T) {
	a, b := NewFramePipe(PipeConfig{})
	defer a.Close()
	defer b.Close()
	buf := make([]byte, b.MTU())
	for _, n := range []int{0, 1, 100, 1500} {
		p := bytes.Repeat([]byte{byte(n)}, n)
		if _, err := a.WriteTo(p, nil); err != nil {
			t.Fatal(err)
		}
		m, from, err := b.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if from != link.PeerAddr || !bytes.Equal(buf[:m], p) {
			t.Fatalf("got %d bytes from %v, want %d from PeerAddr", m, from, n)
		}
	}
	if _, err := a.WriteTo(make([]byte, 1501), nil); !errors.Is(err, link.ErrFrameTooLarge) {
		t.Fatalf("oversize write: %v", err)
	}
	if _, err := a.WriteTo(nil, link.Addr{Net: "pipe", Name: "elsewhere"}); err == nil {
		t.Fatal("write to a foreign address succeeded")
	}
	st := a.Stats()
	if st.FramesOut != 4 || st.BytesOut != 1601 {
		t.Fatalf("sender stats %+v", st)
	}
	if st := b.Stats(); st.FramesIn != 4 || st.BytesIn != 1601 {
		t.Fatalf("receiver stats %+v", st)
	}
}

// countArrivals writes n frames numbered 0..n-1 and returns how many frames
// the far end can read without blocking. The pipe must not block writes.
func countArrivals(t *testing.T, a, b *FrameEnd, n int) int {
	t.Helper()
	for i := range n {
		if _, err := a.WriteTo([]byte{byte(i), byte(i >> 8)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	buf := make([]byte, a.MTU())
	for {
		_, _, _, r := b.st.in.pop(buf)
		if r != popOK {
			return got
		}
		got++
	}
}

// within checks that k successes in n trials fit probability p (5 sigma).
func within(t *testing.T, what string, k, n int, p float64) {
	t.Helper()
	mean := p * float64(n)
	sd := math.Sqrt(float64(n) * p * (1 - p))
	if math.Abs(float64(k)-mean) > 5*sd+1 {
		t.Errorf("%s: %d of %d, want about %.0f (p=%v)", what, k, n, mean, p)
	}
}

func TestFramePipeLoss(t *testing.T) {
	const n = 5000
	a, b := NewFramePipe(PipeConfig{Loss: 0.2, Seed: 7, QueueLen: n})
	defer a.Close()
	defer b.Close()
	got := countArrivals(t, a, b, n)
	within(t, "frames lost", n-got, n, 0.2)
	if f := a.Faults(); f.Lost != uint64(n-got) {
		t.Errorf("Faults().Lost = %d, %d frames did not arrive", f.Lost, n-got)
	}
	// The same seed loses the same frames.
	a2, b2 := NewFramePipe(PipeConfig{Loss: 0.2, Seed: 7, QueueLen: n})
	defer a2.Close()
	defer b2.Close()
	if got2 := countArrivals(t, a2, b2, n); got2 != got {
		t.Errorf("same seed: %d arrived, then %d", got, got2)
	}
}

func TestFramePipeDuplicate(t *testing.T) {
	const n = 4000
	a, b := NewFramePipe(PipeConfig{Duplicate: 0.1, Seed: 3, QueueLen: 2 * n})
	defer a.Close()
	defer b.Close()
	got := countArrivals(t, a, b, n)
	within(t, "frames duplicated", got-n, n, 0.1)
	if f := a.Faults(); f.Duplicated != uint64(got-n) {
		t.Errorf("Faults().Duplicated = %d, %d extra frames arrived", f.Duplicated, got-n)
	}
}

func TestFramePipeLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := NewFramePipe(PipeConfig{Latency: 50 * time.Millisecond, Jitter: 10 * time.Millisecond, Seed: 1})
		defer a.Close()
		defer b.Close()
		start := time.Now()
		a.WriteTo([]byte("x"), nil)
		buf := make([]byte, 1500)
		if _, _, err := b.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 50*time.Millisecond || d >= 60*time.Millisecond {
			t.Fatalf("frame took %v, want 50ms + up to 10ms jitter", d)
		}
	})
}

func TestFramePipeBandwidth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 10 frames of 1000 bytes at 100 kB/s: the line needs 100 ms, and
		// the 4-frame queue makes the writer wait for the reader.
		a, b := NewFramePipe(PipeConfig{Bandwidth: 100_000, QueueLen: 4})
		defer a.Close()
		defer b.Close()
		start := time.Now()
		done := make(chan error)
		go func() {
			p := make([]byte, 1000)
			for range 10 {
				if _, err := a.WriteTo(p, nil); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		buf := make([]byte, 1500)
		for i := range 10 {
			if _, _, err := b.ReadFrom(buf); err != nil {
				t.Fatal(err)
			}
			want := time.Duration(i+1) * 10 * time.Millisecond
			if d := time.Since(start); d != want {
				t.Fatalf("frame %d arrived at %v, want %v", i, d, want)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestFramePipeQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := NewFramePipe(PipeConfig{QueueLen: 2})
		defer a.Close()
		defer b.Close()
		a.WriteTo([]byte("1"), nil)
		a.WriteTo([]byte("2"), nil)
		a.SetWriteDeadline(time.Now().Add(time.Second))
		start := time.Now()
		if _, err := a.WriteTo([]byte("3"), nil); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write to a full queue: %v, want it to block until the deadline", err)
		}
		if time.Since(start) != time.Second {
			t.Fatalf("blocked %v", time.Since(start))
		}
	})
	a, b := NewFramePipe(PipeConfig{QueueLen: 2, DropWhenFull: true})
	defer a.Close()
	defer b.Close()
	if got := countArrivals(t, a, b, 5); got != 2 {
		t.Fatalf("%d frames arrived through a 2-frame queue", got)
	}
	if b.Stats().Dropped != 3 || a.Faults().Overflowed != 3 {
		t.Fatalf("stats %+v, faults %+v: want 3 dropped", b.Stats(), a.Faults())
	}
}

func TestFramePipeUnplug(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := NewFramePipe(PipeConfig{Latency: 10 * time.Millisecond})
		defer a.Close()
		defer b.Close()
		a.WriteTo([]byte("in flight"), nil)
		b.Unplug()
		if a.Plugged() {
			t.Fatal("Plugged after Unplug")
		}
		if _, err := a.WriteTo([]byte("lost"), nil); err != nil {
			t.Fatalf("write while unplugged: %v, want silent loss", err)
		}
		time.Sleep(time.Second)
		b.SetReadDeadline(time.Now().Add(time.Second))
		if _, _, err := b.ReadFrom(make([]byte, 1500)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read after unplug: %v, want nothing to arrive", err)
		}
		if f := a.Faults(); f.Unplugged != 2 {
			t.Fatalf("faults %+v, want 2 unplugged", f)
		}
		a.Replug()
		b.SetReadDeadline(time.Time{})
		a.WriteTo([]byte("back"), nil)
		buf := make([]byte, 1500)
		n, _, err := b.ReadFrom(buf)
		if err != nil || string(buf[:n]) != "back" {
			t.Fatalf("after replug: %q, %v", buf[:n], err)
		}
	})
}

func TestFramePipeUnplugErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := NewFramePipe(PipeConfig{UnplugErrors: true})
		defer a.Close()
		defer b.Close()
		errc := make(chan error)
		go func() {
			_, _, err := b.ReadFrom(make([]byte, 1500))
			errc <- err
		}()
		synctest.Wait()
		a.Unplug()
		if err := <-errc; !errors.Is(err, link.ErrDisconnected) {
			t.Fatalf("blocked read on unplug: %v", err)
		}
		if _, err := a.WriteTo([]byte("x"), nil); !errors.Is(err, link.ErrDisconnected) {
			t.Fatalf("write while unplugged: %v", err)
		}
		a.Replug()
		if _, err := a.WriteTo([]byte("x"), nil); err != nil {
			t.Fatalf("write after replug: %v", err)
		}
	})
}

func TestFramePipeClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := NewFramePipe(PipeConfig{QueueLen: 1})
		errc := make(chan error, 2)
		go func() {
			_, _, err := a.ReadFrom(make([]byte, 1500))
			errc <- err
		}()
		a.WriteTo([]byte("fill"), nil)
		go func() {
			_, err := a.WriteTo([]byte("blocked"), nil)
			errc <- err
		}()
		synctest.Wait()
		a.Close()
		for range 2 {
			if err := <-errc; !errors.Is(err, net.ErrClosed) {
				t.Fatalf("pending call after Close: %v", err)
			}
		}
		// The far end keeps working; what it sends is discarded.
		if _, err := b.WriteTo([]byte("x"), nil); err != nil {
			t.Fatal(err)
		}
		b.Close()
		b.Close()
	})
}

func TestHub(t *testing.T) {
	h := NewHub(PipeConfig{})
	x, y, z := h.Attach("x"), h.Attach("y"), h.Attach("z")
	defer x.Close()
	defer y.Close()
	defer z.Close()
	buf := make([]byte, 1500)
	if _, err := x.WriteTo([]byte("to y"), y.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	n, from, err := y.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "to y" || from != x.LocalAddr() {
		t.Fatalf("unicast: %q from %v, %v", buf[:n], from, err)
	}
	if _, err := z.WriteTo([]byte("all"), z.BroadcastAddr()); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*HubEnd{x, y} {
		n, from, err := e.ReadFrom(buf)
		if err != nil || string(buf[:n]) != "all" || from != z.LocalAddr() {
			t.Fatalf("broadcast at %v: %q from %v, %v", e.LocalAddr(), buf[:n], from, err)
		}
	}
	z.SetReadDeadline(time.Now())
	if _, _, err := z.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the broadcaster heard itself: %v", err)
	}
	if _, err := x.WriteTo([]byte("nobody"), link.Addr{Net: "hub", Name: "w"}); err != nil {
		t.Fatalf("write to an absent station: %v", err)
	}
	y.Unplug()
	x.WriteTo([]byte("lost"), y.LocalAddr())
	y.Replug()
	x.WriteTo([]byte("found"), y.LocalAddr())
	n, _, _ = y.ReadFrom(buf)
	if string(buf[:n]) != "found" {
		t.Fatalf("after replug: %q", buf[:n])
	}
	if _, err := x.WriteTo(nil, nil); err == nil {
		t.Fatal("write to nil address on a hub succeeded")
	}
}
