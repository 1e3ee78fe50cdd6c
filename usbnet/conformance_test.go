package usbnet_test

import (
	"context"
	"testing"
	"time"

	"github.com/p2plink/p2plink/link"
	"github.com/p2plink/p2plink/link/linktest"
	"github.com/p2plink/p2plink/usbnet"
	"github.com/p2plink/p2plink/usbnet/usbtest"
)

// TestConformance runs the link contract's suite over the fake cable, for a
// chip with peer status (PL-25A1, with dummy_hcd's endpoint numbers), one
// with the QuickLink handshake at full speed, and one with its own framing.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  usbtest.Config
	}{
		{"PL-25A1", usbtest.Config{BulkIn: 0x86}},
		{"PL-2301", usbtest.Config{Vendor: 0x067b, Product: 0x0000, MaxPacketSize: 64}},
		{"NET1080", usbtest.Config{Vendor: 0x0525, Product: 0x1080, MaxPacketSize: 64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			linktest.TestLink(t, func(t *testing.T) (link.Link, link.Link, func()) {
				c := usbtest.New(tc.cfg)
				cfg := usbnet.Config{Bus: c.A(), Logger: quiet(), PollInterval: 5 * time.Millisecond}
				a, err := usbnet.Open(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				cfg.Bus = c.B()
				b, err := usbnet.Open(context.Background(), cfg)
				if err != nil {
					a.Close()
					t.Fatal(err)
				}
				for !a.Up() || !b.Up() { // set-up, not an assertion: the first status polls
					time.Sleep(time.Millisecond)
				}
				return a, b, func() {}
			})
		})
	}
}
