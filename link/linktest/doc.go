// Package linktest provides fakes for testing code that uses a link.Link, and
// the conformance suite every p2plink link driver runs.
//
// # Frame links
//
// NewFramePipe returns the two ends of an in-memory point-to-point link, and
// NewHub a multi-peer segment that stations Attach to by name. Both carry
// whole frames and model a medium's faults (PipeConfig): loss, duplication,
// latency with jitter, a line's bandwidth, a bounded receive queue that
// either blocks the sender (flow control, the default) or drops
// (DropWhenFull), and a cable that can be pulled (Unplug) and put back
// (Replug). Every random choice comes from PipeConfig.Seed, so a failing
// test replays. They start no goroutines, allocate nothing per frame when
// there is no latency or bandwidth limit, and read time only through
// package time, so they run on the fake clock of a testing/synctest bubble
// when created inside it.
//
// # Byte streams
//
// NewBytePipe returns the two ends of a full-duplex byte stream, like a
// serial cable: bit errors, dropped bytes, writes split into small pieces,
// pacing at a baud rate, a UART-sized buffer, unplug and replug. Drivers that
// frame bytes themselves (serialnet, usbnet) run over it.
//
// NewNullModem goes one step closer to hardware: two pseudo-terminals joined
// by a paced bridge, whose device paths programs that open real serial ports
// (go.bug.st/serial, sz and rz) can use. The command linktest/cmd/nullmodem
// starts one from a shell.
//
// # Conformance
//
// TestLink checks every sentence of the contract in package link against a
// driver; each driver's tests call it with a function that makes a connected
// pair, for instance a driver over a BytePipe:
//
//	func TestConformance(t *testing.T) {
//		linktest.TestLink(t, func(t *testing.T) (a, b link.Link, stop func()) {
//			x, y := linktest.NewBytePipe(linktest.ByteConfig{Baud: 115200})
//			return mydriver.New(x), mydriver.New(y), func() {}
//		})
//	}
//
// A driver whose medium loses frames passes Options{Lossy: true}: the suite
// then resends and tolerates extra copies, but never a corrupted frame.
//
// # Time and testing/synctest
//
// FramePipe, Hub and BytePipe read the clock only through time.Now, timers
// and time.Sleep, so inside a testing/synctest bubble their latency,
// bandwidth and baud-rate pacing, and every deadline, run on the bubble's
// fake clock: a test of a retransmission timer over a slow lossy pipe takes
// no real time. Make the fake inside the bubble. NullModem and TestLink use
// real time.
package linktest
