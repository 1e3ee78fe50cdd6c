package ethnet

import (
	"errors"
	"os"

	"github.com/p2plink/p2plink/ethnet/internal/netns"
	"testing"
	"time"
)

// TestSpinDecision: a read that finds nothing spins while frames are
// flowing, not on a link gone quiet, and stops after spins that keep
// missing until spinRetry has passed.
func TestSpinDecision(t *testing.T) {
	const now = int64(1_000_000_000_000)
	ms := int64(time.Millisecond)
	for _, tc := range []struct {
		name   string
		lastIn int64
		miss   int
		missAt int64
		want   bool
	}{
		{"frames flowing", now - 20_000, 0, 0, true},
		{"last frame spinIdle ago", now - int64(spinIdle), 0, 0, true},
		{"quiet link", now - int64(spinIdle) - 1, 0, 0, false},
		{"never a frame", 0, 0, 0, false},
		{"a few misses", now - 20_000, spinMisses - 1, now - ms, true},
		{"misses in a row", now - 20_000, spinMisses, now - ms, false},
		{"misses, retry due", now - 20_000, spinMisses, now - int64(spinRetry), true},
	} {
		l := &Link{lastIn: tc.lastIn, spinMiss: tc.miss, spinMissAt: tc.missAt}
		if got := l.spinNow(now); got != tc.want {
			t.Errorf("%s: spin %v, want %v", tc.name, got, tc.want)
		}
		l.noSpin = true // Config.NoSpin
		if l.spinNow(now) {
			t.Errorf("%s: spins with NoSpin", tc.name)
		}
	}
}

// TestSpinMissesStop: on a real socket, reads that find nothing while
// frames flow spin, and after spinMisses spins in a row that found nothing
// they sleep at once; a frame that then comes is read as ever.
func TestSpinMissesStop(t *testing.T) {
	seg := netns.NewPair(t, 1500)
	a := openOn(t, seg.Hosts[0], Config{})
	b := openOn(t, seg.Hosts[1], Config{})
	buf := make([]byte, a.MTU())
	for i := 1; i <= spinMisses+2; i++ {
		a.lastIn = time.Now().UnixNano() // frames flowing, as far as a knows
		a.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, _, err := a.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read %d: %v, want the deadline", i, err)
		}
		// Each read spins once and misses, until spinMisses: then the
		// reads sleep at once, within spinRetry of the last miss (a
		// machine that stalled past it may rightly spin again).
		retried := a.spinMissAt != 0 && time.Now().UnixNano()-a.spinMissAt >= int64(spinRetry)
		if want := min(i, spinMisses); a.spinMiss != want && !retried {
			t.Fatalf("after %d empty reads: %d spins missed, want %d", i, a.spinMiss, want)
		}
	}
	a.SetReadDeadline(time.Time{})
	b.WriteTo([]byte("y"), addrOf(seg.Hosts[0].MAC))
	if got, _ := readOne(t, a, buf); string(got) != "y" {
		t.Fatalf("got %q", got)
	}
	if a.lastIn < time.Now().Add(-time.Second).UnixNano() {
		t.Fatal("a frame read did not count as traffic")
	}

	// With Config.NoSpin the same empty reads do not spin.
	c := openOn(t, seg.Hosts[0], Config{NoSpin: true})
	for range 2 {
		c.lastIn = time.Now().UnixNano()
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, _, err := c.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("NoSpin read: %v, want the deadline", err)
		}
	}
	if c.spinMiss != 0 {
		t.Fatalf("a NoSpin link spun: %d spins missed", c.spinMiss)
	}
}
