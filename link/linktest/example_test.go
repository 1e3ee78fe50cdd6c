package linktest_test

import (
	"fmt"
	"io"
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
	b.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
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

// Three stations on a hub: one broadcast reaches the two others, each of
// which learns the sender's address from ReadFrom.
func ExampleNewHub() {
	hub := linktest.NewHub(linktest.PipeConfig{})
	x, y, z := hub.Attach("x"), hub.Attach("y"), hub.Attach("z")
	defer x.Close()
	defer y.Close()
	defer z.Close()

	x.WriteTo([]byte("hello"), x.BroadcastAddr())
	buf := make([]byte, y.MTU())
	for _, e := range []*linktest.HubEnd{y, z} {
		n, from, _ := e.ReadFrom(buf)
		fmt.Printf("%s got %q from %s\n", e.LocalAddr(), buf[:n], from)
	}
	// Output:
	// y got "hello" from x
	// z got "hello" from x
}

// A serial cable at 9600 baud that flips one bit in a thousand.
func ExampleNewBytePipe() {
	a, b := linktest.NewBytePipe(linktest.ByteConfig{Baud: 9600, BitErrorRate: 1e-3, Seed: 1})
	defer a.Close()
	defer b.Close()

	go a.Write(make([]byte, 960)) // one second on the line
	buf := make([]byte, 960)
	n, _ := io.ReadFull(b, buf)
	fmt.Println(n, "bytes,", a.Stats().BitsFlipped, "bits flipped")
}
