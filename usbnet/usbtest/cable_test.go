package usbtest_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2plink/p2plink/link"
	"github.com/p2plink/p2plink/usbnet"
	"github.com/p2plink/p2plink/usbnet/usbtest"
)

type endpoints struct {
	dev usbnet.Device
	in  usbnet.EndpointReader
	out usbnet.EndpointWriter
}

func open(t *testing.T, e *usbtest.End) endpoints {
	t.Helper()
	devs, err := e.Devices()
	if err != nil || len(devs) == 0 {
		t.Fatalf("Devices = %v, %v", devs, err)
	}
	info := devs[len(devs)-1]
	dev, err := e.Open(info)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	if err := dev.Claim(1, 0, 0); err != nil {
		t.Fatal(err)
	}
	var in, out uint8
	for _, ep := range info.Interfaces[0].Endpoints {
		switch {
		case ep.Type == usbnet.Bulk && ep.IsIn():
			in = ep.Address
		case ep.Type == usbnet.Bulk:
			out = ep.Address
		}
	}
	r, err := dev.In(in)
	if err != nil {
		t.Fatal(err)
	}
	w, err := dev.Out(out)
	if err != nil {
		t.Fatal(err)
	}
	return endpoints{dev, r, w}
}

func TestShortPacketEndsTransfer(t *testing.T) {
	c := usbtest.New(usbtest.Config{MaxPacketSize: 64, FIFO: 4096})
	a, b := open(t, c.A()), open(t, c.B())
	ctx := context.Background()
	// A 64-byte write is one full packet and no terminator: it merges with
	// the next write into one transfer. A 65-byte write ends by itself.
	for _, n := range []int{64, 10, 65} {
		if _, err := a.out.WriteContext(ctx, bytes.Repeat([]byte{byte(n)}, n)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 1024)
	n, err := b.in.ReadContext(ctx, buf)
	if err != nil || n != 74 {
		t.Fatalf("first read = %d, %v; want 74 (64 + 10 merged)", n, err)
	}
	n, err = b.in.ReadContext(ctx, buf)
	if err != nil || n != 65 {
		t.Fatalf("second read = %d, %v; want 65", n, err)
	}
}

func TestReadBufferFullEndsTransfer(t *testing.T) {
	c := usbtest.New(usbtest.Config{MaxPacketSize: 64})
	a, b := open(t, c.A()), open(t, c.B())
	ctx := context.Background()
	if _, err := a.out.WriteContext(ctx, make([]byte, 200)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 128)
	if n, err := b.in.ReadContext(ctx, buf); n != 128 || err != nil {
		t.Fatalf("read = %d, %v; want 128", n, err)
	}
	if n, err := b.in.ReadContext(ctx, buf); n != 72 || err != nil {
		t.Fatalf("read = %d, %v; want 72", n, err)
	}
}

func TestOverflow(t *testing.T) {
	c := usbtest.New(usbtest.Config{MaxPacketSize: 64})
	a, b := open(t, c.A()), open(t, c.B())
	ctx := context.Background()
	a.out.WriteContext(ctx, make([]byte, 100))
	_, err := b.in.ReadContext(ctx, make([]byte, 50)) // not a multiple of 64
	if !errors.Is(err, usbnet.ErrOverflow) {
		t.Fatalf("read into 50 bytes: %v; want ErrOverflow", err)
	}
}

func TestZLP(t *testing.T) {
	for _, drop := range []bool{false, true} {
		c := usbtest.New(usbtest.Config{MaxPacketSize: 64, DropZLP: drop})
		a, b := open(t, c.A()), open(t, c.B())
		ctx := context.Background()
		a.out.WriteContext(ctx, nil)
		a.out.WriteContext(ctx, []byte("x"))
		n, err := b.in.ReadContext(ctx, make([]byte, 64))
		want := 0
		if drop {
			want = 1
		}
		if err != nil || n != want {
			t.Errorf("DropZLP=%v: first read = %d, %v; want %d", drop, n, err, want)
		}
	}
}

func TestFIFOStallsWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := usbtest.New(usbtest.Config{}) // 512-byte packets, 2 KiB FIFO
		a, b := open(t, c.A()), open(t, c.B())
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := a.out.WriteContext(ctx, make([]byte, 3001))
		if !errors.Is(err, context.DeadlineExceeded) || n != 2048 {
			t.Fatalf("write into a full FIFO = %d, %v; want 2048, deadline exceeded", n, err)
		}
		if got := c.B().Buffered(); got != 2048 {
			t.Fatalf("Buffered = %d, want 2048", got)
		}
		// Once the far side reads, the writer goes on.
		done := make(chan error)
		go func() {
			_, err := a.out.WriteContext(context.Background(), make([]byte, 1001))
			done <- err
		}()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("write finished with the FIFO full: %v", err)
		default:
		}
		// The cut-off transfer never got its short packet: a read with a
		// 2 KiB buffer ends when the buffer is full.
		buf := make([]byte, 2048)
		if n, _ := b.in.ReadContext(context.Background(), buf); n != 2048 {
			t.Fatalf("read %d, want 2048", n)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if n, _ := b.in.ReadContext(context.Background(), buf); n != 1001 {
			t.Fatalf("read %d, want 1001", n)
		}
	})
}

func TestDescriptorsAndStatus(t *testing.T) {
	c := usbtest.New(usbtest.Config{BulkIn: 0x86, BulkOut: 0x04})
	devs, _ := c.A().Devices()
	eps := devs[0].Interfaces[0].Endpoints
	if eps[2].Address != 0x86 || eps[1].Address != 0x04 {
		t.Fatalf("endpoints %+v", eps)
	}
	a := open(t, c.A())
	var st [2]byte
	if _, err := a.dev.Control(0xC0, 0xFB, 0, 0, st[:]); err != nil || st[1] != 0 {
		t.Fatalf("status = %x, %v", st, err)
	}
	c.B().Unplug()
	if _, err := a.dev.Control(0xC0, 0xFB, 0, 0, st[:]); err != nil || st[1]&0x02 == 0 {
		t.Fatalf("status with B unplugged = %x, %v; want remote unplugged bit", st, err)
	}
	if _, err := a.dev.Control(0x40, 0x77, 0, 0, nil); !errors.Is(err, usbnet.ErrStall) {
		t.Fatalf("unknown request: %v; want ErrStall", err)
	}
}

func TestUnplugReplug(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := usbtest.New(usbtest.Config{})
		b := open(t, c.B())
		done := make(chan error)
		go func() {
			_, err := b.in.ReadContext(context.Background(), make([]byte, 512))
			done <- err
		}()
		synctest.Wait()
		c.B().Unplug()
		if err := <-done; !errors.Is(err, link.ErrDisconnected) {
			t.Fatalf("pending read after unplug: %v; want ErrDisconnected", err)
		}
		if devs, _ := c.B().Devices(); len(devs) != 0 {
			t.Fatalf("unplugged device still listed: %v", devs)
		}
		old := b.dev.Info()
		c.B().Plug()
		devs, _ := c.B().Devices()
		if len(devs) != 1 || devs[0].Address == old.Address {
			t.Fatalf("replugged: %v (was %v); want one device at a new address", devs, old)
		}
		if _, err := b.in.ReadContext(context.Background(), make([]byte, 512)); !errors.Is(err, link.ErrDisconnected) {
			t.Fatalf("old handle after replug: %v; want ErrDisconnected", err)
		}
		if _, err := c.B().Open(old); err == nil {
			t.Fatal("opened the old address after replug")
		}
	})
}

func TestDeniedAndBusy(t *testing.T) {
	c := usbtest.New(usbtest.Config{})
	c.A().SetDenied(true)
	devs, _ := c.A().Devices()
	if _, err := c.A().Open(devs[0]); !errors.Is(err, os.ErrPermission) {
		t.Fatalf("denied open: %v", err)
	}
	c.B().SetBusy(true)
	devs, _ = c.B().Devices()
	d, err := c.B().Open(devs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Claim(1, 0, 0); !errors.Is(err, usbnet.ErrBusy) {
		t.Fatalf("busy claim: %v", err)
	}
}
