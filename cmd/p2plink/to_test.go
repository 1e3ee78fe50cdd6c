package main

import (
	"bytes"
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
	"github.com/p2plink/p2plink/peer"
)

// hubPeers attaches p1, whose known_peers is pins (nil: none), and one
// peer per name to a hub, and returns p1 and the others' identities.
func hubPeers(t *testing.T, pins []string, ids []*peer.Identity, names ...string) (*peer.Endpoint, []*peer.Identity) {
	t.Helper()
	hub := linktest.NewHub(linktest.PipeConfig{})
	id1, _ := peer.NewIdentity()
	cfg := peer.Config{Identity: id1, Name: "p1"}
	if pins != nil {
		path := filepath.Join(t.TempDir(), "known_peers")
		if err := os.WriteFile(path, []byte(strings.Join(pins, "")), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.KnownPeers = peer.OpenKnownPeers(path)
	}
	p1, err := peer.NewEndpoint(hub.Attach("st1"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p1.Close() })
	out := make([]*peer.Identity, len(names))
	for i, name := range names {
		var id *peer.Identity
		if i < len(ids) {
			id = ids[i]
		}
		if id == nil {
			id, _ = peer.NewIdentity()
		}
		ep, err := peer.NewEndpoint(hub.Attach(fmt.Sprint("st", i+2)), peer.Config{Identity: id, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ep.Close() })
		out[i] = id
	}
	return p1, out
}

func pinLine(name string, id *peer.Identity) string {
	return fmt.Sprintf("%s %s %s\n", name, id.Fingerprint(), hex.EncodeToString(id.PublicKey()))
}

// TestNoToAmongSeveral: send with no --to while two peers are there says
// so in the command's terms: how many, who, and --to NAME; --to FINGERPRINT
// only where names repeat (it said `"" matches 2 peers: …; name one by
// fingerprint`; found by a field test).
func TestNoToAmongSeveral(t *testing.T) {
	for _, c := range []struct {
		names []string
		want  []string
		never string
	}{
		{[]string{"a", "b"}, []string{"2 peers are here (a ", ", b ", "): name one with --to NAME"}, "FINGERPRINT"},
		{[]string{"a", "b", "b"}, []string{"3 peers are here (", "--to NAME, or --to FINGERPRINT for b"}, `""`},
		{[]string{"b", "b"}, []string{"2 peers are here (", "they all call themselves b: name one with --to FINGERPRINT"}, "--to NAME"},
	} {
		synctest.Test(t, func(t *testing.T) {
			p1, _ := hubPeers(t, nil, nil, c.names...)
			time.Sleep(time.Second)
			var stderr bytes.Buffer
			e := &env{stdin: strings.NewReader(""), stdout: &stderr, stderr: &stderr}
			_, err := e.connectWithin(context.Background(), &options{}, p1, "send")
			if !errors.Is(err, peer.ErrAmbiguousPeer) {
				t.Fatalf("%v: err %v, want ErrAmbiguousPeer", c.names, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v: %q lacks %q", c.names, err, w)
				}
			}
			if strings.Contains(err.Error(), c.never) {
				t.Errorf("%v: %q has %q", c.names, err, c.never)
			}
		})
	}
}

// TestToFingerprintOfRenamedPeer: --to FINGERPRINT of a pinned peer that
// now uses another pinned peer's name connects, and says which pin it is.
func TestToFingerprintOfRenamedPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		id2, _ := peer.NewIdentity()
		id3, _ := peer.NewIdentity()
		p1, _ := hubPeers(t, []string{pinLine("p2", id2), pinLine("p3", id3)}, []*peer.Identity{id2, id3}, "p2", "p2")
		var stderr bytes.Buffer
		e := &env{stdin: strings.NewReader(""), stdout: &stderr, stderr: &stderr}
		s, err := e.connectWithin(context.Background(), &options{to: id3.Fingerprint()}, p1, "send")
		if err != nil {
			t.Fatalf("--to %s: %v", id3.Fingerprint(), err)
		}
		defer s.Close()
		if want := "connected to p2, fingerprint " + id3.Fingerprint() + " (the key pinned as p3: p3 renamed itself p2)"; !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q lacks %q", stderr.String(), want)
		}
	})
}
