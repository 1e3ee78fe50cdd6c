package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
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
	byKey    bool      // FindNeighbor matched it by its fingerprint
}

// ErrNoSuchPeer reports that no neighbor matched a name or fingerprint.
var ErrNoSuchPeer = errors.New("peer: no such peer on the link")

// ErrAmbiguousPeer reports that several neighbors matched a name or
// fingerprint (or that several are there when none was named); the error
// is an *AmbiguousError that lists them.
var ErrAmbiguousPeer = errors.New("peer: several peers match")

// AmbiguousError is FindNeighbor's refusal of a query that several
// neighbors match. It wraps ErrAmbiguousPeer.
type AmbiguousError struct {
	Query string     // the name or fingerprint asked for; "" if none
	Peers []Neighbor // the neighbors it matched, by name
}

func (e *AmbiguousError) Error() string {
	if e.Query != "" {
		return fmt.Sprintf("%q matches %d peers: %s; name one by its full fingerprint", e.Query, len(e.Peers), describe(e.Peers))
	}
	by := "by its name"
	if rep := e.RepeatedNames(); len(rep) == 1 && len(e.Peers) == e.count(rep[0]) {
		by = "by its fingerprint"
	} else if len(rep) > 0 {
		by = "by its name, or by its fingerprint where names repeat"
	}
	return fmt.Sprintf("%d peers are here: %s; name one %s", len(e.Peers), describe(e.Peers), by)
}

// Unwrap returns ErrAmbiguousPeer.
func (e *AmbiguousError) Unwrap() error { return ErrAmbiguousPeer }

// RepeatedNames returns the names that more than one of the peers use, in
// the order of the peers: only a fingerprint tells those apart.
func (e *AmbiguousError) RepeatedNames() []string {
	var rep []string
	for _, nb := range e.Peers {
		if e.count(nb.Name) > 1 && !slices.Contains(rep, nb.Name) {
			rep = append(rep, nb.Name)
		}
	}
	return rep
}

func (e *AmbiguousError) count(name string) int {
	n := 0
	for _, nb := range e.Peers {
		if nb.Name == name {
			n++
		}
	}
	return n
}

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
// that matches several neighbors is refused with an *AmbiguousError.
//
// A name pinned in Config.KnownPeers matches the neighbor that announces
// the key pinned for it, even among others that use the name too. A
// neighbor that uses the name with another key is not taken for it: if no
// neighbor with the pinned key is heard within a moment, FindNeighbor
// refuses with an error wrapping ErrKeyChanged that says whose pin it is.
// A neighbor matched by its fingerprint is connected to as that key (see
// ConnectNeighbor).
func (e *Endpoint) FindNeighbor(ctx context.Context, query string) (Neighbor, error) {
	q := NormalizeFingerprint(query)
	settle := time.Now().Add(700 * time.Millisecond)
	var named pin // the pin of the name queried
	if query != "" {
		var err error
		if named, _, err = e.cfg.KnownPeers.lookup(query, nil); err != nil {
			return Neighbor{}, err
		}
	}
	for {
		var match, others []Neighbor // others: using the pinned name with another key
		var pinned *Neighbor
		all := e.Neighbors()
		// A query that is a name (pinned, or used by a neighbor) is taken
		// as that name only: a stranger could grind a key whose
		// fingerprint begins with it (found by review: --to alice, alice
		// away, reached "mallory", whose fingerprint began ALICE).
		isName := named.line > 0
		for _, nb := range all {
			isName = isName || (query != "" && nb.Name == query)
		}
		for _, nb := range all {
			fp := NormalizeFingerprint(nb.Fingerprint)
			switch {
			case query == "":
				match = append(match, nb)
			case nb.Name == query && named.line > 0 && bytes.Equal(nb.PublicKey, named.pub):
				pinned = &nb
			case nb.Name == query && named.line > 0:
				others = append(others, nb)
			case nb.Name == query:
				match = append(match, nb)
			case !isName && len(q) >= 4 && strings.HasPrefix(fp, q):
				// Only the whole fingerprint names a key: a prefix finds
				// the peer, whose name is then checked against its pin as
				// any other's.
				nb.byKey = q == fp
				match = append(match, nb)
			}
		}
		if pinned != nil {
			for _, nb := range others {
				e.cfg.Logger.Warn("another peer uses a pinned name with another key", "name", query,
					"fingerprint", nb.Fingerprint, "addr", nb.Addr, "pinned", pinned.Fingerprint)
			}
			return *pinned, nil
		}
		if len(match) > 1 {
			return Neighbor{}, &AmbiguousError{Query: query, Peers: match}
		}
		settled := !time.Now().Before(settle)
		if len(others) > 0 && settled {
			return Neighbor{}, e.nameTaken(query, named, others[0])
		}
		if len(match) == 1 && len(others) == 0 && (query != "" || settled) {
			return match[0], nil
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			if len(others) > 0 {
				return Neighbor{}, e.nameTaken(query, named, others[0])
			}
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

// nameTaken refuses nb, which uses a name pinned (named) to another key.
func (e *Endpoint) nameTaken(name string, named pin, nb Neighbor) error {
	_, keyed, err := e.cfg.KnownPeers.lookup(name, nb.PublicKey)
	if err != nil {
		return err
	}
	return e.cfg.KnownPeers.nameTaken(name, named, nb.PublicKey, keyed)
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
//
// A neighbor that FindNeighbor matched by its fingerprint is checked
// against the pin of its key rather than of its name: a key pinned under
// another name is that peer, renamed, and is accepted (PeerInfo.KnownAs
// says the name it is pinned under).
func (e *Endpoint) ConnectNeighbor(ctx context.Context, nb Neighbor) (*Session, error) {
	s, err := e.connect(ctx, nb.Addr, nb.PublicKey, nb.byKey)
	if err != nil {
		return nil, err
	}
	if got := s.Peer().PublicKey; !bytes.Equal(got, nb.PublicKey) {
		s.fail(ErrRefused)
		return nil, fmt.Errorf("%w: the peer at %s announced %s but proved %s", ErrRefused, nb.Addr, nb.Fingerprint, Fingerprint(got))
	}
	return s, nil
}
