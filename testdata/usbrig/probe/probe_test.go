// Package probe proves the usbrig VM's USB stack with plain gousb, before
// any project driver is involved: both bridge ends enumerate, endpoints come
// from the descriptors, bytes cross both ways, a writer stalls when the far
// side does not read, zero-length packets can be dropped, and an unplugged
// end is seen to leave and come back.
//
// The tests run only inside the rig (P2PLINK_USB_REAL=1, set by
// testdata/usbrig/run); elsewhere they skip.
package probe

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gousb"
)

const (
	vid = 0x067b
	pid = 0x25a1

	serialA = "USBRIG0001"
	serialB = "USBRIG0002"
)

// end is one opened bridge end.
type end struct {
	serial  string
	dev     *gousb.Device
	cfg     *gousb.Config
	intf    *gousb.Interface
	in      *gousb.InEndpoint
	out     *gousb.OutEndpoint
	intrIn  gousb.EndpointAddress
	bus     int
	mps     int
	closeMu sync.Mutex
	closed  bool
}

func (e *end) close() {
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	if e.closed {
		return
	}
	e.closed = true
	if e.intf != nil {
		e.intf.Close()
	}
	if e.cfg != nil {
		e.cfg.Close()
	}
	e.dev.Close()
}

// peerStatus issues the PL-25A1 vendor request 0xFB.
func (e *end) peerStatus() ([2]byte, error) {
	var b [2]byte
	n, err := e.dev.Control(0xC0, 0xFB, 0, 0, b[:])
	if err != nil {
		return b, err
	}
	if n != 2 {
		return b, fmt.Errorf("peer status: %d bytes, want 2", n)
	}
	return b, nil
}

func needRig(t *testing.T) {
	t.Helper()
	if os.Getenv("P2PLINK_USB_REAL") != "1" {
		t.Skip("needs the usbrig VM (run testdata/usbrig/run; it sets P2PLINK_USB_REAL=1)")
	}
}

func newContext(t *testing.T) *gousb.Context {
	ctx := gousb.NewContext()
	t.Cleanup(func() {
		if err := ctx.Close(); err != nil {
			t.Errorf("close context: %v", err)
		}
	})
	return ctx
}

// openEnd opens the bridge end with the given serial number, taking the
// endpoints from its descriptors, and drains stale bytes.
func openEnd(t *testing.T, ctx *gousb.Context, serial string) *end {
	t.Helper()
	devs, err := ctx.OpenDevices(func(d *gousb.DeviceDesc) bool { return d.Vendor == vid && d.Product == pid })
	if err != nil && len(devs) == 0 {
		t.Fatalf("open %04x:%04x: %v", vid, pid, err)
	}
	var e *end
	for _, d := range devs {
		s, err := d.SerialNumber()
		if err == nil && s == serial && e == nil {
			e = &end{serial: s, dev: d, bus: d.Desc.Bus}
			continue
		}
		d.Close()
	}
	if e == nil {
		t.Fatalf("no bridge end with serial %s among %d devices", serial, len(devs))
	}
	t.Cleanup(e.close)
	if err := e.dev.SetAutoDetach(true); err != nil {
		t.Fatalf("%s: auto detach: %v", serial, err)
	}
	e.dev.ControlTimeout = 2 * time.Second
	if e.cfg, err = e.dev.Config(1); err != nil {
		t.Fatalf("%s: config 1: %v", serial, err)
	}
	if e.intf, err = e.cfg.Interface(0, 0); err != nil {
		t.Fatalf("%s: interface 0: %v", serial, err)
	}
	var bulkIn, bulkOut, intr []gousb.EndpointDesc
	for _, ep := range e.intf.Setting.Endpoints {
		switch {
		case ep.TransferType == gousb.TransferTypeBulk && ep.Direction == gousb.EndpointDirectionIn:
			bulkIn = append(bulkIn, ep)
		case ep.TransferType == gousb.TransferTypeBulk && ep.Direction == gousb.EndpointDirectionOut:
			bulkOut = append(bulkOut, ep)
		case ep.TransferType == gousb.TransferTypeInterrupt && ep.Direction == gousb.EndpointDirectionIn:
			intr = append(intr, ep)
		}
	}
	if len(bulkIn) != 1 || len(bulkOut) != 1 || len(intr) != 1 {
		t.Fatalf("%s: endpoints %v: want one bulk IN, one bulk OUT, one interrupt IN", serial, e.intf.Setting.Endpoints)
	}
	if e.in, err = e.intf.InEndpoint(bulkIn[0].Number); err != nil {
		t.Fatalf("%s: bulk IN: %v", serial, err)
	}
	if e.out, err = e.intf.OutEndpoint(bulkOut[0].Number); err != nil {
		t.Fatalf("%s: bulk OUT: %v", serial, err)
	}
	e.intrIn = intr[0].Address
	e.mps = bulkIn[0].MaxPacketSize
	drain(e)
	return e
}

// drain discards stale bytes the cable holds for e, up to a FIFO's worth.
func drain(e *end) int {
	total := 0
	buf := make([]byte, 4096)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		n, err := e.in.ReadContext(ctx, buf)
		cancel()
		total += n
		if err != nil || n == 0 || total >= 2048 {
			return total
		}
	}
}

func openPair(t *testing.T) (a, b *end) {
	t.Helper()
	needRig(t)
	ctx := newContext(t)
	return openEnd(t, ctx, serialA), openEnd(t, ctx, serialB)
}

// frame makes an odd-length test frame: a sequence number, then seeded
// random bytes.
func frame(seq uint32, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(seq), uint64(n)))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if n >= 4 {
		binary.BigEndian.PutUint32(b, seq)
	}
	return b
}

func write(t *testing.T, e *end, p []byte, d time.Duration) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return e.out.WriteContext(ctx, p)
}

func read(e *end, buf []byte, d time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return e.in.ReadContext(ctx, buf)
}

func TestEnumerate(t *testing.T) {
	a, b := openPair(t)
	if a.bus == b.bus {
		t.Errorf("both ends on bus %d; want two buses (dummy_hcd num=2)", a.bus)
	}
	for _, e := range []*end{a, b} {
		if c := e.intf.Setting.Class; c != gousb.ClassVendorSpec {
			t.Errorf("%s: interface class %v, want vendor specific", e.serial, c)
		}
		if e.mps != 64 && e.mps != 512 && e.mps != 1024 {
			t.Errorf("%s: bulk wMaxPacketSize %d", e.serial, e.mps)
		}
		t.Logf("%s: bus %d, bulk IN %v, bulk OUT %v, interrupt IN %v, wMaxPacketSize %d",
			e.serial, e.bus, e.in.Desc.Address, e.out.Desc.Address, e.intrIn, e.mps)
		st, err := e.peerStatus()
		if err != nil {
			t.Fatalf("%s: peer status: %v", e.serial, err)
		}
		if st != [2]byte{0, 0} {
			t.Errorf("%s: peer status %x, want 0000 (both attached)", e.serial, st)
		}
	}
}

// TestFramesBothWays sends frames of awkward lengths each way and checks
// that each arrives as exactly one transfer with the same bytes.
func TestFramesBothWays(t *testing.T) {
	a, b := openPair(t)
	sizes := []int{1, 3, 63, 65, 511, 513, 1023, 1025, 1501, 2047, 3001, 4095}
	for _, dir := range []struct {
		name     string
		from, to *end
	}{{"A->B", a, b}, {"B->A", b, a}} {
		t.Run(dir.name, func(t *testing.T) {
			errc := make(chan error, 1)
			go func() {
				for i, n := range sizes {
					if _, err := write(t, dir.from, frame(uint32(i), n), 5*time.Second); err != nil {
						errc <- fmt.Errorf("write frame %d (%d bytes): %w", i, n, err)
						return
					}
				}
				errc <- nil
			}()
			buf := make([]byte, 4096)
			for i, n := range sizes {
				got, err := read(dir.to, buf, 5*time.Second)
				if err != nil {
					t.Fatalf("read frame %d: %v", i, err)
				}
				if !bytes.Equal(buf[:got], frame(uint32(i), n)) {
					t.Fatalf("frame %d: got %d bytes, want %d (or contents differ)", i, got, n)
				}
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestFileBothWays streams 256 KiB each way at the same time in 1501-byte
// transfers and compares digests; it logs the raw bulk throughput.
func TestFileBothWays(t *testing.T) {
	a, b := openPair(t)
	const total, chunk = 256 << 10, 1501
	data := func(seed uint64) []byte {
		d := make([]byte, total)
		r := rand.New(rand.NewPCG(seed, 1))
		for i := range d {
			d[i] = byte(r.Uint32())
		}
		return d
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i, p := range []struct{ from, to *end }{{a, b}, {b, a}} {
		src := data(uint64(i))
		wg.Add(2)
		go func() {
			defer wg.Done()
			for off := 0; off < len(src); off += chunk {
				if _, err := write(t, p.from, src[off:min(off+chunk, len(src))], 10*time.Second); err != nil {
					errs <- fmt.Errorf("%s write at %d: %w", p.from.serial, off, err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			h := sha256.New()
			buf := make([]byte, 2048)
			for got := 0; got < len(src); {
				n, err := read(p.to, buf, 10*time.Second)
				if err != nil {
					errs <- fmt.Errorf("%s read at %d: %w", p.to.serial, got, err)
					return
				}
				h.Write(buf[:n])
				got += n
			}
			if want := sha256.Sum256(src); !bytes.Equal(h.Sum(nil), want[:]) {
				errs <- fmt.Errorf("%s received a file with the wrong digest", p.to.serial)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	el := time.Since(start)
	t.Logf("raw bulk: 2 x %d KiB in %v = %.0f KiB/s each way (emulated, TCG)", total>>10, el.Round(time.Millisecond), float64(total>>10)/el.Seconds())
}

// TestRoundTrip logs the raw round-trip time of a 1-byte echo through the
// cable (A writes, B reads and writes back, A reads).
func TestRoundTrip(t *testing.T) {
	a, b := openPair(t)
	const rounds = 50
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 512)
		for i := 0; i < rounds; i++ {
			n, err := read(b, buf, 5*time.Second)
			if err == nil {
				_, err = write(t, b, buf[:n], 5*time.Second)
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	buf := make([]byte, 512)
	start := time.Now()
	for i := 0; i < rounds; i++ {
		if _, err := write(t, a, []byte{byte(i)}, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		n, err := read(a, buf, 5*time.Second)
		if err != nil || n != 1 || buf[0] != byte(i) {
			t.Fatalf("echo %d: %d bytes %x, %v", i, n, buf[:n], err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("raw round trip: %v per 1-byte echo (emulated, TCG)", (time.Since(start) / rounds).Round(time.Microsecond))
}

// TestWriterStalls fills the cable while the far side does not read: the
// writer must time out having handed over no more than the FIFO holds, and
// the far side must then receive exactly those bytes.
func TestWriterStalls(t *testing.T) {
	a, b := openPair(t)
	fifo := 2048
	var sent []byte
	stalled := false
	for i := 0; i < 64; i++ {
		f := frame(uint32(i), 501)
		n, err := write(t, a, f, 300*time.Millisecond)
		sent = append(sent, f[:n]...)
		if err != nil {
			if !errors.Is(err, gousb.TransferCancelled) && !errors.Is(err, gousb.ErrorTimeout) && !errors.Is(err, gousb.TransferTimedOut) {
				t.Fatalf("write %d: %v, want a timeout", i, err)
			}
			stalled = true
			break
		}
	}
	if !stalled {
		t.Fatalf("wrote %d bytes without the far side reading and never stalled", len(sent))
	}
	if len(sent) > fifo {
		t.Errorf("cable accepted %d bytes before stalling, want at most the FIFO's %d", len(sent), fifo)
	}
	if len(sent) < fifo/2 {
		t.Errorf("cable accepted only %d bytes before stalling, want about the FIFO's %d", len(sent), fifo)
	}
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := read(b, buf, 300*time.Millisecond)
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	if !bytes.Equal(got, sent) {
		t.Errorf("far side read %d bytes, writer handed over %d (or contents differ)", len(got), len(sent))
	}
	t.Logf("stalled after %d bytes, far side then read %d", len(sent), len(got))
	// The cable still works afterwards.
	f := frame(99, 77)
	if _, err := write(t, a, f, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	n, err := read(b, buf, 2*time.Second)
	if err != nil || !bytes.Equal(buf[:n], f) {
		t.Fatalf("after the stall: read %d bytes, %v", n, err)
	}
}

// control sends a command to the gadget and waits until it was carried out.
func control(t *testing.T, cmd string) {
	t.Helper()
	ctl, state := os.Getenv("P2PLINK_USBRIG_CTL"), os.Getenv("P2PLINK_USBRIG_STATE")
	if ctl == "" || state == "" {
		t.Skip("P2PLINK_USBRIG_CTL/P2PLINK_USBRIG_STATE not set")
	}
	seq := func() string {
		b, _ := os.ReadFile(state)
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return ""
		}
		return f[0]
	}
	before := seq()
	if err := os.WriteFile(ctl, []byte(cmd+"\n"), 0); err != nil {
		t.Fatalf("gadget control %q: %v", cmd, err)
	}
	waitFor(t, 5*time.Second, "gadget to carry out "+cmd, func() bool { return seq() != before })
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestZeroLengthPackets: with the cable passing ZLPs, a 512-byte transfer
// followed by a ZLP ends the far side's read at 512; with the cable
// dropping them, it runs on into the next bytes.
func TestZeroLengthPackets(t *testing.T) {
	a, b := openPair(t)
	if a.mps != 512 {
		t.Skipf("needs high speed (wMaxPacketSize 512), have %d", a.mps)
	}
	defer control(t, "zlp keep")
	for _, c := range []struct {
		mode  string
		reads []int
	}{{"keep", []int{512, 3}}, {"drop", []int{515}}} {
		t.Run(c.mode, func(t *testing.T) {
			control(t, "zlp "+c.mode)
			for _, p := range [][]byte{frame(1, 512), nil, frame(2, 3)} {
				if _, err := write(t, a, p, 2*time.Second); err != nil {
					t.Fatalf("write %d bytes: %v", len(p), err)
				}
			}
			buf := make([]byte, 2048)
			for i, want := range c.reads {
				n, err := read(b, buf, 2*time.Second)
				if err != nil || n != want {
					t.Fatalf("read %d: %d bytes, %v; want %d", i, n, err, want)
				}
			}
			if n, err := read(b, buf, 200*time.Millisecond); err == nil {
				t.Fatalf("unexpected extra transfer of %d bytes", n)
			}
		})
	}
}

// present lists the serial numbers of the bridge ends libusb currently
// sees, without opening them.
func present(ctx *gousb.Context) map[int]bool {
	buses := map[int]bool{}
	_, _ = ctx.OpenDevices(func(d *gousb.DeviceDesc) bool {
		if d.Vendor == vid && d.Product == pid {
			buses[d.Bus] = true
		}
		return false
	})
	return buses
}

// TestUnplugReplug unplugs end B: A's peer status must show the far side
// unplugged, B's handle must fail, libusb must see B leave and come back
// (through the rig's uevent forwarder), and data must cross again after
// B is reopened.
func TestUnplugReplug(t *testing.T) {
	needRig(t)
	ctx := newContext(t)
	a := openEnd(t, ctx, serialA)
	b := openEnd(t, ctx, serialB)
	defer control(t, "plug b")

	control(t, "unplug b")
	waitFor(t, 5*time.Second, "A's peer status to show B unplugged", func() bool {
		st, err := a.peerStatus()
		return err == nil && st[1]&2 != 0 && st[0]&2 == 0
	})
	waitFor(t, 5*time.Second, "libusb to see B leave", func() bool { return !present(ctx)[b.bus] })
	if _, err := write(t, b, []byte{1}, 500*time.Millisecond); err == nil {
		t.Errorf("write on an unplugged end succeeded")
	}
	b.close()

	control(t, "plug b")
	waitFor(t, 10*time.Second, "libusb to see B come back", func() bool { return present(ctx)[b.bus] })
	waitFor(t, 5*time.Second, "A's peer status to show B attached", func() bool {
		st, err := a.peerStatus()
		return err == nil && st == [2]byte{0, 0}
	})
	b2 := openEnd(t, ctx, serialB)
	drain(a)
	buf := make([]byte, 4096)
	for i, p := range []struct{ from, to *end }{{a, b2}, {b2, a}} {
		f := frame(uint32(i), 1001)
		if _, err := write(t, p.from, f, 2*time.Second); err != nil {
			t.Fatalf("after replug, write %s: %v", p.from.serial, err)
		}
		n, err := read(p.to, buf, 2*time.Second)
		if err != nil || !bytes.Equal(buf[:n], f) {
			t.Fatalf("after replug, read %s: %d bytes, %v", p.to.serial, n, err)
		}
	}
}

// TestUnplugMidTransfer streams numbered frames from A to B, unplugs and
// replugs B in the middle, and checks that frames flow again afterwards,
// intact and in order.
func TestUnplugMidTransfer(t *testing.T) {
	needRig(t)
	ctx := newContext(t)
	a := openEnd(t, ctx, serialA)
	b := openEnd(t, ctx, serialB)
	defer control(t, "plug b")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // writer: keeps sending, riding out stalls while B is away
		defer wg.Done()
		for seq := uint32(0); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			for {
				if _, err := write(t, a, frame(seq, 601), 200*time.Millisecond); err == nil {
					break
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	buf := make([]byte, 2048)
	readFrames := func(e *end, n int) (first, last uint32) {
		t.Helper()
		got := 0
		for got < n {
			k, err := read(e, buf, 5*time.Second)
			if err != nil {
				t.Fatalf("read frame: %v", err)
			}
			if k != 601 {
				continue // a frame cut by the unplug
			}
			seq := binary.BigEndian.Uint32(buf)
			if !bytes.Equal(buf[:k], frame(seq, 601)) {
				t.Fatalf("frame %d corrupted", seq)
			}
			if got > 0 && seq <= last {
				t.Fatalf("frame %d after %d: out of order", seq, last)
			}
			if got == 0 {
				first = seq
			}
			last = seq
			got++
		}
		return first, last
	}
	_, lastBefore := readFrames(b, 20)
	control(t, "unplug b")
	b.close()
	control(t, "plug b")
	waitFor(t, 10*time.Second, "libusb to see B come back", func() bool { return present(ctx)[b.bus] })
	b2 := openEnd(t, ctx, serialB)
	first, last := readFrames(b2, 20)
	if first <= lastBefore {
		t.Errorf("after replug got frame %d, not after %d", first, lastBefore)
	}
	t.Logf("frames up to %d before unplug, %d..%d after replug", lastBefore, first, last)
}
