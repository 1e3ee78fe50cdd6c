// Command nullmodem joins two pseudo-terminals with a software null-modem
// cable, paced at a baud rate and optionally noisy, so that programs which
// open serial ports (sz and rz, p2plink over serialnet) can talk to each
// other on one machine.
//
// It prints the two port paths on stdout, one per line, and runs until its
// standard input closes or it gets SIGINT or SIGTERM:
//
//	nullmodem --baud 115200 --ber 1e-6 --drop 0 --seed 1
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/p2plink/p2plink/link/linktest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		// Standard input closing is the other way to stop us.
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "nullmodem:", err)
		os.Exit(1)
	}
}

// run starts the null modem the flags in args describe, prints its ports to
// stdout and waits for ctx.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("nullmodem", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg linktest.NullModemConfig
	fs.IntVar(&cfg.Baud, "baud", 115200, "line rate in bits per second (0: unpaced)")
	fs.IntVar(&cfg.BitsPerByte, "bits", 10, "bits per byte on the line (10 for 8N1)")
	fs.Float64Var(&cfg.BitErrorRate, "ber", 0, "probability of a bit error per data bit")
	fs.Float64Var(&cfg.DropRate, "drop", 0, "probability that a byte is lost")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the noise, so a run replays")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: all settings are flags (see -h)", fs.Args())
	}
	nm, err := linktest.NewNullModem(cfg)
	if err != nil {
		return err
	}
	defer nm.Close()
	w := bufio.NewWriter(stdout)
	fmt.Fprintln(w, nm.PortA())
	fmt.Fprintln(w, nm.PortB())
	if err := w.Flush(); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
