package ethnet_test

import (
	"fmt"
	"log"

	"github.com/p2plink/p2plink/ethnet"
)

// Open a link on a wired interface, greet every peer on the segment, and
// answer the first one who speaks. Needs CAP_NET_RAW and an interface
// named eth0, so it is not run as a test.
func Example() {
	l, err := ethnet.Open("eth0", ethnet.Config{})
	if err != nil {
		log.Fatal(err) // says what to do: run as root, ip link set eth0 up, ...
	}
	defer l.Close()

	if _, err := l.WriteTo([]byte("hello, segment"), l.BroadcastAddr()); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, l.MTU())
	n, from, err := l.ReadFrom(buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s says %q\n", from, buf[:n])
	if _, err := l.WriteTo([]byte("hello to you"), from); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%+v\n", l.Counters())
}
