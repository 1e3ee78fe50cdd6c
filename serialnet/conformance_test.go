package serialnet

import (
	"testing"
	"time"

	"github.com/p2plink/p2plink/link"
	"github.com/p2plink/p2plink/link/linktest"
)

// TestConformance runs linktest's contract suite over two Links joined by a
// pty null-modem.
func TestConformance(t *testing.T) {
	linktest.TestLink(t, func(t *testing.T) (link.Link, link.Link, func()) {
		nm, err := linktest.NewNullModem(linktest.NullModemConfig{})
		if err != nil {
			t.Skipf("no null-modem here: %v", err)
		}
		cfg := Config{ReadTimeout: 5 * time.Millisecond, ReopenInterval: 5 * time.Millisecond}
		a, err := Open(nm.PortA(), cfg)
		if err != nil {
			nm.Close()
			t.Fatal(err)
		}
		b, err := Open(nm.PortB(), cfg)
		if err != nil {
			a.Close()
			nm.Close()
			t.Fatal(err)
		}
		return a, b, func() { nm.Close() }
	})
}
