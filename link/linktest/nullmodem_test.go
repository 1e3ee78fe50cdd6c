//go:build unix

package linktest

import (
	"bytes"
	"errors"
	"math/bits"
	"os"
	"syscall"
	"testing"
	"time"
)

func openPorts(t *testing.T, cfg NullModemConfig) (*NullModem, *os.File, *os.File) {
	t.Helper()
	nm, err := NewNullModem(cfg)
	if err != nil {
		t.Skipf("no ptys here: %v", err)
	}
	t.Cleanup(func() { nm.Close() })
	open := func(path string) *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	return nm, open(nm.PortA()), open(nm.PortB())
}

// transfer writes src to w and reads from r until it has n bytes or the
// line stays quiet for quiet.
func transfer(t *testing.T, w, r *os.File, src []byte, n int, quiet time.Duration) []byte {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := w.Write(src)
		errc <- err
	}()
	got := make([]byte, 0, n)
	buf := make([]byte, 4096)
	for len(got) < n {
		r.SetReadDeadline(time.Now().Add(quiet))
		k, err := r.Read(buf)
		got = append(got, buf[:k]...)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return got
}

func TestNullModemCarries(t *testing.T) {
	nm, a, b := openPorts(t, NullModemConfig{})
	src := randomBytes(100_000, 4)
	if got := transfer(t, a, b, src, len(src), 5*time.Second); !bytes.Equal(got, src) {
		t.Fatalf("A→B: %d bytes arrived, want the %d sent unchanged", len(got), len(src))
	}
	if got := transfer(t, b, a, src[:1000], 1000, 5*time.Second); !bytes.Equal(got, src[:1000]) {
		t.Fatalf("B→A: %d bytes arrived", len(got))
	}
	// The bridge counts a write just after it returns: give it a moment.
	st := nm.Stats()
	for i := 0; i < 1000 && st.Read < 101_000; i++ {
		time.Sleep(time.Millisecond)
		st = nm.Stats()
	}
	if st.Written != 101_000 || st.Read != 101_000 {
		t.Fatalf("stats %+v, want 101000 bytes written and read", st)
	}
}

func TestNullModemPaced(t *testing.T) {
	// 19200 baud, 8N1: 1920 bytes/s, so 192 bytes need 100 ms on the line.
	// Only the lower bound is checked: a slow machine may take longer.
	_, a, b := openPorts(t, NullModemConfig{Baud: 19200})
	start := time.Now()
	got := transfer(t, a, b, make([]byte, 192), 192, 5*time.Second)
	if len(got) != 192 {
		t.Fatalf("%d bytes arrived", len(got))
	}
	if d := time.Since(start); d < 95*time.Millisecond {
		t.Fatalf("192 bytes at 19200 baud took %v, faster than the line's 100ms", d)
	}
}

func TestNullModemNoise(t *testing.T) {
	const n, ber = 50_000, 1e-3
	nm, a, b := openPorts(t, NullModemConfig{BitErrorRate: ber, Seed: 3})
	src := randomBytes(n, 5)
	got := transfer(t, a, b, src, n, 5*time.Second)
	if len(got) != n {
		t.Fatalf("%d of %d bytes arrived", len(got), n)
	}
	flips := 0
	for i := range got {
		flips += bits.OnesCount8(got[i] ^ src[i])
	}
	within(t, "bits flipped", flips, 8*n, ber)
	if st := nm.Stats(); st.BitsFlipped != uint64(flips) {
		t.Fatalf("Stats().BitsFlipped = %d, counted %d", st.BitsFlipped, flips)
	}

	nm2, a2, b2 := openPorts(t, NullModemConfig{DropRate: 0.01, Seed: 3})
	got = transfer(t, a2, b2, src, n, 300*time.Millisecond)
	within(t, "bytes dropped", n-len(got), n, 0.01)
	if st := nm2.Stats(); st.Dropped != uint64(n-len(got)) {
		t.Fatalf("Stats().Dropped = %d, %d bytes missing", st.Dropped, n-len(got))
	}
}

func TestNullModemUnplug(t *testing.T) {
	nm, a, b := openPorts(t, NullModemConfig{})
	nm.Unplug()
	a.Write([]byte("lost"))
	for nm.Stats().Unplugged < 4 {
		time.Sleep(time.Millisecond) // wait for the bridge to discard it
	}
	nm.Replug()
	got := transfer(t, a, b, []byte("found"), 5, 5*time.Second)
	if string(got) != "found" {
		t.Fatalf("after replug: %q", got)
	}
}

func TestNullModemCloseJoins(t *testing.T) {
	before := goroutineBaseline()
	nm, err := NewNullModem(NullModemConfig{Baud: 9600})
	if err != nil {
		t.Skipf("no ptys here: %v", err)
	}
	f, err := os.OpenFile(nm.PortA(), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(make([]byte, 100)) // the bridge is now pacing
	nm.Close()
	nm.Close()
	if err := settleGoroutines(before); err != nil {
		t.Fatal(err)
	}
	// The port hangs up.
	f.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := f.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read of a port after Close: %v, want a hang-up", err)
	}
}
