package peer

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2plink/p2plink/link/linktest"
)

// pinFile writes a known_peers file that pins each name to its identity's
// key, one line each in order, and returns its path.
func pinFile(t *testing.T, pins ...any) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(pins); i += 2 {
		id := pins[i+1].(*Identity)
		fmt.Fprintf(&b, "%s %s %s\n", pins[i].(string), id.Fingerprint(), hex.EncodeToString(id.PublicKey()))
	}
	path := filepath.Join(t.TempDir(), "known_peers")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// segment is a hub on which p1 has pinned p2 (line 1) and p3 (line 2).
type segment struct {
	hub        *linktest.Hub
	p1         *Endpoint
	pins       string // p1's known_peers
	id2, id3   *Identity
	eps        []*Endpoint
	pinsBefore []byte
}

func newSegment(t *testing.T) *segment {
	t.Helper()
	sg := &segment{hub: linktest.NewHub(linktest.PipeConfig{})}
	sg.id2, _ = NewIdentity()
	sg.id3, _ = NewIdentity()
	sg.pins = pinFile(t, "p2", sg.id2, "p3", sg.id3)
	sg.pinsBefore, _ = os.ReadFile(sg.pins)
	cfg := testConfig(t, "p1")
	cfg.KnownPeers = OpenKnownPeers(sg.pins)
	sg.p1 = sg.attach(t, "st1", cfg)
	return sg
}

func (sg *segment) attach(t *testing.T, station string, cfg Config) *Endpoint {
	t.Helper()
	ep, err := NewEndpoint(sg.hub.Attach(station), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sg.eps = append(sg.eps, ep)
	return ep
}

// peer attaches a peer with identity id (nil: a new one) calling itself
// name.
func (sg *segment) peer(t *testing.T, station, name string, id *Identity) *Endpoint {
	t.Helper()
	cfg := testConfig(t, name)
	if id != nil {
		cfg.Identity = id
	}
	return sg.attach(t, station, cfg)
}

func (sg *segment) close() {
	for _, ep := range sg.eps {
		ep.Close()
	}
}

// pinsUnchanged fails the test if p1's known_peers changed.
func (sg *segment) pinsUnchanged(t *testing.T) {
	t.Helper()
	if b, _ := os.ReadFile(sg.pins); string(b) != string(sg.pinsBefore) {
		t.Errorf("known_peers changed:\n%s\nwas:\n%s", b, sg.pinsBefore)
	}
}

// TestFingerprintReachesRenamedPeer: p3, pinned as "p3", now calls itself
// "p2", the name of another pinned peer. Addressed by its fingerprint it is
// that peer, renamed: the session is accepted and says the name it is
// pinned under, and no pin changes. (It was refused with the advice to
// delete p2's pin, line 1; found by a field test.)
func TestFingerprintReachesRenamedPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sg := newSegment(t)
		defer sg.close()
		sg.peer(t, "st2", "p2", sg.id2)
		p3 := sg.peer(t, "st3", "p2", sg.id3)
		ctx := context.Background()
		nb, err := sg.p1.FindNeighbor(ctx, sg.id3.Fingerprint())
		if err != nil {
			t.Fatal(err)
		}
		s, err := sg.p1.ConnectNeighbor(ctx, nb)
		if err != nil {
			t.Fatalf("p3 addressed by fingerprint under the name p2: %v", err)
		}
		pi := s.Peer()
		if pi.Fingerprint != sg.id3.Fingerprint() || pi.KnownAs != "p3" || pi.Pinned {
			t.Errorf("peer %+v, want p3's key, known as p3, not pinned anew", pi)
		}
		rs, err := p3.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		transfer(t, s, rs, randBytes(3, 10_000))
		sg.pinsUnchanged(t)
	})
}

// TestFingerprintOfUnknownKeyUnderPinnedName: a key pinned under no name,
// addressed by its fingerprint, that uses a pinned name is refused, with
// the line of that name's pin; pinning is not weakened by addressing a
// peer by its fingerprint.
func TestFingerprintOfUnknownKeyUnderPinnedName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sg := newSegment(t)
		defer sg.close()
		imp, _ := NewIdentity()
		sg.peer(t, "st4", "p2", imp)
		ctx := context.Background()
		nb, err := sg.p1.FindNeighbor(ctx, imp.Fingerprint())
		if err != nil {
			t.Fatal(err)
		}
		_, err = sg.p1.ConnectNeighbor(ctx, nb)
		if !errors.Is(err, ErrKeyChanged) {
			t.Fatalf("err %v, want ErrKeyChanged", err)
		}
		for _, want := range []string{sg.id2.Fingerprint(), imp.Fingerprint(), "delete line 1 of"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q lacks %q", err, want)
			}
		}
		sg.pinsUnchanged(t)
	})
}

// TestPinnedNamePreferred: --to p2 takes the peer whose key is pinned as
// p2, even when another that calls itself p2 (here p3) was heard first (it
// was taken when it announced first; found by a field test).
func TestPinnedNamePreferred(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sg := newSegment(t)
		defer sg.close()
		sg.peer(t, "st3", "p2", sg.id3)
		found := make(chan Neighbor, 1)
		go func() {
			nb, err := sg.p1.FindNeighbor(context.Background(), "p2")
			if err != nil {
				t.Error(err)
			}
			found <- nb
		}()
		time.Sleep(300 * time.Millisecond) // p1 knows the impostor by now
		if nbs := sg.p1.Neighbors(); len(nbs) != 1 {
			t.Fatalf("p1 knows %v, want the impostor", nbs)
		}
		p2 := sg.peer(t, "st2", "p2", sg.id2)
		nb := <-found
		if nb.Fingerprint != sg.id2.Fingerprint() {
			t.Fatalf("--to p2 found %s, want the pinned p2 %s", nb.Fingerprint, sg.id2.Fingerprint())
		}
		s, err := sg.p1.ConnectNeighbor(context.Background(), nb)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p2.Accept(context.Background()); err != nil {
			t.Fatal(err)
		}
		s.Close()
		// The other way round too: the pinned one first.
		nb, err = sg.p1.FindNeighbor(context.Background(), "p2")
		if err != nil || nb.Fingerprint != sg.id2.Fingerprint() {
			t.Errorf("found %s (%v), want the pinned p2", nb.Fingerprint, err)
		}
		sg.pinsUnchanged(t)
	})
}

// TestPinnedNameTakenReported: a peer that uses a pinned name with another
// key is refused by name, saying whose pin it is and which line: an
// unknown key may be the peer with a new identity (delete line 1 if you
// trust it); a key pinned as another peer is that peer using another's
// name (no advice to delete anyone's pin). A session it starts is refused
// the same way. The refusal waits a moment for the pinned peer.
func TestPinnedNameTakenReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		imp, _ := NewIdentity()
		for _, c := range []struct {
			what  string
			id    *Identity
			want  []string
			never string
		}{
			{"unknown key", imp, []string{`"p2" is pinned to key ` + "", "line 1", "the peer now using that name has key " + imp.Fingerprint(), "an impostor", "delete line 1 of"}, ""},
			{"p3's key", nil, []string{"line 2 pins as \"p3\"", "connect to it by its fingerprint"}, "delete line"},
		} {
			sg := newSegment(t)
			id := c.id
			if id == nil {
				id = sg.id3
			}
			other := sg.peer(t, "stx", "p2", id)
			start := time.Now()
			_, err := sg.p1.FindNeighbor(context.Background(), "p2")
			if !errors.Is(err, ErrKeyChanged) {
				t.Fatalf("%s: --to p2: %v, want ErrKeyChanged", c.what, err)
			}
			if d := time.Since(start); d < 500*time.Millisecond {
				t.Errorf("%s: refused after %v, before the pinned peer had a moment to answer", c.what, d)
			}
			want := append([]string{sg.id2.Fingerprint()}, c.want...)
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: %q lacks %q", c.what, err, w)
				}
			}
			if c.never != "" && strings.Contains(err.Error(), c.never) {
				t.Errorf("%s: %q advises %q", c.what, err, c.never)
			}
			// It connects to p1 itself: refused alike (its own handshake
			// may end before p1's refusal reaches it).
			nb, err := other.FindNeighbor(context.Background(), "p1")
			if err != nil {
				t.Fatal(err)
			}
			if s, err := other.ConnectNeighbor(context.Background(), nb); err == nil {
				select {
				case <-s.Done():
				case <-time.After(5 * time.Second):
					t.Errorf("%s: p1 accepted a session from it", c.what)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if s, err := sg.p1.Accept(ctx); err == nil {
				t.Errorf("%s: p1 accepted a session from it, as %+v", c.what, s.Peer())
			}
			cancel()
			sg.pinsUnchanged(t)
			sg.close()
		}
	})
}

// TestAmbiguousNeighbors: with no peer named and several there, the error
// lists them and says whether names tell them apart.
func TestAmbiguousNeighbors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sg := newSegment(t)
		defer sg.close()
		sg.peer(t, "st2", "a", nil)
		sg.peer(t, "st3", "b", nil)
		time.Sleep(time.Second)
		_, err := sg.p1.FindNeighbor(context.Background(), "")
		var amb *AmbiguousError
		if !errors.As(err, &amb) || !errors.Is(err, ErrAmbiguousPeer) {
			t.Fatalf("err %v, want an *AmbiguousError", err)
		}
		if amb.Query != "" || len(amb.Peers) != 2 || len(amb.RepeatedNames()) != 0 {
			t.Errorf("%+v, repeated %v: want a and b, no name repeated", amb, amb.RepeatedNames())
		}
		if s := err.Error(); !strings.HasPrefix(s, "2 peers are here: a (") || !strings.HasSuffix(s, "name one by its name") {
			t.Errorf("message %q", s)
		}
		sg.peer(t, "st4", "b", nil)
		time.Sleep(time.Second)
		_, err = sg.p1.FindNeighbor(context.Background(), "")
		if !errors.As(err, &amb) || len(amb.Peers) != 3 || fmt.Sprint(amb.RepeatedNames()) != "[b]" {
			t.Fatalf("err %v, want three peers, b repeated", err)
		}
		if !strings.HasSuffix(err.Error(), "by its fingerprint where names repeat") {
			t.Errorf("message %q", err)
		}
		_, err = sg.p1.FindNeighbor(context.Background(), "b")
		if !errors.As(err, &amb) || amb.Query != "b" || len(amb.Peers) != 2 {
			t.Errorf("--to b: %v, want the two b", err)
		}
	})
}

// TestNameNotTakenForFingerprint: a query that is a name (pinned, or used
// by a neighbor) does not match a stranger whose fingerprint begins with
// it, and only a whole fingerprint names a key (found by review: --to
// alice, with alice away, reached "mallory", whose ground key's
// fingerprint began ALICE, and pinned it).
func TestNameNotTakenForFingerprint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mal, _ := NewIdentity()
		fp := NormalizeFingerprint(mal.Fingerprint())
		name := strings.ToLower(fp[:5]) // a 25-bit grind in real life
		alice, _ := NewIdentity()
		sg := &segment{hub: linktest.NewHub(linktest.PipeConfig{})}
		cfg := testConfig(t, "p1")
		cfg.KnownPeers = OpenKnownPeers(pinFile(t, name, alice))
		sg.p1 = sg.attach(t, "st1", cfg)
		defer sg.close()
		sg.peer(t, "st9", "mallory", mal)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if nb, err := sg.p1.FindNeighbor(ctx, name); err == nil {
			t.Fatalf("--to %s, pinned to %s and away, found %q %s", name, alice.Fingerprint(), nb.Name, nb.Fingerprint)
		} else if !errors.Is(err, ErrNoSuchPeer) {
			t.Fatalf("--to %s: %v, want ErrNoSuchPeer", name, err)
		}
		// A prefix that is no name still finds mallory, without naming
		// its key; the whole fingerprint does.
		ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel2()
		nb, err := sg.p1.FindNeighbor(ctx2, fp[:8])
		if err != nil || nb.Name != "mallory" || nb.byKey {
			t.Fatalf("prefix %s: %q byKey %v, %v; want mallory, not by key", fp[:8], nb.Name, nb.byKey, err)
		}
		nb, err = sg.p1.FindNeighbor(ctx2, mal.Fingerprint())
		if err != nil || nb.Name != "mallory" || !nb.byKey {
			t.Fatalf("whole fingerprint: %q byKey %v, %v; want mallory by key", nb.Name, nb.byKey, err)
		}
	})
}
