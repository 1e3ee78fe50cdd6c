package usbnet_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/p2plink/p2plink/framing"
	"github.com/p2plink/p2plink/usbnet"
	"github.com/p2plink/p2plink/usbnet/usbtest"
)

var benchSizes = []int{64, 512, usbnet.MTU}

// BenchmarkLink moves frames from one Link to the other over the fake
// PL-25A1 cable: MB/s of payload and allocations per frame.
func BenchmarkLink(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("payload=%d", n), func(b *testing.B) {
			_, x, y := pair(b, usbtest.Config{})
			p := make([]byte, n)
			buf := make([]byte, usbnet.MTU)
			done := make(chan error, 1)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			b.ResetTimer()
			go func() {
				for range b.N {
					if _, err := x.WriteTo(p, nil); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for range b.N {
				if _, _, err := y.ReadFrom(buf); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkRawCable is the anchor: the same wire transfers over the same
// fake cable with no driver logic (no framing, no goroutines, no queue).
func BenchmarkRawCable(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("payload=%d", n), func(b *testing.B) {
			c := usbtest.New(usbtest.Config{})
			tx, rx := openEnd(b, c.A()), openEnd(b, c.B())
			wire := framing.EtherOverhead + n
			if wire%512 == 0 {
				wire++
			}
			p := make([]byte, max(wire, framing.EtherMinFrame))
			buf := make([]byte, 2048)
			ctx := context.Background()
			done := make(chan error, 1)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			b.ResetTimer()
			go func() {
				for range b.N {
					if _, err := tx.out.WriteContext(ctx, p); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for range b.N {
				if _, err := rx.in.ReadContext(ctx, buf); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

func openEnd(b *testing.B, e *usbtest.End) rawEnd {
	devs, _ := e.Devices()
	info := devs[0]
	dev, err := e.Open(info)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dev.Close() })
	dev.Claim(1, 0, 0)
	r := rawEnd{dev: dev, mps: 512}
	r.in, _ = dev.In(0x83)
	r.out, _ = dev.Out(0x02)
	return r
}
