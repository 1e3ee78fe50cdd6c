// Command serial is the Go half of the serial-line benchmark (bench/serial/run):
// the measurements that need two p2plink peers inside one process.
//
//	serial chat --a PORT --b PORT [--baud N] [--lines N] [--interval D]
//	    the delay of chat lines sent while a bulk transfer fills the line:
//	    two peers over the two ends of a null-modem (serialnet + peer), a
//	    PrioBulk stream that never runs dry, and one timestamped line every
//	    interval on a PrioInteractive stream in the same direction.
//	serial line --a PORT --b PORT [--baud N] [--size N]
//	    the anchor: raw bytes through the null-modem with no protocol.
//	serial bulk --a PORT --b PORT [--baud N] [--size N]
//	    one bare stream across the null-modem, with the sending session's
//	    counters (retransmits, segment size, round trip) that the command
//	    line's summary does not show.
//	serial mem [--size N] [--mtu N] [--dir DIR]
//	    peak memory of a file transfer (peer/xfer) between two peers over the
//	    in-memory frame pipe (linktest.NewFramePipe): peak RSS (VmHWM) and Go
//	    heap of the whole process, both peers included.
//
// Each prints one summary line starting with "RESULT" that run parses, and
// details before it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: serial chat --a PORT --b PORT … | serial mem [--size N] …")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "chat":
		err = chatDelay(ctx, os.Args[2:])
	case "line":
		err = lineAnchor(os.Args[2:])
	case "bulk":
		err = bulkStats(ctx, os.Args[2:])
	case "mem":
		err = memPeak(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown measurement %q: use chat or mem", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "serial:", err)
		os.Exit(1)
	}
}
