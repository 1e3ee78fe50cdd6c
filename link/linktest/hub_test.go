package linktest

import (
	"errors"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2plink/p2plink/link"
)

// drain counts the frames e can read before its queue runs dry.
func drain(e *HubEnd) int {
	got := 0
	buf := make([]byte, e.MTU())
	for {
		if _, _, _, r := e.st.in.pop(buf); r != popOK {
			return got
		}
		got++
	}
}

func TestHubLossPerDelivery(t *testing.T) {
	const n = 4000
	h := NewHub(PipeConfig{Loss: 0.3, Seed: 11, QueueLen: n})
	x, y, z := h.Attach("x"), h.Attach("y"), h.Attach("z")
	defer x.Close()
	defer y.Close()
	defer z.Close()
	for i := range n {
		if _, err := x.WriteTo([]byte{byte(i)}, x.BroadcastAddr()); err != nil {
			t.Fatal(err)
		}
	}
	gy, gz := drain(y), drain(z)
	within(t, "lost at y", n-gy, n, 0.3)
	within(t, "lost at z", n-gz, n, 0.3)
	if gy == gz {
		t.Errorf("y and z both got %d frames: losses look shared, not per delivery", gy)
	}
	if f := h.Faults(); f.Lost != uint64(2*n-gy-gz) {
		t.Errorf("Faults().Lost = %d, %d deliveries missing", f.Lost, 2*n-gy-gz)
	}
}

func TestHubBandwidthPerPort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Two senders, each with its own 100 kB/s port: 1000-byte frames
		// from both arrive 10 ms apart per sender, not 20.
		h := NewHub(PipeConfig{Bandwidth: 100_000})
		x, y, r := h.Attach("x"), h.Attach("y"), h.Attach("r")
		defer x.Close()
		defer y.Close()
		defer r.Close()
		start := time.Now()
		p := make([]byte, 1000)
		for range 3 {
			x.WriteTo(p, r.LocalAddr())
			y.WriteTo(p, r.LocalAddr())
		}
		buf := make([]byte, 1500)
		for range 6 {
			if _, _, err := r.ReadFrom(buf); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d != 30*time.Millisecond {
			t.Fatalf("6 frames from 2 ports took %v, want 30ms", d)
		}
	})
}

func TestHubUnplugErrorsAndReattach(t *testing.T) {
	h := NewHub(PipeConfig{UnplugErrors: true})
	x, y := h.Attach("x"), h.Attach("y")
	defer x.Close()
	y.Unplug()
	if _, err := x.WriteTo([]byte("x"), y.LocalAddr()); !errors.Is(err, link.ErrDisconnected) {
		t.Fatalf("write to an unplugged station: %v", err)
	}
	if _, _, err := y.ReadFrom(make([]byte, 1500)); !errors.Is(err, link.ErrDisconnected) {
		t.Fatalf("read on an unplugged station: %v", err)
	}
	y.Replug()
	y.Close()
	// The name is free again once closed.
	y2 := h.Attach("y")
	defer y2.Close()
	if _, err := x.WriteTo([]byte("again"), y2.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	y2.SetReadDeadline(time.Now().Add(time.Second))
	if _, _, err := y2.ReadFrom(make([]byte, 1500)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal(err)
	}
}
