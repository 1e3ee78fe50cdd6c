package xfer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unicode"
)

// notSentTree makes a folder "d" holding a file, a link to it, a link
// out, and a file whose name holds a backslash (which Send leaves out),
// and returns d's path and the names Send skips in it.
func notSentTree(t *testing.T) (string, []string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("a backslash in a file name, and symbolic links without privileges, are Unix things")
	}
	d := filepath.Join(t.TempDir(), "d")
	writeFile(t, filepath.Join(d, "real"), []byte("real"), 0o644)
	writeFile(t, filepath.Join(d, `a\tb`), []byte("backslash"), 0o644)
	if err := os.Symlink("real", filepath.Join(d, "in")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(d, "out")); err != nil {
		t.Fatal(err)
	}
	return d, []string{`d/a\tb`, "d/in", "d/out"}
}

// notSentOf returns the skipped entries of a result by name.
func notSentOf(r Result) map[string]FileResult {
	m := map[string]FileResult{}
	for _, f := range r.Files {
		if f.Status == StatusSkipped {
			m[f.Name] = f
		}
	}
	return m
}

// TestNotSentTold: the receiver learns what the sender left out of a
// folder, each with the sender's reason, naming the entry by its name,
// not by where it lies on the sender (a share server's folders). Before,
// only the sender's log said so, and a get left files out silently
// (found by a field test).
func TestNotSentTold(t *testing.T) {
	src, skipped := notSentTree(t)
	dst := t.TempDir()
	o := run(t, []string{src}, dst, SendOptions{}, ReceiveOptions{})
	mustOK(t, o)
	checkFile(t, filepath.Join(dst, "d/real"), []byte("real"), 0o644)
	sent, got := notSentOf(o.sres), notSentOf(o.rres)
	if len(sent) != len(skipped) || len(got) != len(skipped) {
		t.Fatalf("sender skipped %v, receiver was told of %v; want %v on both sides", sent, got, skipped)
	}
	for _, name := range skipped {
		s, r := sent[name], got[name]
		if r.Err == nil {
			t.Errorf("%s: the receiver has no reason", name)
			continue
		}
		if want := strings.ReplaceAll(s.Err.Error(), s.Path, name); r.Err.Error() != want {
			t.Errorf("%s: the receiver says %q, want the sender's reason %q", name, r.Err, want)
		}
		if strings.Contains(r.Err.Error(), filepath.Dir(src)) {
			t.Errorf("%s: the receiver is told where the sender's files lie: %q", name, r.Err)
		}
	}
	if why := got[`d/a\tb`].Err; why == nil || !strings.Contains(why.Error(), "backslash") {
		t.Errorf(`d/a\tb: %v; want the reason to name the backslash`, why)
	}
	if why := got["d/in"].Err; why == nil || !strings.Contains(why.Error(), "symbolic link") {
		t.Errorf("d/in: %v; want the reason to say it is a symbolic link", why)
	}
	// The skipped entries come after those of the manifest.
	for i, f := range o.rres.Files {
		if f.Status == StatusSkipped && i < len(o.rres.Files)-len(skipped) {
			t.Errorf("skipped %q at %d of %d", f.Name, i, len(o.rres.Files))
		}
	}
}

// TestNotSentOlderPeers: a side whose hello does not list the feature
// (as before it was added) interoperates both ways: the sender does not
// send the notes, and the receiver takes the transfer as before.
func TestNotSentOlderPeers(t *testing.T) {
	src, skipped := notSentTree(t)
	for _, tc := range []struct {
		name string
		so   SendOptions
		ro   ReceiveOptions
	}{
		{"an older receiver", SendOptions{}, ReceiveOptions{noNotSent: true}},
		{"an older sender", SendOptions{noNotSent: true}, ReceiveOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := t.TempDir()
			a, b := streamPair()
			tap := &tapStream{memStream: a}
			o := transfer(t, tap, b, []string{src}, dst, tc.so, tc.ro)
			mustOK(t, o)
			checkFile(t, filepath.Join(dst, "d/real"), []byte("real"), 0o644)
			if n := len(notSentOf(o.sres)); n != len(skipped) {
				t.Errorf("the sender skipped %d, want %d", n, len(skipped))
			}
			if got := notSentOf(o.rres); len(got) != 0 {
				t.Errorf("the receiver was told of %v", got)
			}
			r := &reader{br: bufio.NewReader(&tap.out)}
			for {
				typ, _, err := r.next()
				if err != nil {
					break
				}
				if typ == msgNotSent {
					t.Fatal("the sender sent a not-sent note")
				}
			}
		})
	}
}

// TestNotSentHostile: a receiver takes notes only when both hellos listed
// them, bounds them with the manifest's entries and names, refuses
// malformed ones, and shows a note's name and reason with control
// characters escaped.
func TestNotSentHostile(t *testing.T) {
	old := maxManifestNames
	maxManifestNames = 1 << 20
	defer func() { maxManifestNames = old }()
	note := func(name, reason string) func(w *writer) {
		return func(w *writer) { w.notSent(name, reason) }
	}
	raw := func(p []byte) func(w *writer) {
		return func(w *writer) { w.msg(msgNotSent, p) }
	}
	many := func(n, size int) func(w *writer) {
		return func(w *writer) {
			for i := range n {
				w.notSent(fmt.Sprintf("%0*d", size, i), "a symbolic link")
			}
		}
	}
	for _, tc := range []struct {
		name     string
		features byte
		notes    func(w *writer)
		opts     ReceiveOptions
		want     error  // nil: taken
		says     string // in the error
	}{
		{"unoffered by the sender", 0, note("x", "y"), ReceiveOptions{}, ErrProtocol, "did not both list"},
		{"unoffered by the receiver", featNotSent, note("x", "y"), ReceiveOptions{noNotSent: true}, ErrProtocol, "did not both list"},
		{"empty name", featNotSent, raw([]byte{0, 0, 'r'}), ReceiveOptions{}, ErrProtocol, "not-sent message"},
		{"cut name", featNotSent, raw([]byte{0, 9, 'a'}), ReceiveOptions{}, ErrProtocol, "not-sent message"},
		{"short", featNotSent, raw([]byte{1}), ReceiveOptions{}, ErrProtocol, "not-sent message"},
		{"reason too long", featNotSent, raw(append([]byte{0, 1, 'a'}, bytes.Repeat([]byte("r"), maxReason+1)...)), ReceiveOptions{}, ErrProtocol, "not-sent message"},
		{"too many", featNotSent, many(10, 10), ReceiveOptions{MaxEntries: 10}, nil, "more than 10 files and folders"},
		{"names too long", featNotSent, many(300, 4000), ReceiveOptions{}, nil, "take more than 1 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := script(func(w *writer) {
				w.hello(roleSender, []hashAlg{scriptHash}, tc.features)
				e := entry{Kind: kindDir, Name: "d", Mode: 0o755}
				w.entry(&e)
				tc.notes(w)
				w.manifestEnd(1, 0)
				w.msg(msgDone)
			})
			_, err := Receive(context.Background(), &scripted{r: bytes.NewReader(in)}, t.TempDir(), tc.opts)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("Receive: %v, want %v saying %q", err, tc.want, tc.says)
			}
		})
	}

	// What a note says reaches the user escaped.
	evil := "\x1b]52;c;cm0gLXJmIH4K\x07\x1b[2K\rall good"
	in := script(func(w *writer) {
		w.hello(roleSender, []hashAlg{scriptHash}, featNotSent)
		w.notSent("d/"+evil, evil)
		w.notSent("d/quiet", "")
		w.manifestEnd(0, 0)
		w.msg(msgDone)
	})
	res, err := Receive(context.Background(), &scripted{r: bytes.NewReader(in)}, t.TempDir(), ReceiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := notSentOf(res)
	f, ok := got["d/"+evil]
	if !ok || f.Err == nil || strings.IndexFunc(f.Err.Error(), unicode.IsControl) >= 0 || !strings.Contains(f.Err.Error(), `\x1b[2K\rall good`) {
		t.Errorf("note %+v: want its reason with the escapes written out", f)
	}
	if f := got["d/quiet"]; f.Err == nil || !strings.Contains(f.Err.Error(), "no reason") {
		t.Errorf("a note without a reason: %v", f.Err)
	}
}
