package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/p2plink/p2plink/link"
	"github.com/p2plink/p2plink/peer"
)

// pair is two connected peers in this process.
type pair struct {
	ea, eb *peer.Endpoint
	sa, sb *peer.Session
}

// connectPair starts an endpoint with a fresh identity on each link and
// waits for the handshake. On error every endpoint made so far is closed.
func connectPair(ctx context.Context, la, lb link.Link, cfg peer.Config) (*pair, error) {
	p := &pair{}
	ida, err := peer.NewIdentity()
	if err != nil {
		return nil, err
	}
	idb, err := peer.NewIdentity()
	if err != nil {
		return nil, err
	}
	ca, cb := cfg, cfg
	ca.Identity, ca.Name = ida, "a"
	cb.Identity, cb.Name = idb, "b"
	if p.ea, err = peer.NewEndpoint(la, ca); err != nil {
		la.Close()
		lb.Close()
		return nil, err
	}
	if p.eb, err = peer.NewEndpoint(lb, cb); err != nil {
		p.ea.Close()
		lb.Close()
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var errB error
	wg.Add(1)
	go func() { defer wg.Done(); p.sb, errB = p.eb.Connect(cctx, nil) }()
	p.sa, err = p.ea.Connect(cctx, nil)
	wg.Wait()
	if err != nil || errB != nil {
		p.close()
		return nil, fmt.Errorf("handshake: %v / %v", err, errB)
	}
	return p, nil
}

// close ends both endpoints and waits for their goroutines.
func (p *pair) close() {
	if p.ea != nil {
		p.ea.Close()
	}
	if p.eb != nil {
		p.eb.Close()
	}
}
