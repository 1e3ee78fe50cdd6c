package peer

import (
	"slices"
	"testing"
	"time"
)

// TestWindowGrows: a reader that drains a quarter of its window in much
// less than a round trip (the sender waits for credit) doubles its window
// at each credit return, up to maxStreamWindow; a reader slower than the
// window covers in two round trips never grows it, so a peer cannot make a
// slow application buffer more than streamWindow.
func TestWindowGrows(t *testing.T) {
	s := &Session{srtt: 10 * time.Millisecond, streams: map[uint64]*Stream{}}
	fast := s.newStream(1, "x", PrioBulk)
	var windows []int64
	for i := 0; i < 4; i++ {
		fast.grantedAt = time.Now().Add(-time.Millisecond) // a quarter window read in 1 ms
		fast.consumed = fast.window / 4
		fast.growWindowLocked()
		windows = append(windows, fast.window)
	}
	if want := []int64{2 << 20, 4 << 20, 4 << 20, 4 << 20}; !slices.Equal(windows, want) {
		t.Fatalf("fast reader: windows %v, want %v", windows, want)
	}
	slow := s.newStream(2, "y", PrioBulk)
	slow.grantedAt = time.Now().Add(-time.Second) // 256 KiB a second: 0.5 % of the window per RTT
	slow.consumed = slow.window / 4
	if g := slow.growWindowLocked(); g != 0 || slow.window != streamWindow {
		t.Fatalf("slow reader: grew by %d to %d", g, slow.window)
	}
}
