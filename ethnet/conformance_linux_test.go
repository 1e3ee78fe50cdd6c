package ethnet

import (
	"testing"

	"github.com/p2plink/p2plink/ethnet/internal/netns"
	"github.com/p2plink/p2plink/link"
	"github.com/p2plink/p2plink/link/linktest"
)

// TestConformance runs the contract's suite over real kernel sockets: two
// namespaces joined by a veth pair (with the transmit socket and without),
// and two peers of a three-peer bridged
// segment whose third peer listens too.
func TestConformance(t *testing.T) {
	netns.Skip(t)
	t.Run("veth", func(t *testing.T) {
		linktest.TestLink(t, func(t *testing.T) (link.Link, link.Link, func()) {
			seg := netns.NewPair(t, 1500)
			return openOn(t, seg.Hosts[0], Config{}), openOn(t, seg.Hosts[1], Config{}), func() {}
		})
	})
	t.Run("veth/one socket", func(t *testing.T) {
		linktest.TestLink(t, func(t *testing.T) (link.Link, link.Link, func()) {
			seg := netns.NewPair(t, 1500)
			return openOn(t, seg.Hosts[0], Config{oneSocket: true}), openOn(t, seg.Hosts[1], Config{oneSocket: true}), func() {}
		})
	})
	t.Run("bridge", func(t *testing.T) {
		linktest.TestLink(t, func(t *testing.T) (link.Link, link.Link, func()) {
			seg := netns.NewBridged(t, 3, 9000)
			openOn(t, seg.Hosts[2], Config{})
			return openOn(t, seg.Hosts[0], Config{}), openOn(t, seg.Hosts[1], Config{}), func() {}
		})
	})
}
