package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/p2plink/p2plink/serialnet"
	"github.com/p2plink/p2plink/usbnet"
)

// ports lists serial ports and USB bridge cables.
func (e *env) ports(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ports", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("ports takes no arguments (got %q)", pos)
	}
	ps, err := serialnet.Ports()
	if err != nil {
		fmt.Fprintf(e.stdout, "serial ports: cannot list them: %v\n", err)
	} else if len(ps) == 0 {
		fmt.Fprintln(e.stdout, "serial ports: none found")
	} else {
		fmt.Fprintln(e.stdout, "serial ports:")
		for _, p := range ps {
			fmt.Fprintf(e.stdout, "  %s\n", p)
		}
	}
	cs, err := usbnet.Cables()
	switch {
	case err != nil:
		fmt.Fprintf(e.stdout, "USB bridge cables: cannot look: %v\n", err)
	case len(cs) == 0:
		fmt.Fprintln(e.stdout, "USB bridge cables: none found")
	default:
		fmt.Fprintln(e.stdout, "USB bridge cables:")
		for _, c := range cs {
			fmt.Fprintf(e.stdout, "  %s\n", c)
		}
	}
	return nil
}
