package ethnet

import (
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/packet"

	"github.com/p2plink/p2plink/ethnet/internal/netns"
	"github.com/p2plink/p2plink/framing"
)

// TestFlood has a hostile host flood a link with junk and with good frames
// from ever new source addresses while nobody reads, so that the kernel
// drops most of them. Every frame must be accounted for (delivered, dropped
// by the link or dropped by the kernel), and memory must stay bounded.
func TestFlood(t *testing.T) {
	seg := netns.NewPair(t, 1500)
	victim := openOn(t, seg.Hosts[0], Config{ReadBuffer: 256 << 10})
	evil := stranger(t, seg.Hosts[1])
	vmac := seg.Hosts[0].MAC
	to := addrOf(vmac)

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	const flood = 60000
	frame := make([]byte, 1500+framing.EtherHeaderLen)
	src := make(net.HardwareAddr, 6)
	var sentGood, sentBad, sentOwn int
	for i := range flood {
		copy(src, []byte{0x02, 0xee, byte(i >> 16), byte(i >> 8), byte(i), 0})
		var n int
		switch i % 4 {
		case 0, 1: // good frames, each from a new address
			n, _ = framing.EncodeEther(frame, vmac, src, pattern(i%1400))
			sentGood++
		case 2: // garbage of our EtherType
			n, _ = framing.EncodeEther(frame, vmac, src, pattern(i%1400))
			frame[framing.EtherHeaderLen] = byte(i) | 0x80 // no such version
			sentBad++
		case 3: // our own address, broadcast
			n, _ = framing.EncodeEther(frame, []byte(broadcastMAC), vmac, pattern(i%1400))
			sentOwn++
		}
		if _, err := evil.WriteTo(frame[:n], to); err != nil {
			t.Fatalf("flood frame %d: %v", i, err)
		}
	}

	// Drain what the kernel kept; frames on a veth pair are queued within
	// the sender's system call, so a read that times out means the queue
	// is empty.
	buf := make([]byte, victim.MTU())
	delivered := 0
	for {
		victim.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, _, err := victim.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		delivered++
	}
	c := victim.Counters()
	t.Logf("flood of %d: %d delivered, %d malformed, %d own, %d dropped by the kernel (receive buffer %d)",
		flood, delivered, c.Malformed, c.Own, c.KernelDrops, c.ReadBuffer)
	if c.KernelDrops == 0 {
		t.Errorf("the kernel dropped nothing: the flood did not overflow a %d-byte buffer", c.ReadBuffer)
	}
	if got := uint64(delivered) + c.Malformed + c.Own + c.KernelDrops; got != flood {
		t.Errorf("accounted for %d frames of %d", got, flood)
	}
	if c.FramesIn != uint64(delivered) || c.Dropped != c.Malformed+c.Own+c.KernelDrops {
		t.Errorf("counters do not add up: %+v", c)
	}
	victim.rmu.Lock()
	cached := len(victim.addrs)
	victim.rmu.Unlock()
	if cached > maxAddrCache {
		t.Errorf("address cache grew to %d entries, bound %d", cached, maxAddrCache)
	}

	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 4<<20 {
		t.Errorf("heap grew by %d bytes during the flood", grew)
	}

	// The link still works.
	peer := openOn(t, seg.Hosts[1], Config{})
	var wg sync.WaitGroup
	wg.Go(func() {
		peer.WriteTo([]byte("still there?"), to)
	})
	if got, _ := readOne(t, victim, buf); string(got) != "still there?" {
		t.Errorf("after the flood: got %q", got)
	}
	wg.Wait()
}

func TestAddrCache(t *testing.T) {
	l := &Link{addrs: make(map[[6]byte]*packet.Addr)}
	first := l.addrOf([]byte{2, 0, 0, 0, 0, 1})
	for i := range 3 * maxAddrCache {
		a := l.addrOf([]byte{2, 1, 0, byte(i >> 16), byte(i >> 8), byte(i)})
		if a.HardwareAddr.String() != net.HardwareAddr([]byte{2, 1, 0, byte(i >> 16), byte(i >> 8), byte(i)}).String() {
			t.Fatalf("addrOf gave %v", a)
		}
	}
	if len(l.addrs) != maxAddrCache {
		t.Fatalf("cache holds %d addresses, bound %d", len(l.addrs), maxAddrCache)
	}
	if l.addrOf([]byte{2, 0, 0, 0, 0, 1}) != first {
		t.Fatal("a cached address was not reused")
	}
}

// TestBurst sends a burst of 2,000 full frames (3 MB) while nobody reads:
// the default receive buffer holds all of them, the kernel's default does
// not, and the kernel's drop counter tells the two apart.
func TestBurst(t *testing.T) {
	const burst = 2000
	for _, tc := range []struct {
		name     string
		cfg      Config
		wantLoss bool
	}{
		{"default buffer", Config{}, false},
		{"kernel default buffer", Config{ReadBuffer: -1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seg := netns.NewPair(t, 1500)
			tx, rx := openOn(t, seg.Hosts[0], Config{}), openOn(t, seg.Hosts[1], tc.cfg)
			to := addrOf(seg.Hosts[1].MAC)
			p := pattern(tx.MTU())
			for range burst {
				if _, err := tx.WriteTo(p, to); err != nil {
					t.Fatal(err)
				}
			}
			buf := make([]byte, rx.MTU())
			got := 0
			for {
				rx.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				if _, _, err := rx.ReadFrom(buf); err != nil {
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Fatal(err)
					}
					break
				}
				got++
			}
			c := rx.Counters()
			t.Logf("%d of %d frames received, %d dropped by the kernel (receive buffer %d bytes)",
				got, burst, c.KernelDrops, c.ReadBuffer)
			if uint64(got)+c.KernelDrops != burst {
				t.Errorf("%d received + %d dropped by the kernel, want %d", got, c.KernelDrops, burst)
			}
			if lost := c.KernelDrops > 0; lost != tc.wantLoss {
				t.Errorf("kernel drops %d, want loss: %v", c.KernelDrops, tc.wantLoss)
			}
		})
	}
}
