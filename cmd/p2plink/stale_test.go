package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2plink/p2plink/peer"
	"github.com/p2plink/p2plink/serialnet"
)

// TestStaleClientThenSend is the field test's case: a client gives up
// (Ctrl-C) while nobody is on the other end yet, its hellos left in the
// line's buffer; then receive (or serve) starts on the other end, answers
// them, and a new client sends a file. The new client's hello was taken as
// "the peer restarted": receive and serve exited, and the sender timed out.
// Beside the real client that gave up, a stale hello whose nonce is above
// any the answering end can pick makes the case certain: the answering end
// then leads the stale handshake. With late, the new client comes after
// the stale handshake ran out of time (--timeout), which ended the session
// the answering end waited in: it waits on.
func TestStaleClientThenSend(t *testing.T) {
	for _, tc := range []struct {
		verb string
		late bool
	}{{"receive", false}, {"serve", false}, {"receive", true}, {"serve", true}} {
		verb := tc.verb
		name := verb
		if tc.late {
			name += "/late"
		}
		t.Run(name, func(t *testing.T) {
			l := newLine(t)
			file := filepath.Join(t.TempDir(), "hi.txt")
			if err := os.WriteFile(file, []byte("hi\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			// The client that gave up.
			gctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			runCmd(gctx, "", l.args("a", "ls")...)
			cancel()
			staleHello(t, l.nm.PortA(), ^uint64(0))

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			bctx, stop := context.WithCancel(ctx)
			defer stop()
			inbox := filepath.Join(l.dir, "inbox")
			done := make(chan result, 1)
			go func() { done <- runCmd(bctx, "", l.args("b", "--timeout", "2s", "--dir", inbox, verb)...) }()
			time.Sleep(500 * time.Millisecond) // it answers the stale hellos
			if tc.late {
				time.Sleep(4 * time.Second) // --timeout, and a handshake resend at most
			}

			rs := runCmd(ctx, "", l.args("a", "--timeout", "5s", "--wait", "20s", "send", file)...)
			if rs.code != 0 {
				stop()
				rb := <-done
				t.Fatalf("send: exit %d, stderr %q\n%s: exit %d, stderr %q", rs.code, rs.stderr, verb, rb.code, rb.stderr)
			}
			if got, err := os.ReadFile(filepath.Join(inbox, "hi.txt")); err != nil || !bytes.Equal(got, []byte("hi\n")) {
				t.Errorf("received %q (%v)", got, err)
			}
			if verb == "serve" {
				select {
				case rb := <-done:
					t.Fatalf("serve stopped: exit %d, stderr %q", rb.code, rb.stderr)
				case <-time.After(500 * time.Millisecond):
				}
				stop()
			}
			if rb := <-done; rb.code != 0 || strings.Contains(rb.stderr, "restarted") {
				t.Errorf("%s: exit %d, stderr %q", verb, rb.code, rb.stderr)
			}
		})
	}
}

// staleHello leaves hellos with nonce n on the line at port, as a client
// that gave up leaves its own.
func staleHello(t *testing.T, port string, n uint64) {
	t.Helper()
	sl, err := serialnet.Open(port, serialnet.Config{Baud: 2_000_000})
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	p := append([]byte{0x01, 'P', '2', 'P', 'L', peer.ProtocolVersion}, make([]byte, 8)...) // HELLO: peer/SPEC.md
	binary.BigEndian.PutUint64(p[6:], n)
	for range 3 {
		if _, err := sl.WriteTo(p, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// TestServeOutlivesRefusedClient: a server on a point-to-point link that
// refuses a client (here one that --peer does not name) says so and
// serves the next one, rather than exit with the refusal: one client with
// the wrong key could stop it, and a later right one would find nobody.
func TestServeOutlivesRefusedClient(t *testing.T) {
	l := newLine(t)
	good := runCmd(context.Background(), "", "id", "--config", filepath.Join(l.dir, "cfga"))
	i := strings.Index(good.stdout, "fingerprint: ")
	if good.code != 0 || i < 0 {
		t.Fatalf("id: exit %d, %q", good.code, good.stdout)
	}
	fp := strings.TrimSpace(good.stdout[i+len("fingerprint: "):])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan result, 1)
	go func() {
		served <- runCmd(sctx, "", l.args("b", "--peer", fp, "--timeout", "3s", "--share", "docs="+t.TempDir(), "serve")...)
	}()
	// A stranger, with its own identity on the same end of the line.
	stranger := runCmd(ctx, "", "serial", l.nm.PortA(), "--baud", "2000000", "--config", filepath.Join(l.dir, "cfgx"), "--timeout", "3s", "ls")
	if stranger.code == 0 {
		t.Fatalf("a client --peer does not name was served: %s", stranger.stderr)
	}
	r := runCmd(ctx, "", l.args("a", "--timeout", "5s", "ls")...)
	if r.code != 0 || !strings.Contains(r.stdout, "docs") {
		t.Errorf("the right client after a refused one: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	stop()
	s := <-served
	if s.code != 0 || !strings.Contains(s.stderr, "refused a client") {
		t.Errorf("serve: exit %d, stderr %q; want it to have said it refused a client and served on", s.code, s.stderr)
	}
}
