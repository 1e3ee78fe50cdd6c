// Package usbnetreal runs usbnet's Link over the usbrig VM's real kernel
// USB stack (dummy_hcd + FunctionFS bridge cable), through libusb: both
// cables found and opened, frames of every length both ways, a file with a
// chat line during it, a stalled writer, an unplug and replug mid-transfer,
// and a cable that drops zero-length packets.
//
// The tests run only inside the rig (P2PLINK_USB_REAL=1, set by
// testdata/usbrig/run); elsewhere they skip.
package usbnetreal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gousb"
	"github.com/p2plink/p2plink/link"
	"github.com/p2plink/p2plink/usbnet"
)

func needRig(t testing.TB) {
	t.Helper()
	if os.Getenv("P2PLINK_USB_REAL") != "1" {
		t.Skip("needs the usbrig VM (run testdata/usbrig/run; it sets P2PLINK_USB_REAL=1)")
	}
}

// openPair opens both ends of the rig's cable as usbnet Links, each picked
// by its bus, and waits until both are up.
func openPair(t testing.TB, tune func(*usbnet.Config)) (a, b *usbnet.Link) {
	t.Helper()
	needRig(t)
	cables, err := usbnet.Cables()
	if err != nil {
		t.Fatalf("list cables: %v", err)
	}
	var buses []int
	var chip usbnet.Chip
	for _, c := range cables {
		if c.Chip.Family == usbnet.PL25A1 {
			buses = append(buses, c.Bus)
			chip = c.Chip
		}
	}
	sort.Ints(buses)
	if len(buses) != 2 {
		t.Fatalf("found %d PL-25A1 cables (%v), want the rig's two ends", len(buses), cables)
	}
	open := func(bus int) *usbnet.Link {
		// Ids and bus, as `p2plink usb --device 067b:25a1 --bus N` would:
		// a bus number alone also matches the bus's root hub.
		cfg := usbnet.Config{
			Vendor:       chip.Vendor,
			Product:      chip.Product,
			BusNum:       bus,
			Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
			PollInterval: 50 * time.Millisecond,
		}
		if tune != nil {
			tune(&cfg)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l, err := usbnet.Open(ctx, cfg)
		if err != nil {
			t.Fatalf("open cable on bus %d: %v", bus, err)
		}
		t.Cleanup(func() {
			if err := l.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return l
	}
	a, b = open(buses[0]), open(buses[1])
	waitFor(t, 10*time.Second, "both ends up", func() bool { return a.Up() && b.Up() })
	return a, b
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// control sends a command to the rig's gadget and waits until it is done.
func control(t testing.TB, cmd string) {
	t.Helper()
	ctl, state := os.Getenv("P2PLINK_USBRIG_CTL"), os.Getenv("P2PLINK_USBRIG_STATE")
	if ctl == "" || state == "" {
		t.Skip("P2PLINK_USBRIG_CTL/P2PLINK_USBRIG_STATE not set")
	}
	seq := func() string {
		b, _ := os.ReadFile(state)
		if f := strings.Fields(string(b)); len(f) > 0 {
			return f[0]
		}
		return ""
	}
	before := seq()
	if err := os.WriteFile(ctl, []byte(cmd+"\n"), 0); err != nil {
		t.Fatalf("gadget control %q: %v", cmd, err)
	}
	waitFor(t, 5*time.Second, "the gadget to carry out "+cmd, func() bool { return seq() != before })
}

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

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// writeRetry writes one frame, retrying while the far side is slow or away.
func writeRetry(l *usbnet.Link, p []byte, stop <-chan struct{}) error {
	for {
		_, err := l.WriteTo(p, nil)
		if err == nil {
			return nil
		}
		if !isTimeout(err) && !errors.Is(err, link.ErrDisconnected) {
			return err
		}
		select {
		case <-stop:
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// drainLink discards the frames a link holds from an earlier test, until
// it has been quiet for 200ms.
func drainLink(l *usbnet.Link) {
	buf := make([]byte, l.MTU())
	for {
		_, err := readFrame(l, buf, 200*time.Millisecond)
		if err != nil && !errors.Is(err, link.ErrDisconnected) {
			return
		}
	}
}

func readFrame(l *usbnet.Link, buf []byte, d time.Duration) (int, error) {
	l.SetReadDeadline(time.Now().Add(d))
	n, _, err := l.ReadFrom(buf)
	return n, err
}

func TestCablesFoundAndOpened(t *testing.T) {
	a, b := openPair(t, nil)
	for _, l := range []*usbnet.Link{a, b} {
		if got := l.LocalAddr().String(); got != "067b:25a1" {
			t.Errorf("LocalAddr %q, want 067b:25a1", got)
		}
		if l.MTU() != usbnet.MTU {
			t.Errorf("MTU %d, want %d", l.MTU(), usbnet.MTU)
		}
	}
}

// TestFramesAwkwardLengths sends frames of the lengths most likely to go
// wrong each way: tiny ones, the MTU, and every length whose Ethernet frame
// lands within two bytes of a multiple of 64 (so within two of every
// multiple of 512 as well). Each must arrive once and intact.
func TestFramesAwkwardLengths(t *testing.T) {
	a, b := openPair(t, nil)
	mtu := a.MTU()
	var sizes []int
	for n := 1; n <= mtu; n++ {
		if d := (n + 14) % 64; n <= 16 || n >= mtu-2 || d <= 2 || d >= 62 {
			sizes = append(sizes, n)
		}
	}
	for _, dir := range []struct {
		name     string
		from, to *usbnet.Link
	}{{"A->B", a, b}, {"B->A", b, a}} {
		t.Run(dir.name, func(t *testing.T) {
			errc := make(chan error, 1)
			go func() {
				for _, n := range sizes {
					if _, err := dir.from.WriteTo(frame(uint32(n), n), nil); err != nil {
						errc <- fmt.Errorf("write %d bytes: %w", n, err)
						return
					}
				}
				errc <- nil
			}()
			buf := make([]byte, mtu)
			for _, n := range sizes {
				got, err := readFrame(dir.to, buf, 10*time.Second)
				if err != nil {
					t.Fatalf("read frame of %d bytes: %v", n, err)
				}
				if !bytes.Equal(buf[:got], frame(uint32(n), n)) {
					t.Fatalf("frame %d: got %d bytes, want %d (or contents differ)", n, got, n)
				}
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestFileWithChat sends a 256 KiB file from A to B in MTU-sized frames while
// B sends chat lines to A; every chat line must arrive during the transfer
// and the file must arrive whole. It logs the throughput.
func TestFileWithChat(t *testing.T) {
	a, b := openPair(t, nil)
	const size = 256 << 10
	file := make([]byte, size)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range file {
		file[i] = byte(r.Uint32())
	}
	chunk := a.MTU() - 4
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	stop := make(chan struct{})
	var abortOnce sync.Once
	abort := func() { abortOnce.Do(func() { close(stop) }) } // ends every retry loop
	defer abort()
	wg.Add(1)
	go func() { // the file: seq, then data
		defer wg.Done()
		p := make([]byte, a.MTU())
		for seq, off := uint32(0), 0; off < size; seq, off = seq+1, off+chunk {
			binary.BigEndian.PutUint32(p, seq)
			n := copy(p[4:], file[off:min(off+chunk, size)])
			if err := writeRetry(a, p[:4+n], stop); err != nil {
				errs <- fmt.Errorf("file write: %w", err)
				abort()
				return
			}
		}
	}()
	wg.Add(1)
	go func() { // B reads the file and chats
		defer wg.Done()
		h := sha256.New()
		buf := make([]byte, b.MTU())
		next, got, lines := uint32(0), 0, 0
		for got < size {
			if got > lines*(size/8) && lines < 8 {
				if err := writeRetry(b, []byte(fmt.Sprintf("chat %d", lines)), stop); err != nil {
					errs <- fmt.Errorf("chat write: %w", err)
					abort()
					return
				}
				lines++
			}
			n, err := readFrame(b, buf, 10*time.Second)
			if err != nil {
				errs <- fmt.Errorf("file read at %d: %w", got, err)
				abort()
				return
			}
			if seq := binary.BigEndian.Uint32(buf); seq != next {
				errs <- fmt.Errorf("file frame %d, want %d", seq, next)
				abort()
				return
			}
			next++
			h.Write(buf[4:n])
			got += n - 4
		}
		if want := sha256.Sum256(file); !bytes.Equal(h.Sum(nil), want[:]) {
			errs <- errors.New("file arrived with the wrong digest")
		}
	}()
	var chats []string
	buf := make([]byte, a.MTU())
	for len(chats) < 8 {
		n, err := readFrame(a, buf, 20*time.Second)
		if err != nil {
			t.Errorf("chat read after %d lines: %v", len(chats), err)
			abort()
			break
		}
		chats = append(chats, string(buf[:n]))
	}
	chatAt := time.Since(start)
	wg.Wait()
	el := time.Since(start)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, c := range chats {
		if c != fmt.Sprintf("chat %d", i) {
			t.Errorf("chat line %d = %q", i, c)
		}
	}
	t.Logf("usbnet: 256 KiB file in %v = %.0f KiB/s, with 8 chat lines back during it (last at %v) (emulated, TCG)",
		el.Round(time.Millisecond), 256/el.Seconds(), chatAt.Round(time.Millisecond))
}

// TestRoundTrip logs the round trip of a small frame through usbnet.
func TestRoundTrip(t *testing.T) {
	a, b := openPair(t, nil)
	const rounds = 50
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, b.MTU())
		for range rounds {
			n, err := readFrame(b, buf, 5*time.Second)
			if err == nil {
				_, err = b.WriteTo(buf[:n], nil)
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	buf := make([]byte, a.MTU())
	start := time.Now()
	for i := range rounds {
		if _, err := a.WriteTo([]byte{byte(i)}, nil); err != nil {
			t.Fatal(err)
		}
		n, err := readFrame(a, buf, 5*time.Second)
		if err != nil || n != 1 || buf[0] != byte(i) {
			t.Fatalf("echo %d: %d bytes, %v", i, n, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	t.Logf("usbnet round trip: %v per 1-byte frame (emulated, TCG)", (time.Since(start) / rounds).Round(time.Microsecond))
}

// TestWriterStalls: while B's owner does not call ReadFrom, A's writes
// must end in a timeout (the cable's FIFO and B's queue full), and every
// frame A was told was sent must then reach B intact and in order.
func TestWriterStalls(t *testing.T) {
	a, b := openPair(t, func(c *usbnet.Config) { c.TransferTimeout = 300 * time.Millisecond })
	sent := 0
	var werr error
	for ; sent < 1000; sent++ {
		if _, werr = a.WriteTo(frame(uint32(sent), 701), nil); werr != nil {
			break
		}
	}
	if werr == nil {
		t.Fatalf("wrote %d frames with nobody reading and never stalled", sent)
	}
	if !isTimeout(werr) {
		t.Fatalf("stalled write: %v, want a timeout", werr)
	}
	buf := make([]byte, b.MTU())
	got := 0
	for {
		n, err := readFrame(b, buf, 500*time.Millisecond)
		if err != nil {
			break
		}
		if n == 701 && bytes.Equal(buf[:n], frame(uint32(got), 701)) {
			got++
			continue
		}
		if seq := binary.BigEndian.Uint32(buf); int(seq) == sent && n == 701 {
			continue // the frame whose write timed out may have gone through
		}
		t.Fatalf("frame %d after the stall: %d bytes, not the one sent", got, n)
	}
	if got != sent {
		t.Errorf("B read %d frames, A sent %d before stalling", got, sent)
	}
	t.Logf("A stalled after %d frames of 701 bytes (%v); B then read them all", sent, werr)
	if _, err := a.WriteTo([]byte("after"), nil); err != nil {
		t.Fatalf("write after the stall: %v", err)
	}
	if n, err := readFrame(b, buf, 2*time.Second); err != nil || string(buf[:n]) != "after" {
		t.Fatalf("read after the stall: %q, %v", buf[:n], err)
	}
}

// TestUnplugReplugMidTransfer streams numbered frames toward one end and
// small ones back, unplugs that end in the middle and plugs it back: both
// Links must report link.ErrDisconnected, then carry frames both ways
// again without being reopened. Each end takes a turn at being unplugged.
func TestUnplugReplugMidTransfer(t *testing.T) {
	a, b := openPair(t, func(c *usbnet.Config) { c.TransferTimeout = 500 * time.Millisecond })
	t.Run("unplug B", func(t *testing.T) { unplugMidTransfer(t, a, b, "b") })
	t.Run("unplug A", func(t *testing.T) { unplugMidTransfer(t, b, a, "a") })
}

func unplugMidTransfer(t *testing.T, src, dst *usbnet.Link, dstName string) {
	defer control(t, "plug "+dstName)
	drainLink(src)
	drainLink(dst)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writeErrs sync.Map
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := uint32(0); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			for {
				_, err := src.WriteTo(frame(seq, 801), nil)
				if err == nil {
					break
				}
				writeErrs.Store(errors.Is(err, link.ErrDisconnected), true)
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
	}()
	// The other way at the same time: small numbered frames, as a peer
	// protocol's acknowledgements would be.
	var afterReplug, backAfterReplug atomic.Int64
	wg.Add(2)
	go func() {
		defer wg.Done()
		for seq := uint32(0); ; seq++ {
			if writeRetry(dst, frame(seq, 33), stop) != nil {
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, src.MTU())
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, err := readFrame(src, buf, 200*time.Millisecond)
			if err != nil {
				continue
			}
			seq := binary.BigEndian.Uint32(buf)
			if n != 33 || !bytes.Equal(buf[:n], frame(seq, 33)) {
				t.Errorf("back-channel frame %d corrupted (%d bytes)", seq, n)
				return
			}
			if afterReplug.Load() != 0 {
				backAfterReplug.Add(1)
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	buf := make([]byte, dst.MTU())
	var last uint32
	readN := func(n int) (first uint32, sawDisconnect bool) {
		t.Helper()
		for got := 0; got < n; {
			k, err := readFrame(dst, buf, 15*time.Second)
			if errors.Is(err, link.ErrDisconnected) {
				sawDisconnect = true
				continue
			}
			if err != nil {
				t.Fatalf("read after %d frames: %v", got, err)
			}
			seq := binary.BigEndian.Uint32(buf)
			if k != 801 || !bytes.Equal(buf[:k], frame(seq, 801)) {
				t.Fatalf("frame %d corrupted (%d bytes)", seq, k)
			}
			if got == 0 {
				first = seq
			} else if seq <= last {
				t.Fatalf("frame %d after %d", seq, last)
			}
			last = seq
			got++
		}
		return first, sawDisconnect
	}
	readN(20)
	before := last
	control(t, "unplug "+dstName)
	waitFor(t, 5*time.Second, "the writer to see the far end leave", func() bool { return !src.Up() })
	waitFor(t, 5*time.Second, "the writer's WriteTo to fail with link.ErrDisconnected while the far end is away", func() bool {
		_, ok := writeErrs.Load(true)
		return ok
	})
	control(t, "plug "+dstName)
	afterReplug.Store(1)
	first, sawDisconnect := readN(20)
	waitFor(t, 10*time.Second, "back-channel frames after the replug", func() bool { return backAfterReplug.Load() >= 10 })
	if !sawDisconnect {
		t.Errorf("the unplugged end's ReadFrom never returned link.ErrDisconnected across the unplug")
	}
	if first <= before {
		t.Errorf("after replug frame %d, not after %d", first, before)
	}
	t.Logf("frames up to %d before unplug, %d..%d after replug", before, first, last)
}

// TestZeroLengthPacketsDropped: with a cable that drops zero-length
// packets, frames of lengths around multiples of 512 still arrive intact,
// because usbnet never relies on a ZLP to end a transfer.
func TestZeroLengthPacketsDropped(t *testing.T) {
	a, b := openPair(t, nil)
	control(t, "zlp drop")
	defer control(t, "zlp keep")
	var sizes []int
	for _, m := range []int{512, 1024, 1536} {
		for d := -20; d <= 20; d++ {
			if n := m + d; n >= 1 && n <= a.MTU() {
				sizes = append(sizes, n)
			}
		}
	}
	errc := make(chan error, 1)
	go func() {
		for i, n := range sizes {
			if _, err := a.WriteTo(frame(uint32(i), n), nil); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	buf := make([]byte, b.MTU())
	for i, n := range sizes {
		got, err := readFrame(b, buf, 5*time.Second)
		if err != nil || !bytes.Equal(buf[:got], frame(uint32(i), n)) {
			t.Fatalf("frame %d of %d bytes: got %d bytes, %v", i, n, got, err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// The benchmarks below put usbnet beside raw gousb bulk transfers of the
// same wire size on the same cable, in the same VM run (figures are
// emulated: QEMU TCG, dummy_hcd). Run by testdata/usbrig/run with
// -test.bench=. ; ns/op of the Echo pair is the round trip.

type rawEnd struct {
	dev  *gousb.Device
	cfg  *gousb.Config
	intf *gousb.Interface
	in   *gousb.InEndpoint
	out  *gousb.OutEndpoint
}

// openRaw opens both cable ends with plain gousb, endpoints from the
// descriptors, ordered by bus.
func openRaw(b *testing.B) (x, y *rawEnd) {
	needRig(b)
	ctx := gousb.NewContext()
	b.Cleanup(func() { ctx.Close() })
	devs, err := ctx.OpenDevices(func(d *gousb.DeviceDesc) bool {
		_, ok := usbnet.LookupChip(uint16(d.Vendor), uint16(d.Product))
		return ok
	})
	if err != nil || len(devs) != 2 {
		for _, d := range devs {
			d.Close()
		}
		b.Fatalf("open the two cable ends: %d found, %v", len(devs), err)
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i].Desc.Bus < devs[j].Desc.Bus })
	var ends []*rawEnd
	for _, d := range devs {
		e := &rawEnd{dev: d}
		b.Cleanup(func() {
			if e.intf != nil {
				e.intf.Close()
			}
			if e.cfg != nil {
				e.cfg.Close()
			}
			d.Close()
		})
		d.SetAutoDetach(true)
		if e.cfg, err = d.Config(1); err != nil {
			b.Fatal(err)
		}
		if e.intf, err = e.cfg.Interface(0, 0); err != nil {
			b.Fatal(err)
		}
		for _, ep := range e.intf.Setting.Endpoints {
			if ep.TransferType != gousb.TransferTypeBulk {
				continue
			}
			if ep.Direction == gousb.EndpointDirectionIn {
				e.in, err = e.intf.InEndpoint(ep.Number)
			} else {
				e.out, err = e.intf.OutEndpoint(ep.Number)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		ends = append(ends, e)
	}
	return ends[0], ends[1]
}

func rawXfer(f func(context.Context, []byte) (int, error), p []byte) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return f(ctx, p)
}

// BenchmarkRawBulkOneWay: transfers of an MTU frame's wire size (1511
// bytes), A to B, with plain gousb.
func BenchmarkRawBulkOneWay(b *testing.B) {
	x, y := openRaw(b)
	p := frame(1, usbnet.MTU+14)
	b.SetBytes(int64(usbnet.MTU))
	b.ReportAllocs()
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		for i := 0; i < b.N; i++ {
			if _, err := rawXfer(y.in.ReadContext, buf); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < b.N; i++ {
		if _, err := rawXfer(x.out.WriteContext, p); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRawBulkEcho: a 15-byte transfer A to B and back; ns/op is the
// round trip.
func BenchmarkRawBulkEcho(b *testing.B) {
	x, y := openRaw(b)
	p := frame(2, 15)
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 512)
		for i := 0; i < b.N; i++ {
			n, err := rawXfer(y.in.ReadContext, buf)
			if err == nil {
				_, err = rawXfer(y.out.WriteContext, buf[:n])
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	buf := make([]byte, 512)
	for i := 0; i < b.N; i++ {
		if _, err := rawXfer(x.out.WriteContext, p); err != nil {
			b.Fatal(err)
		}
		if _, err := rawXfer(x.in.ReadContext, buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLinkOneWay: MTU frames A to B through usbnet.
func BenchmarkLinkOneWay(b *testing.B) {
	a, c := openPair(b, nil)
	p := frame(3, a.MTU())
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, c.MTU())
		for i := 0; i < b.N; i++ {
			if _, err := readFrame(c, buf, 5*time.Second); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < b.N; i++ {
		if _, err := a.WriteTo(p, nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLinkEcho: a 1-byte frame (15 bytes on the wire) A to B and
// back through usbnet; ns/op is the round trip.
func BenchmarkLinkEcho(b *testing.B) {
	a, c := openPair(b, nil)
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, c.MTU())
		for i := 0; i < b.N; i++ {
			n, err := readFrame(c, buf, 5*time.Second)
			if err == nil {
				_, err = c.WriteTo(buf[:n], nil)
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	buf := make([]byte, a.MTU())
	for i := 0; i < b.N; i++ {
		if _, err := a.WriteTo([]byte{byte(i)}, nil); err != nil {
			b.Fatal(err)
		}
		if _, err := readFrame(a, buf, 5*time.Second); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
