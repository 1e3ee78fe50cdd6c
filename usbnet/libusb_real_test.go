//go:build cgo

package usbnet_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/p2plink/p2plink/link"
	"github.com/p2plink/p2plink/link/linktest"
	"github.com/p2plink/p2plink/usbnet"
)

// The Real tests drive both ends of one bridge cable plugged into this
// host (the usbrig VM gives two dummy_hcd buses with a virtual PL-25A1)
// through libusb. They skip where there is no such cable.

func realPair(t *testing.T) (a, b *usbnet.Link) {
	t.Helper()
	cables, err := usbnet.Cables()
	if err != nil {
		t.Skipf("libusb unavailable: %v", err)
	}
	var ends []usbnet.Cable
	for _, c := range cables {
		if len(ends) == 0 || c.Chip.ID() == ends[0].Chip.ID() {
			ends = append(ends, c)
		}
	}
	if len(ends) != 2 {
		t.Skipf("need both ends of one bridge cable on this host (the usbrig VM); found %v", cables)
	}
	sort.Slice(ends, func(i, j int) bool { return ends[i].Bus < ends[j].Bus })
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	open := func(c usbnet.Cable) *usbnet.Link {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l, err := usbnet.Open(ctx, usbnet.Config{Vendor: c.Vendor, Product: c.Product, BusNum: c.Bus,
			Logger: log, PollInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatalf("open %v: %v", c, err)
		}
		return l
	}
	a = open(ends[0])
	b = open(ends[1])
	deadline := time.Now().Add(10 * time.Second)
	for !a.Up() || !b.Up() {
		if time.Now().After(deadline) {
			a.Close()
			b.Close()
			t.Fatal("the two ends did not see each other within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return a, b
}

func TestRealFramesBothWays(t *testing.T) {
	a, b := realPair(t)
	defer a.Close()
	defer b.Close()
	buf := make([]byte, usbnet.MTU)
	for _, dir := range []struct{ from, to *usbnet.Link }{{a, b}, {b, a}} {
		for i, n := range sizes {
			p := payload(n, i)
			errc := make(chan error, 1)
			go func() { _, err := dir.from.WriteTo(p, nil); errc <- err }()
			dir.to.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, _, err := dir.to.ReadFrom(buf)
			if err != nil || !bytes.Equal(buf[:got], p) {
				t.Fatalf("%d-byte frame: got %d bytes, %v", n, got, err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
	}
	if s := b.Stats(); s.Dropped != 0 {
		t.Errorf("dropped frames on a clean cable: %+v", s)
	}
}

func TestRealConformance(t *testing.T) {
	a, b := realPair(t) // skip early, with the reason, where there is no cable
	a.Close()
	b.Close()
	linktest.TestLink(t, func(t *testing.T) (link.Link, link.Link, func()) {
		a, b := realPair(t)
		return a, b, func() {}
	})
}

func TestRealOpenErrors(t *testing.T) {
	_, err := usbnet.Open(context.Background(), usbnet.Config{Vendor: 0xdead, Product: 0xbeef})
	switch {
	case errors.Is(err, usbnet.ErrNotPresent):
		t.Logf("as expected: %v", err)
	case err == nil:
		t.Fatal("opened a device dead:beef")
	default:
		t.Skipf("libusb unavailable: %v", err)
	}
}
