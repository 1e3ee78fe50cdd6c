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
	} else {
		e.listPorts(ps, serialnet.Unchecked(ps))
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

// listPorts prints the serial ports found, each this user may not open
// with what to do, and the built-in ports that could not be checked.
func (e *env) listPorts(ps []serialnet.PortInfo, unchecked []string) {
	switch {
	case len(ps) == 0 && len(unchecked) == 0:
		fmt.Fprintln(e.stdout, "serial ports: none found")
		return
	case len(ps) == 0:
		fmt.Fprintln(e.stdout, "serial ports: none found that you may open")
	default:
		fmt.Fprintln(e.stdout, "serial ports:")
	}
	for _, p := range ps {
		if why := serialnet.NoAccess(p.Path); why != "" {
			fmt.Fprintf(e.stdout, "  %s: no permission to open it: %s\n", p, why)
			continue
		}
		fmt.Fprintf(e.stdout, "  %s\n", p)
	}
	if len(unchecked) > 0 {
		more := ""
		if len(unchecked) > 1 {
			more = fmt.Sprintf(" and %d more", len(unchecked)-1)
		}
		fmt.Fprintf(e.stdout, "  %s%s: built-in ports not checked (a real one is told from a placeholder by opening it): %s\n",
			unchecked[0], more, serialnet.NoAccess(unchecked[0]))
	}
}
