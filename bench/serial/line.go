package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"go.bug.st/serial"
)

// lineAnchor measures what the null-modem itself delivers: raw bytes
// written to one end as fast as it takes them and read from the other,
// with no protocol. It is the ceiling every protocol in the table works
// under, measured in the same run.
func lineAnchor(args []string) error {
	fs := flag.NewFlagSet("line", flag.ContinueOnError)
	portA := fs.String("a", "", "first end of the null-modem (writer)")
	portB := fs.String("b", "", "second end of the null-modem (reader)")
	baud := fs.Int("baud", 115200, "line rate")
	size := fs.Int("size", 256<<10, "bytes to send")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *portA == "" || *portB == "" {
		return errors.New("give both ends of the null-modem: --a PORT --b PORT")
	}
	mode := &serial.Mode{BaudRate: *baud}
	a, err := serial.Open(*portA, mode)
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := serial.Open(*portB, mode)
	if err != nil {
		return err
	}
	defer b.Close()
	data := make([]byte, *size)
	r := rand.NewChaCha8([32]byte{2})
	r.Read(data)
	got := make([]byte, 0, *size)
	buf := make([]byte, 4096)
	werr := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := a.Write(data)
		werr <- err
	}()
	var first time.Time
	for len(got) < *size {
		n, err := b.Read(buf)
		if n > 0 && first.IsZero() {
			first = time.Now()
		}
		got = append(got, buf[:n]...)
		if err != nil {
			return err
		}
		if n == 0 && !first.IsZero() && time.Since(first) > 5*time.Second {
			return io.ErrUnexpectedEOF
		}
	}
	d := time.Since(start)
	if err := <-werr; err != nil {
		return err
	}
	fmt.Printf("line anchor: %d raw bytes through the null-modem at %d baud in %.2fs = %.1f%% of line rate (first byte after %v), intact %v\n",
		*size, *baud, d.Seconds(), 100*float64(*size)/d.Seconds()/(float64(*baud)/10), first.Sub(start).Round(time.Millisecond), bytes.Equal(got, data))
	return nil
}
