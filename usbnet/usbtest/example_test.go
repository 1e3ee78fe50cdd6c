package usbtest_test

import (
	"context"
	"fmt"

	"github.com/p2plink/p2plink/usbnet/usbtest"
)

// A write whose length is a multiple of wMaxPacketSize is not terminated:
// the far side's read runs on into the next write. This is why usbnet pads
// every frame off a multiple of the packet size.
func Example() {
	cable := usbtest.New(usbtest.Config{MaxPacketSize: 64})
	ctx := context.Background()
	for _, e := range []*usbtest.End{cable.A(), cable.B()} {
		devs, _ := e.Devices()
		fmt.Println(devs[0].ID(), "bus", devs[0].Bus, "endpoints", devs[0].Interfaces[0].Endpoints[1].Address, devs[0].Interfaces[0].Endpoints[2].Address)
	}
	cable.B().Write(ctx, make([]byte, 64)) // as if A's host wrote 64 bytes
	cable.B().Write(ctx, make([]byte, 10))

	devs, _ := cable.B().Devices()
	dev, _ := cable.B().Open(devs[0])
	defer dev.Close()
	dev.Claim(1, 0, 0)
	in, _ := dev.In(0x83)
	n, _ := in.ReadContext(ctx, make([]byte, 512))
	fmt.Println("one read got", n, "bytes")
	// Output:
	// 067b:25a1 bus 1 endpoints 2 131
	// 067b:25a1 bus 1 endpoints 2 131
	// one read got 74 bytes
}
