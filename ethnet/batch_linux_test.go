package ethnet

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/p2plink/p2plink/ethnet/internal/netns"
	"github.com/p2plink/p2plink/link"
)

func TestWriteBatch(t *testing.T) {
	seg := netns.NewBridged(t, 3, 1500)
	a := openOn(t, seg.Hosts[0], Config{})
	b := openOn(t, seg.Hosts[1], Config{})
	c := openOn(t, seg.Hosts[2], Config{})
	buf := make([]byte, b.MTU())

	// More frames than one system call takes, of every kind of size.
	var ps [][]byte
	for i := range 3*maxBatch + 5 {
		ps = append(ps, pattern(min([]int{0, 1, 42, 43, 100, a.MTU()}[i%6]+i%2, a.MTU())))
	}
	ps[5] = pattern(a.MTU())
	n, err := a.WriteBatch(ps, addrOf(seg.Hosts[1].MAC))
	if err != nil || n != len(ps) {
		t.Fatalf("WriteBatch: %d, %v; want %d frames sent", n, err, len(ps))
	}
	for i, p := range ps {
		got, from := readOne(t, b, buf)
		if !bytes.Equal(got, p) || from.String() != seg.Hosts[0].MAC.String() {
			t.Fatalf("frame %d: %d bytes from %v, want %d bytes from %v", i, len(got), from, len(p), seg.Hosts[0].MAC)
		}
	}
	if st := a.Stats(); st.FramesOut != uint64(len(ps)) {
		t.Errorf("FramesOut %d, want %d", st.FramesOut, len(ps))
	}

	// Broadcast batches reach everyone.
	if _, err := a.WriteBatch([][]byte{[]byte("one"), []byte("two")}, a.BroadcastAddr()); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*Link{b, c} {
		for _, want := range []string{"one", "two"} {
			if got, _ := readOne(t, l, buf); string(got) != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	}

	// One frame over the MTU refuses the whole batch.
	n, err = a.WriteBatch([][]byte{[]byte("fine"), make([]byte, a.MTU()+1)}, addrOf(seg.Hosts[1].MAC))
	if n != 0 || !errors.Is(err, link.ErrFrameTooLarge) {
		t.Fatalf("WriteBatch with an oversize frame: %d, %v", n, err)
	}
	expectNothing(t, b)
	if _, err := a.WriteBatch(ps, nil); err == nil {
		t.Error("WriteBatch to a nil address succeeded")
	}

	// No allocation per batch.
	to := addrOf(seg.Hosts[2].MAC)
	small := ps[:maxBatch]
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := a.WriteBatch(small, to); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per WriteBatch, want 0", allocs)
	}

	a.Close()
	if _, err := a.WriteBatch(ps, to); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBatch after Close: %v", err)
	}
}

func TestWriteBatchQueueDrops(t *testing.T) {
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("the tc command (iproute2) is missing")
	}
	seg := netns.NewPair(t, 1500)
	a := openOn(t, seg.Hosts[0], Config{})
	if out, err := exec.Command("ip", "netns", "exec", seg.Hosts[0].NS,
		"tc", "qdisc", "add", "dev", "eth0", "root", "pfifo", "limit", "0").CombinedOutput(); err != nil {
		t.Skipf("cannot add a dropping queue: %v: %s", err, out)
	}
	ps := [][]byte{[]byte("a"), []byte("b"), []byte("c")}
	if n, err := a.WriteBatch(ps, a.BroadcastAddr()); n != 3 || err != nil {
		t.Fatalf("WriteBatch into a dropping queue: %d, %v; want 3 lost frames and no error", n, err)
	}
	if c := a.Counters(); c.Lost != 3 || c.FramesOut != 0 {
		t.Fatalf("counters %+v: want 3 lost, 0 out", c)
	}
}

// TestReadFrame: frames read in place are the frames sent, from the
// sender, padding stripped, mixed with ReadFrom on the same link, and
// counted as ReadFrom counts them.
func TestReadFrame(t *testing.T) {
	seg := netns.NewPair(t, 1500)
	a := openOn(t, seg.Hosts[0], Config{})
	b := openOn(t, seg.Hosts[1], Config{})
	var ps [][]byte
	for i := range 2*maxBatch + 3 {
		ps = append(ps, pattern([]int{0, 1, 42, 43, 44, 700, a.MTU()}[i%7]))
	}
	if n, err := a.WriteBatch(ps, addrOf(seg.Hosts[1].MAC)); err != nil || n != len(ps) {
		t.Fatalf("WriteBatch: %d, %v", n, err)
	}
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, b.MTU())
	before := b.Counters()
	for i, want := range ps {
		var got []byte
		var from net.Addr
		var err error
		if i%5 == 4 {
			var n int
			n, from, err = b.ReadFrom(buf)
			got = buf[:n]
		} else {
			got, from, err = b.ReadFrame()
		}
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(got, want) || from.String() != seg.Hosts[0].MAC.String() {
			t.Fatalf("frame %d: %d bytes from %v, want %d bytes from %v", i, len(got), from, len(want), seg.Hosts[0].MAC)
		}
	}
	after := b.Counters()
	if d := after.FramesIn - before.FramesIn; d != uint64(len(ps)) {
		t.Errorf("FramesIn grew by %d, want %d", d, len(ps))
	}
	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, _, err := b.ReadFrame(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadFrame with nothing to read: %v, want a deadline error", err)
	}
}
