package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/p2plink/p2plink/link"
)

// kindAnnounce is a plaintext packet a peer broadcasts on a multi-peer link
// to say who it is: magic, version, public key (32), name length (1), name,
// and a flag byte (announceStart, announcePeriodic, announceAnswer; a
// packet without it is periodic). It is a claim, not a proof: a session's
// handshake proves the key, and Connect to a neighbor checks that the
// proof matches the claim.
const kindAnnounce = 0x08

// The flags of an announcement. A peer that starts asks to be answered;
// every neighbor answers it, directly, at most once per answerEvery per
// sender, so that a peer that starts again (a rerun of the command on the
// same machine: the same address and key) knows its neighbors at once
// rather than at their next periodic announcement. Periodic announcements
// and answers are answered only by a neighbor that did not know the sender.
const (
	announcePeriodic = 0
	announceStart    = 1
	announceAnswer   = 2
	answerEvery      = 500 * time.Millisecond
)

const maxNeighbors = 1024

// Neighbor is a peer heard announcing itself on a multi-peer link.
type Neighbor struct {
	Addr        net.Addr
	Name        string
	Fingerprint string
	PublicKey   []byte
	LastSeen    time.Time

	answered time.Time // when we last answered its announcement
}

// ErrNoSuchPeer reports that no neighbor matched a name or fingerprint.
var ErrNoSuchPeer = errors.New("peer: no such peer on the link")

func (e *Endpoint) announcement(flag byte) []byte {
	p := []byte{kindAnnounce}
	p = append(p, helloMagic[:]...)
	p = append(p, ProtocolVersion)
	p = append(p, e.cfg.Identity.key.Public...)
	p = append(p, byte(len(e.cfg.Name)))
	p = append(p, e.cfg.Name...)
	return append(p, flag)
}

// announceLoop broadcasts our announcement at start (three times, quickly)
// and then every AnnounceInterval, jittered.
func (e *Endpoint) announceLoop(b link.Broadcaster) {
	defer e.wg.Done()
	start, periodic := e.announcement(announceStart), e.announcement(announcePeriodic)
	to := b.BroadcastAddr()
	delays := []time.Duration{0, 150 * time.Millisecond, 400 * time.Millisecond}
	for i := 0; ; i++ {
		d := e.cfg.AnnounceInterval
		if i < len(delays) {
			d = delays[i]
		} else {
			d = d*4/5 + time.Duration(rand.Int64N(int64(d*2/5)+1))
		}
		t := time.NewTimer(d)
		select {
		case <-e.done:
			t.Stop()
			return
		case <-t.C:
		}
		pkt := periodic
		if i < len(delays) {
			pkt = start
		}
		e.l.WriteTo(pkt, to)
	}
}

// onAnnounce records a neighbor; a neighbor heard for the first time, or
// one that starts (again), gets our announcement straight back, so both
// know each other at once.
func (e *Endpoint) onAnnounce(pkt []byte, addr net.Addr) {
	const fixed = 1 + 4 + 1 + 32 + 1
	if len(pkt) < fixed || !bytes.Equal(pkt[1:5], helloMagic[:]) || pkt[5] != ProtocolVersion {
		return
	}
	pub := pkt[6:38]
	n := int(pkt[38])
	if len(pkt) < fixed+n {
		return
	}
	if bytes.Equal(pub, e.cfg.Identity.key.Public) {
		return // our own, echoed
	}
	name := cleanName(string(pkt[fixed : fixed+n]))
	flag := byte(announcePeriodic)
	if len(pkt) > fixed+n {
		flag = pkt[fixed+n]
	}
	key := addr.String()
	now := time.Now()
	e.mu.Lock()
	nb, known := e.neighbors[key]
	if !known {
		if len(e.neighbors) >= maxNeighbors {
			e.evictOldestLocked()
		}
		nb = &Neighbor{Addr: addr}
		e.neighbors[key] = nb
	}
	if !bytes.Equal(nb.PublicKey, pub) {
		nb.PublicKey = append([]byte(nil), pub...)
		nb.Fingerprint = Fingerprint(pub)
	}
	nb.Name, nb.LastSeen = name, now
	answer := !e.cfg.Quiet && flag != announceAnswer &&
		(!known || (flag == announceStart && now.Sub(nb.answered) >= answerEvery))
	if answer {
		nb.answered = now
	}
	e.mu.Unlock()
	if answer {
		e.l.WriteTo(e.announcement(announceAnswer), addr)
	}
	if !known {
		e.cfg.Logger.Info("neighbor", "name", name, "fingerprint", nb.Fingerprint, "addr", key)
	}
	select {
	case e.heard <- struct{}{}:
	default:
	}
}

func (e *Endpoint) evictOldestLocked() {
	var oldest string
	var t time.Time
	for k, nb := range e.neighbors {
		if oldest == "" || nb.LastSeen.Before(t) {
			oldest, t = k, nb.LastSeen
		}
	}
	delete(e.neighbors, oldest)
}

// Neighbors lists the peers heard on a multi-peer link, by name.
func (e *Endpoint) Neighbors() []Neighbor {
	e.mu.Lock()
	out := make([]Neighbor, 0, len(e.neighbors))
	for _, nb := range e.neighbors {
		c := *nb
		c.PublicKey = append([]byte(nil), nb.PublicKey...)
		out = append(out, c)
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Fingerprint < out[j].Fingerprint
	})
	return out
}

// FindNeighbor waits until a neighbor whose name or fingerprint matches
// query is heard, and returns it. An empty query matches the only neighbor
// once one has been heard and no second one appeared for a moment. A query
// that matches several neighbors is refused with the list.
func (e *Endpoint) FindNeighbor(ctx context.Context, query string) (Neighbor, error) {
	q := NormalizeFingerprint(query)
	settle := time.Now().Add(700 * time.Millisecond)
	for {
		var match []Neighbor
		all := e.Neighbors()
		for _, nb := range all {
			if query == "" || nb.Name == query || (len(q) >= 4 && strings.HasPrefix(NormalizeFingerprint(nb.Fingerprint), q)) {
				match = append(match, nb)
			}
		}
		if len(match) > 1 {
			return Neighbor{}, fmt.Errorf("%q matches %d peers: %s; name one by fingerprint", query, len(match), describe(match))
		}
		if len(match) == 1 && (query != "" || !time.Now().Before(settle)) {
			return match[0], nil
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			if len(all) == 0 {
				return Neighbor{}, fmt.Errorf("%w: no peer heard on the link (is another p2plink running on this segment?)", ErrNoSuchPeer)
			}
			return Neighbor{}, fmt.Errorf("%w: %q is not among %s", ErrNoSuchPeer, query, describe(all))
		case <-e.heard:
			t.Stop()
		case <-t.C:
		}
	}
}

func describe(ns []Neighbor) string {
	var b strings.Builder
	for i, nb := range ns {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%s at %s)", nb.Name, nb.Fingerprint, nb.Addr)
	}
	return b.String()
}

// ConnectNeighbor connects to a neighbor and checks that the key its
// handshake proves is the one it announced.
func (e *Endpoint) ConnectNeighbor(ctx context.Context, nb Neighbor) (*Session, error) {
	s, err := e.Connect(ctx, nb.Addr)
	if err != nil {
		return nil, err
	}
	if got := s.Peer().PublicKey; !bytes.Equal(got, nb.PublicKey) {
		s.fail(ErrRefused)
		return nil, fmt.Errorf("%w: the peer at %s announced %s but proved %s", ErrRefused, nb.Addr, nb.Fingerprint, Fingerprint(got))
	}
	return s, nil
}
