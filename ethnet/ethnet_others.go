//go:build !linux

package ethnet

import (
	"fmt"
	"net"
	"time"

	"github.com/p2plink/p2plink/link"
)

// Link is a p2plink Link over raw Ethernet frames. On this system there are
// no AF_PACKET sockets: Open always fails and no Link exists.
type Link struct{}

// Open fails with an error wrapping ErrUnsupported: raw Ethernet needs Linux
// AF_PACKET.
func Open(ifname string, cfg Config) (*Link, error) {
	return nil, fmt.Errorf("ethnet: %s: %w; use p2plink on Linux for Ethernet links", ifname, ErrUnsupported)
}

func (l *Link) unsupported(op string) error {
	return &net.OpError{Op: op, Net: "ethnet", Err: ErrUnsupported}
}

// ReadFrom fails: see Open.
func (l *Link) ReadFrom(p []byte) (int, net.Addr, error) { return 0, nil, l.unsupported("read") }

// ReadFrame fails: see Open.
func (l *Link) ReadFrame() ([]byte, net.Addr, error) { return nil, nil, l.unsupported("read") }

// WriteTo fails: see Open.
func (l *Link) WriteTo(p []byte, addr net.Addr) (int, error) { return 0, l.unsupported("write") }

// WriteBatch fails: see Open.
func (l *Link) WriteBatch(ps [][]byte, addr net.Addr) (int, error) {
	return 0, l.unsupported("write")
}

// Close does nothing.
func (l *Link) Close() error { return nil }

// LocalAddr returns nil.
func (l *Link) LocalAddr() net.Addr { return nil }

// BroadcastAddr returns nil.
func (l *Link) BroadcastAddr() net.Addr { return nil }

// Interface returns "".
func (l *Link) Interface() string { return "" }

// MTU returns 0.
func (l *Link) MTU() int { return 0 }

// SetDeadline fails: see Open.
func (l *Link) SetDeadline(t time.Time) error { return l.unsupported("set deadline") }

// SetReadDeadline fails: see Open.
func (l *Link) SetReadDeadline(t time.Time) error { return l.unsupported("set read deadline") }

// SetWriteDeadline fails: see Open.
func (l *Link) SetWriteDeadline(t time.Time) error { return l.unsupported("set write deadline") }

// Stats returns zero counters.
func (l *Link) Stats() link.Stats { return link.Stats{} }

// Counters returns zero counters.
func (l *Link) Counters() Counters { return Counters{} }

var (
	_ link.Link          = (*Link)(nil)
	_ link.Broadcaster   = (*Link)(nil)
	_ link.StatsReporter = (*Link)(nil)
)
