package usbnet_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2plink/p2plink/framing"
	"github.com/p2plink/p2plink/link"
	"github.com/p2plink/p2plink/usbnet"
	"github.com/p2plink/p2plink/usbnet/usbtest"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func open(t testing.TB, bus usbnet.Bus) *usbnet.Link {
	t.Helper()
	l, err := usbnet.Open(context.Background(), usbnet.Config{Bus: bus, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func pair(t testing.TB, cfg usbtest.Config) (*usbtest.Cable, *usbnet.Link, *usbnet.Link) {
	t.Helper()
	c := usbtest.New(cfg)
	return c, open(t, c.A()), open(t, c.B())
}

// settle lets a synctest bubble's fake clock run past a few status polls, so
// that both ends have seen each other.
func settle() {
	time.Sleep(time.Second)
	synctest.Wait()
}

// cables are the chips and endpoint layouts every behaviour is checked on.
var cables = []struct {
	name string
	cfg  usbtest.Config
}{
	{"PL-25A1", usbtest.Config{}},
	{"PL-25A1/dummy_hcd endpoints", usbtest.Config{BulkIn: 0x86, BulkOut: 0x02, IntrIn: 0x83}},
	{"Belkin full speed", usbtest.Config{Vendor: 0x050d, Product: 0x258a, MaxPacketSize: 64}},
	{"PL-27A1 super speed", usbtest.Config{Vendor: 0x067b, Product: 0x27a1, MaxPacketSize: 1024, FIFO: 4096}},
	{"PL-2301", usbtest.Config{Vendor: 0x067b, Product: 0x0000, MaxPacketSize: 64}},
	{"PL-2302", usbtest.Config{Vendor: 0x067b, Product: 0x0001, MaxPacketSize: 64}},
	{"NET1080", usbtest.Config{Vendor: 0x0525, Product: 0x1080, MaxPacketSize: 64}},
	{"GL620A", usbtest.Config{Vendor: 0x05e3, Product: 0x0502, MaxPacketSize: 64, FIFO: 4096}},
	{"AN2720 cdc_subset", usbtest.Config{Vendor: 0x0547, Product: 0x2720, MaxPacketSize: 64}},
	{"ALi M5632 cdc_subset", usbtest.Config{Vendor: 0x0402, Product: 0x5632}},
}

// sizes crosses every packet boundary that matters: empty, the Ethernet
// minimum, lengths that make the frame a multiple of 64, 512 and 1024.
var sizes = []int{0, 1, 42, 43, 44, 47, 48, 49, 110, 111, 112, 494, 495, 496, 1006, 1007, 1008, 1400, usbnet.MTU}

func payload(n, seed int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + seed)
	}
	return p
}

func TestFramesBothWays(t *testing.T) {
	for _, tc := range cables {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, a, b := pair(t, tc.cfg)
				settle()
				if !a.Up() || !b.Up() {
					t.Fatalf("link not up after open: a %v, b %v", a.Up(), b.Up())
				}
				buf := make([]byte, usbnet.MTU)
				for _, dir := range []struct {
					name     string
					from, to *usbnet.Link
				}{{"a→b", a, b}, {"b→a", b, a}} {
					for i, n := range sizes {
						p := payload(n, i)
						go func() {
							if _, err := dir.from.WriteTo(p, nil); err != nil {
								t.Errorf("%s WriteTo(%d bytes): %v", dir.name, n, err)
							}
						}()
						got, addr, err := dir.to.ReadFrom(buf)
						if err != nil || !bytes.Equal(buf[:got], p) || addr != link.PeerAddr {
							t.Fatalf("%s: %d-byte frame came out as %d bytes from %v, %v", dir.name, n, got, addr, err)
						}
					}
				}
				if s := b.Stats(); s.Dropped != 0 || s.FramesIn != uint64(len(sizes)) {
					t.Errorf("b stats %+v", s)
				}
			})
		})
	}
}

type rawEnd struct {
	dev usbnet.Device
	in  usbnet.EndpointReader
	out usbnet.EndpointWriter
	mps int
}

// openRaw claims an end of the cable without the driver, as another stack
// (the kernel's plusb) would.
func openRaw(t *testing.T, e *usbtest.End) rawEnd {
	t.Helper()
	devs, _ := e.Devices()
	info := devs[len(devs)-1]
	dev, err := e.Open(info)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	if err := dev.Claim(1, 0, 0); err != nil {
		t.Fatal(err)
	}
	r := rawEnd{dev: dev}
	for _, ep := range info.Interfaces[0].Endpoints {
		switch {
		case ep.Type == usbnet.Bulk && ep.IsIn():
			r.in, _ = dev.In(ep.Address)
		case ep.Type == usbnet.Bulk:
			r.out, _ = dev.Out(ep.Address)
			r.mps = ep.MaxPacketSize
		}
	}
	return r
}

func TestNoTransferIsAMultipleOfMaxPacket(t *testing.T) {
	for _, mps := range []int{64, 512} {
		c := usbtest.New(usbtest.Config{MaxPacketSize: mps, FIFO: 4096})
		a := open(t, c.A())
		raw := openRaw(t, c.B())
		buf := make([]byte, 2048)
		for n := 0; n <= usbnet.MTU; n++ {
			p := payload(n, n)
			if _, err := a.WriteTo(p, nil); err != nil {
				t.Fatal(err)
			}
			got, err := raw.in.ReadContext(context.Background(), buf)
			if err != nil {
				t.Fatal(err)
			}
			if got%mps == 0 {
				t.Fatalf("mps %d: %d-byte payload went out as a %d-byte transfer", mps, n, got)
			}
			_, _, pl, err := framing.DecodeEther(buf[:got])
			if err != nil || !bytes.Equal(pl, p) {
				t.Fatalf("mps %d: %d-byte payload: decoded %d bytes, %v", mps, n, len(pl), err)
			}
		}
	}
}

// kernelSide is the far end as Linux runs it: plusb or cdc_subset turn the
// cable into usb0 (usbnet.c pads a transfer that is a multiple of the packet
// size with one byte), and p2plink eth usb0 reads and writes Ethernet frames
// with framing.EncodeEther / DecodeEther, accepting only frames to its MAC
// or broadcast.
type kernelSide struct {
	raw rawEnd
	mac []byte
}

func (k kernelSide) send(t *testing.T, dst, payload []byte) {
	t.Helper()
	buf := make([]byte, 2048)
	n, err := framing.EncodeEther(buf, dst, k.mac, payload)
	if err != nil {
		t.Fatal(err)
	}
	if n%k.raw.mps == 0 {
		buf[n] = 0
		n++
	}
	if _, err := k.raw.out.WriteContext(context.Background(), buf[:n]); err != nil {
		t.Fatal(err)
	}
}

func (k kernelSide) recv(t *testing.T) (src, payload []byte) {
	t.Helper()
	buf := make([]byte, 2048)
	n, err := k.raw.in.ReadContext(context.Background(), buf)
	if err != nil {
		t.Fatal(err)
	}
	dst, src, payload, err := framing.DecodeEther(buf[:n])
	if err != nil {
		t.Fatalf("kernel side got a %d-byte transfer that is not ours: %v", n, err)
	}
	if !bytes.Equal(dst, k.mac) && !bytes.Equal(dst, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) {
		t.Fatalf("frame to %x would be filtered by ethnet on usb0 (MAC %x)", dst, k.mac)
	}
	return src, payload
}

func TestKernelDriverCompatibility(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  usbtest.Config
	}{
		{"plusb", usbtest.Config{}},
		{"plusb full speed", usbtest.Config{MaxPacketSize: 64}},
		{"cdc_subset", usbtest.Config{Vendor: 0x0547, Product: 0x2720, MaxPacketSize: 64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := usbtest.New(tc.cfg)
			a := open(t, c.A())
			k := kernelSide{raw: openRaw(t, c.B()), mac: []byte{0x02, 0, 0, 0, 0, 0x42}}
			// Before it has heard the far end, the link broadcasts.
			if _, err := a.WriteTo([]byte("hello"), nil); err != nil {
				t.Fatal(err)
			}
			src, p := k.recv(t)
			if string(p) != "hello" || !bytes.Equal(src, a.HardwareAddr()) {
				t.Fatalf("kernel side got %q from %x", p, src)
			}
			buf := make([]byte, usbnet.MTU)
			for i, n := range sizes {
				want := payload(n, i)
				k.send(t, a.HardwareAddr(), want)
				got, _, err := a.ReadFrom(buf)
				if err != nil || !bytes.Equal(buf[:got], want) {
					t.Fatalf("%d bytes from the kernel side: got %d, %v", n, got, err)
				}
				// Now the link answers to the kernel side's MAC.
				if _, err := a.WriteTo(want, nil); err != nil {
					t.Fatal(err)
				}
				if _, p := k.recv(t); !bytes.Equal(p, want) {
					t.Fatalf("%d bytes to the kernel side: got %d", n, len(p))
				}
			}
		})
	}
}

func TestGarbageIsDroppedAndCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, a, b := pair(t, usbtest.Config{})
		settle()
		ctx := context.Background()
		c.B().Write(ctx, []byte("this is not an Ethernet frame at all"))
		ipv6 := make([]byte, 80)
		ipv6[12], ipv6[13] = 0x86, 0xdd // a router solicitation from the kernel's usb0
		c.B().Write(ctx, ipv6)
		wrongVersion := make([]byte, 64)
		framing.EncodeEther(wrongVersion, make([]byte, 6), make([]byte, 6), []byte("x"))
		wrongVersion[14] = 9
		c.B().Write(ctx, wrongVersion[:61])
		go a.WriteTo([]byte("still here"), nil)
		buf := make([]byte, usbnet.MTU)
		n, _, err := b.ReadFrom(buf)
		if err != nil || string(buf[:n]) != "still here" {
			t.Fatalf("after garbage: %q, %v", buf[:n], err)
		}
		if s := b.Stats(); s.Dropped != 3 || s.Garbage != 36+80+61 || s.FramesIn != 1 {
			t.Fatalf("stats %+v; want 3 dropped, %d bytes of garbage, 1 frame in", s, 36+80+61)
		}
		if !b.Up() {
			t.Fatal("garbage took the link down")
		}
	})
}

func TestStaleBytesDrainedOnOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := usbtest.New(usbtest.Config{})
		stale := make([]byte, 700)
		framing.EncodeEther(stale, make([]byte, 6), make([]byte, 6), []byte("stale frame"))
		c.B().Write(context.Background(), stale)
		a, b := open(t, c.A()), open(t, c.B())
		if n := c.B().Buffered(); n != 0 {
			t.Fatalf("%d stale bytes left after open", n)
		}
		go a.WriteTo([]byte("fresh"), nil)
		buf := make([]byte, usbnet.MTU)
		n, _, err := b.ReadFrom(buf)
		if err != nil || string(buf[:n]) != "fresh" {
			t.Fatalf("first frame %q, %v; want fresh", buf[:n], err)
		}
	})
}

func TestUnplugAndReplug(t *testing.T) {
	for _, tc := range cables {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, a, b := pair(t, tc.cfg)
				settle()
				buf := make([]byte, usbnet.MTU)
				got := make(chan error, 1)
				go func() { _, _, err := b.ReadFrom(buf); got <- err }()
				synctest.Wait()

				c.B().Unplug() // B's host loses the cable
				if err := <-got; !errors.Is(err, link.ErrDisconnected) {
					t.Fatalf("B ReadFrom after its cable was pulled: %v", err)
				}
				time.Sleep(time.Second)
				synctest.Wait()
				if tc.cfg.Vendor == 0 || tc.cfg.Vendor == 0x050d || tc.cfg.Product == 0x27a1 || tc.cfg.Product <= 1 || tc.cfg.Vendor == 0x0525 {
					// Chips that report the far end: A sees B leave.
					if a.Up() {
						t.Fatal("A still up with B's end unplugged")
					}
					if _, err := a.WriteTo([]byte("x"), nil); !errors.Is(err, link.ErrDisconnected) {
						t.Fatalf("A WriteTo with B gone: %v", err)
					}
					if _, _, err := a.ReadFrom(buf); !errors.Is(err, link.ErrDisconnected) {
						t.Fatalf("A ReadFrom with B gone: %v", err)
					}
				}
				if _, err := b.WriteTo([]byte("x"), nil); !errors.Is(err, link.ErrDisconnected) {
					t.Fatalf("B WriteTo with its cable out: %v", err)
				}

				c.B().Plug()
				time.Sleep(time.Second)
				synctest.Wait()
				if !a.Up() || !b.Up() {
					t.Fatalf("after replug: a up %v, b up %v", a.Up(), b.Up())
				}
				for _, dir := range []struct{ from, to *usbnet.Link }{{a, b}, {b, a}} {
					go dir.from.WriteTo([]byte("back"), nil)
					for {
						n, _, err := dir.to.ReadFrom(buf)
						if errors.Is(err, link.ErrDisconnected) {
							continue // the loss is reported once, then frames flow
						}
						if err != nil || string(buf[:n]) != "back" {
							t.Fatalf("after replug: %q, %v", buf[:n], err)
						}
						break
					}
				}
			})
		})
	}
}

func TestReplugAtNewAddressWhenOpenedByAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := usbtest.New(usbtest.Config{})
		devs, _ := c.A().Devices()
		a, err := usbnet.Open(context.Background(), usbnet.Config{Bus: c.A(), Logger: quiet(), BusNum: devs[0].Bus, Address: devs[0].Address})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b := open(t, c.B())
		settle()
		c.A().Unplug()
		settle()
		c.A().Plug()
		settle()
		if now, _ := c.A().Devices(); now[0].Address == devs[0].Address {
			t.Fatal("the fake did not move the device")
		}
		if !a.Up() {
			t.Fatal("a link opened by --bus/--addr did not come back at the new address")
		}
		go b.WriteTo([]byte("moved"), nil)
		buf := make([]byte, usbnet.MTU)
		for {
			n, _, err := a.ReadFrom(buf)
			if errors.Is(err, link.ErrDisconnected) {
				continue
			}
			if err != nil || string(buf[:n]) != "moved" {
				t.Fatalf("%q, %v", buf[:n], err)
			}
			break
		}
	})
}

func TestTransferInProgressResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, a, b := pair(t, usbtest.Config{})
		settle()
		const frames = 50
		done := make(chan int)
		go func() { // a sender that retries while the link is down, as the peer layer does
			sent := 0
			for sent < frames {
				if _, err := a.WriteTo(payload(1000, sent), nil); err != nil {
					if !errors.Is(err, link.ErrDisconnected) {
						t.Errorf("write %d: %v", sent, err)
						break
					}
					time.Sleep(100 * time.Millisecond)
					continue
				}
				sent++
				if sent == frames/2 {
					c.A().Unplug() // pulled mid-transfer, and put back later
					go func() { time.Sleep(2 * time.Second); c.A().Plug() }()
				}
			}
			done <- sent
		}()
		buf := make([]byte, usbnet.MTU)
		last := -1
		for last < frames-1 {
			n, _, err := b.ReadFrom(buf)
			if errors.Is(err, link.ErrDisconnected) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := last + 1; i < frames; i++ {
				if bytes.Equal(buf[:n], payload(1000, i)) {
					last = i
					break
				}
			}
		}
		if sent := <-done; sent != frames {
			t.Fatalf("sent %d of %d", sent, frames)
		}
	})
}

func TestWedgedChipIsResetAndRehandshaken(t *testing.T) {
	for _, tc := range cables {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, a, b := pair(t, tc.cfg)
				settle()
				c.A().Halt()
				if _, err := a.WriteTo([]byte("into a wedged chip"), nil); !errors.Is(err, link.ErrDisconnected) {
					t.Fatalf("WriteTo a halted endpoint: %v; want a temporary ErrDisconnected", err)
				}
				settle()
				if !a.Up() || !b.Up() {
					t.Fatalf("after the reset: a up %v, b up %v", a.Up(), b.Up())
				}
				buf := make([]byte, usbnet.MTU)
				for _, dir := range []struct{ from, to *usbnet.Link }{{a, b}, {b, a}} {
					go dir.from.WriteTo([]byte("recovered"), nil)
					for {
						n, _, err := dir.to.ReadFrom(buf)
						if errors.Is(err, link.ErrDisconnected) {
							continue
						}
						if err != nil || string(buf[:n]) != "recovered" {
							t.Fatalf("after the reset: %q, %v", buf[:n], err)
						}
						break
					}
				}
			})
		})
	}
}

func TestReplugWhileNobodyReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, a, b := pair(t, usbtest.Config{})
		settle()
		// Fill B's receive queue and the chip's FIFO: B's reader now waits
		// for its application.
		a.SetWriteDeadline(time.Now().Add(5 * time.Second))
		for {
			if _, err := a.WriteTo(make([]byte, 1000), nil); err != nil {
				break
			}
		}
		a.SetWriteDeadline(time.Time{})
		c.B().Unplug()
		settle()
		c.B().Plug()
		settle()
		if !b.Up() {
			t.Fatal("B did not come back while its application was not reading")
		}
		go a.WriteTo([]byte("after"), nil)
		buf := make([]byte, usbnet.MTU)
		for {
			n, _, err := b.ReadFrom(buf)
			if err == nil && string(buf[:n]) == "after" {
				break
			}
			if err != nil && !errors.Is(err, link.ErrDisconnected) {
				t.Fatal(err)
			}
		}
	})
}

func TestDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := usbtest.New(usbtest.Config{})
		a := open(t, c.A())
		openRaw(t, c.B()) // the far host claims the cable but never reads

		a.SetReadDeadline(time.Now().Add(-time.Second))
		if _, _, err := a.ReadFrom(make([]byte, usbnet.MTU)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("ReadFrom past its deadline: %v", err)
		}
		a.SetReadDeadline(time.Time{})

		// Two 1000-byte frames fill the 2 KiB FIFO; the third waits.
		for range 2 {
			if _, err := a.WriteTo(make([]byte, 1000), nil); err != nil {
				t.Fatal(err)
			}
		}
		a.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		start := time.Now()
		_, err := a.WriteTo(make([]byte, 1000), nil)
		if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != 500*time.Millisecond {
			t.Fatalf("WriteTo into a full FIFO: %v after %v", err, time.Since(start))
		}
		// A deadline set while the write waits applies to it.
		a.SetWriteDeadline(time.Time{})
		res := make(chan error)
		go func() { _, err := a.WriteTo(make([]byte, 1000), nil); res <- err }()
		synctest.Wait()
		a.SetWriteDeadline(time.Now())
		if err := <-res; !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("blocked WriteTo after SetWriteDeadline(now): %v", err)
		}
		// Without a deadline, the transfer's own timeout ends it.
		a.SetWriteDeadline(time.Time{})
		if _, err := a.WriteTo(make([]byte, 1000), nil); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("WriteTo the far end never takes: %v", err)
		}
	})
}

func TestCloseUnblocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, _ := pair(t, usbtest.Config{})
		settle()
		res := make(chan error)
		go func() { _, _, err := a.ReadFrom(make([]byte, usbnet.MTU)); res <- err }()
		synctest.Wait()
		a.Close()
		if err := <-res; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("pending ReadFrom after Close: %v", err)
		}
		if _, err := a.WriteTo([]byte("x"), nil); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("WriteTo after Close: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		// Setting a deadline after Close fails as on a net.Conn (it
		// returned nil; found by review).
		for name, set := range map[string]func(time.Time) error{"SetDeadline": a.SetDeadline, "SetReadDeadline": a.SetReadDeadline, "SetWriteDeadline": a.SetWriteDeadline} {
			if err := set(time.Now()); !errors.Is(err, net.ErrClosed) {
				t.Errorf("%s after Close: %v, want net.ErrClosed", name, err)
			}
		}
	})
}

func TestWriteToRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, _ := pair(t, usbtest.Config{})
		settle()
		if _, err := a.WriteTo(make([]byte, usbnet.MTU+1), nil); !errors.Is(err, link.ErrFrameTooLarge) {
			t.Fatalf("oversize frame: %v", err)
		}
		if _, err := a.WriteTo([]byte("x"), link.Addr{Net: "usb", Name: "elsewhere"}); err == nil {
			t.Fatal("WriteTo a foreign address succeeded")
		}
		if _, err := a.WriteTo([]byte("x"), link.PeerAddr); err != nil {
			t.Fatal(err)
		}
		if a.MTU() != usbnet.MTU || a.LocalAddr().Network() != "usb" {
			t.Fatalf("MTU %d, LocalAddr %v", a.MTU(), a.LocalAddr())
		}
	})
}

func TestShortBuffer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := pair(t, usbtest.Config{})
		settle()
		go a.WriteTo(make([]byte, 100), nil)
		if _, _, err := b.ReadFrom(make([]byte, 10)); !errors.Is(err, io.ErrShortBuffer) {
			t.Fatalf("ReadFrom into 10 bytes: %v", err)
		}
		if b.Stats().Dropped != 1 {
			t.Fatalf("stats %+v", b.Stats())
		}
	})
}

// multiBus joins the buses of several fake cables, as one host with several
// cables plugged in sees them.
type multiBus []*usbtest.End

func (m multiBus) Devices() ([]usbnet.DeviceInfo, error) {
	var all []usbnet.DeviceInfo
	for i, e := range m {
		d, _ := e.Devices()
		if i > 0 {
			d = d[len(d)-1:] // the Others once
		}
		all = append(all, d...)
	}
	return all, nil
}

func (m multiBus) Open(info usbnet.DeviceInfo) (usbnet.Device, error) {
	for _, e := range m {
		if d, err := e.Open(info); err == nil {
			return d, nil
		}
	}
	return nil, usbnet.ErrNotPresent
}

func (m multiBus) Close() error { return nil }

func TestOpenErrors(t *testing.T) {
	keyboard := usbnet.DeviceInfo{Bus: 1, Address: 2, Vendor: 0x046d, Product: 0xc31c}
	ctx := context.Background()
	cfg := func(bus usbnet.Bus) usbnet.Config { return usbnet.Config{Bus: bus, Logger: quiet()} }

	t.Run("none", func(t *testing.T) {
		c := usbtest.New(usbtest.Config{Others: []usbnet.DeviceInfo{keyboard}})
		c.A().Unplug()
		_, err := usbnet.Open(ctx, cfg(c.A()))
		if !errors.Is(err, usbnet.ErrNotPresent) || !strings.Contains(err.Error(), "046d:c31c") || !strings.Contains(err.Error(), "067b:25a1") {
			t.Fatalf("no cable: %v; want ErrNotPresent naming what was looked for and what is there", err)
		}
	})
	t.Run("several", func(t *testing.T) {
		c1 := usbtest.New(usbtest.Config{Others: []usbnet.DeviceInfo{keyboard}})
		c2 := usbtest.New(usbtest.Config{BusNum: 2, Vendor: 0x050d, Product: 0x258a})
		bus := multiBus{c1.A(), c2.A()}
		_, err := usbnet.Open(ctx, cfg(bus))
		if !errors.Is(err, usbnet.ErrAmbiguous) || !strings.Contains(err.Error(), "--device VID:PID") || !strings.Contains(err.Error(), "050d:258a") {
			t.Fatalf("two cables: %v", err)
		}
		list, _ := usbnet.ListCables(bus)
		if len(list) != 2 || list[1].Chip.Family != usbnet.PL25A1 {
			t.Fatalf("ListCables = %v", list)
		}
		for _, sel := range []usbnet.Config{{BusNum: 2}, {Vendor: 0x050d, Product: 0x258a}, {BusNum: 2, Address: 4}} {
			sel.Bus, sel.Logger = bus, quiet()
			l, err := usbnet.Open(ctx, sel)
			if err != nil {
				t.Fatalf("Open(%+v): %v", sel, err)
			}
			if l.LocalAddr().String() != "050d:258a" {
				t.Errorf("Open(bus %d, %04x:%04x) took %v", sel.BusNum, sel.Vendor, sel.Product, l.LocalAddr())
			}
			l.Close()
		}
	})
	t.Run("permission", func(t *testing.T) {
		c := usbtest.New(usbtest.Config{})
		c.A().SetDenied(true)
		_, err := usbnet.Open(ctx, cfg(c.A()))
		if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "udev/70-p2plink.rules") {
			t.Fatalf("denied: %v", err)
		}
	})
	t.Run("kernel driver", func(t *testing.T) {
		c := usbtest.New(usbtest.Config{})
		c.A().SetBusy(true)
		_, err := usbnet.Open(ctx, cfg(c.A()))
		if !errors.Is(err, usbnet.ErrBusy) || !strings.Contains(err.Error(), "modprobe -r plusb") {
			t.Fatalf("busy: %v", err)
		}
	})
	t.Run("unknown ids", func(t *testing.T) {
		c := usbtest.New(usbtest.Config{Vendor: 0x1234, Product: 0x5678})
		sel := cfg(c.A())
		sel.Vendor, sel.Product = 0x1234, 0x5678
		if _, err := usbnet.Open(ctx, sel); err == nil || !strings.Contains(err.Error(), "not a known USB bridge cable") {
			t.Fatalf("unknown ids without Family: %v", err)
		}
		sel.Family = usbnet.CDCSubset
		l, err := usbnet.Open(ctx, sel)
		if err != nil {
			t.Fatalf("unknown ids with Family: %v", err)
		}
		l.Close()
	})
}

func TestChipThatStallsControlRequests(t *testing.T) {
	for _, tc := range cables {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := tc.cfg
				cfg.StallControl = true
				_, a, b := pair(t, cfg)
				settle()
				go a.WriteTo([]byte("despite stalls"), nil)
				buf := make([]byte, usbnet.MTU)
				n, _, err := b.ReadFrom(buf)
				if err != nil || string(buf[:n]) != "despite stalls" {
					t.Fatalf("%q, %v", buf[:n], err)
				}
			})
		})
	}
}

func TestUdevRulesCoverEveryChip(t *testing.T) {
	f, err := os.Open("udev/70-p2plink.rules")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		var v, p string
		for _, field := range strings.Split(line, ", ") {
			if s, ok := strings.CutPrefix(field, `ATTR{idVendor}=="`); ok {
				v = strings.TrimSuffix(s, `"`)
			}
			if s, ok := strings.CutPrefix(field, `ATTR{idProduct}=="`); ok {
				p = strings.TrimSuffix(s, `"`)
			}
		}
		if !strings.Contains(line, `GROUP="plugdev"`) || !strings.Contains(line, `TAG+="uaccess"`) {
			t.Errorf("rule grants neither plugdev nor uaccess: %s", line)
		}
		seen[v+":"+p] = true
	}
	for _, c := range usbnet.Chips {
		if !seen[c.ID()] {
			t.Errorf("udev rules miss %s (%s)", c.ID(), c.Name)
		}
	}
	if len(seen) != len(usbnet.Chips) {
		t.Errorf("udev rules list %d ids, the chip table %d", len(seen), len(usbnet.Chips))
	}
}

func ExampleOpen() {
	cable := usbtest.New(usbtest.Config{}) // a PL-25A1 cable between two hosts
	ctx := context.Background()
	a, _ := usbnet.Open(ctx, usbnet.Config{Bus: cable.A(), Logger: quiet()})
	defer a.Close()
	b, _ := usbnet.Open(ctx, usbnet.Config{Bus: cable.B(), Logger: quiet()})
	defer b.Close()

	a.WriteTo([]byte("hello over USB"), nil)
	buf := make([]byte, b.MTU())
	n, _, _ := b.ReadFrom(buf)
	fmt.Println(string(buf[:n]))
	// Output: hello over USB
}

// A peer-status request that times out now and then (a loaded host) does
// not take the link down; a run of them does.
func TestStatusTimeoutsTolerated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, a, b := pair(t, usbtest.Config{})
		settle()
		type res struct {
			n   int
			err error
		}
		got := make(chan res, 1)
		buf := make([]byte, usbnet.MTU)
		go func() { n, _, err := a.ReadFrom(buf); got <- res{n, err} }()
		synctest.Wait()
		c.A().TimeOutControl(2)
		settle()
		b.WriteTo([]byte("still here"), nil)
		r := <-got
		if r.err != nil || string(buf[:r.n]) != "still here" {
			t.Fatalf("after two status timeouts A read %q, %v; want the frame, the link never down", buf[:r.n], r.err)
		}
		c.A().TimeOutControl(1000)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if a.Up() {
			t.Fatal("a run of status timeouts did not count as a lost cable")
		}
		c.A().TimeOutControl(0)
	})
}
