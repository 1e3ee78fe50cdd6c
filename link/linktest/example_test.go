package linktest_test

import (
	"fmt"
	"time"

	"github.com/p2plink/p2plink/link/linktest"
)

// A pipe that loses one frame in ten and takes 5 ms to cross, replayable
// from its seed.
func ExampleNewFramePipe() {
	a, b := linktest.NewFramePipe(linktest.PipeConfig{
		MTU:     1024,
		Loss:    0.1,
		Latency: 5 * time.Millisecond,
		Seed:    42,
	})
	defer a.Close()
	defer b.Close()

	for i := range 20 {
		a.WriteTo([]byte{byte(i)}, nil)
	}
	b.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, b.MTU())
	got := 0
	for {
		if _, _, err := b.ReadFrom(buf); err != nil {
			break // the deadline: nothing more is coming
		}
		got++
	}
	fmt.Println("sent 20, received", got, "lost", a.Faults().Lost)
	// Output: sent 20, received 18 lost 2
}
