package xfer

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// scripted is a Stream whose reads come from a fixed script and whose writes
// are discarded: a sender that says what the fuzzer wants.
type scripted struct{ r io.Reader }

func (s *scripted) Read(p []byte) (int, error)  { return s.r.Read(p) }
func (s *scripted) Write(p []byte) (int, error) { return len(p), nil }
func (s *scripted) Close() error                { return nil }
func (s *scripted) CloseWrite() error           { return nil }

// script builds a sender's side of a transfer for the seed corpus.
func script(f func(w *writer)) []byte {
	var b bytes.Buffer
	w := &writer{bw: bufio.NewWriter(&b)}
	f(w)
	w.flush()
	return b.Bytes()
}

func seedTransfer(name string, data []byte, compress bool) []byte {
	return script(func(w *writer) {
		w.hello(roleSender, []hashAlg{scriptHash}, 0)
		e := fileEntry(name, data)
		d := entry{Kind: kindDir, Name: "dir", Mode: 0o755}
		w.entry(&d)
		w.entry(&e)
		w.manifestEnd(2, e.Size)
		w.file(1, 0)
		flags := byte(0)
		if compress {
			flags = flagZstd
			data = []byte("\x28\xb5\x2f\xfd\x00\x58\x11\x00\x00hello")
		}
		w.data(flags, data)
		w.indexReason(msgEnd, 1, 0, "")
		w.msg(msgDone)
	})
}

// seedLate is a transfer of one late-root file, the receiver holding
// nothing of it.
func seedLate(name string, data []byte) []byte {
	return script(func(w *writer) {
		w.hello(roleSender, []hashAlg{scriptHash}, featLateRoots)
		e := fileEntry(name, data)
		root := e.Root
		e.Late, e.Root = true, [hashLen]byte{}
		w.entry(&e)
		w.manifestEnd(1, e.Size)
		w.file(0, 0)
		w.data(0, data)
		w.end(0, &root)
		w.msg(msgDone)
	})
}

// FuzzReceive feeds arbitrary sender streams to Receive: it must not panic,
// hang or write outside the receive directory.
func FuzzReceive(f *testing.F) {
	f.Add(seedTransfer("dir/a.txt", []byte("hello"), false))
	f.Add(seedTransfer("../a.txt", []byte("hello"), false))
	f.Add(seedTransfer("b", []byte("hello"), true))
	f.Add(seedTransfer("x/y", bytes.Repeat([]byte{1}, 3000), false))
	f.Add(seedLate("late", []byte("hello")))
	f.Add(seedLate("at 10:30", bytes.Repeat([]byte{2}, 3000)))
	f.Add(script(func(w *writer) {
		w.hello(roleSender, []hashAlg{scriptHash}, featNotSent)
		w.notSent("x/link", "xfer: x/link is a symbolic link; not sent (send its target instead)")
		w.manifestEnd(0, 0)
		w.msg(msgDone)
	}))
	f.Fuzz(func(t *testing.T, in []byte) {
		top := t.TempDir()
		dst := filepath.Join(top, "recv")
		res, _ := Receive(context.Background(), &scripted{r: bytes.NewReader(in)}, dst, ReceiveOptions{MaxEntries: 64})
		ents, _ := os.ReadDir(top)
		if len(ents) != 1 {
			t.Fatalf("wrote outside the receive directory: %v", ents)
		}
		for _, fr := range res.Files {
			if fr.Status == StatusDone && !filepath.IsLocal(filepath.FromSlash(fr.Path)) {
				t.Fatalf("stored %q as %q", fr.Name, fr.Path)
			}
		}
	})
}

// FuzzMessages checks the decoders: no panic, and what parses re-encodes to
// the same bytes.
func FuzzMessages(f *testing.F) {
	e := fileEntry("a/b", []byte("x"))
	f.Add(byte(msgEntry), script(func(w *writer) { w.entry(&e) })[headerLen:])
	r := reply{Index: 3, Action: actSend, Offset: ChunkSize, Reason: "why"}
	f.Add(byte(msgReply), script(func(w *writer) { w.reply(&r) })[headerLen:])
	f.Add(byte(msgFile), []byte("\x00\x00\x00\x01\x00\x00\x00\x00\x00\x01\x00\x00"))
	f.Add(byte(msgResult), []byte("\x00\x00\x00\x01\x00a (1).txt"))
	f.Add(byte(msgData), []byte("\x00chunk"))
	f.Add(byte(msgHello), []byte(helloMagic+"\x02\x00\x01\x00\x00S"))
	f.Add(byte(msgNotSent), script(func(w *writer) { w.notSent(`d/a\tb`, "why") })[headerLen:])
	f.Fuzz(func(t *testing.T, typ byte, p []byte) {
		switch typ {
		case msgNotSent:
			name, reason, err := parseNotSent(p)
			if err != nil {
				return
			}
			if got := script(func(w *writer) { w.notSent(name, reason) })[headerLen:]; !bytes.Equal(got, p) {
				t.Fatalf("not-sent %q %q re-encodes to %x, from %x", name, reason, got, p)
			}
		case msgEntry:
			e, err := parseEntry(p)
			if err != nil {
				return
			}
			if got := script(func(w *writer) { w.entry(&e) })[headerLen:]; !bytes.Equal(got, p) {
				t.Fatalf("entry %+v re-encodes to %x, from %x", e, got, p)
			}
			if checkName(e.Name) == nil && (!filepath.IsLocal(e.Name) || strings.Contains(e.Name, "..\\")) {
				t.Fatalf("checkName accepted %q", e.Name)
			}
		case msgReply:
			r, err := parseReply(p)
			if err != nil {
				return
			}
			if got := script(func(w *writer) { w.reply(&r) })[headerLen:]; !bytes.Equal(got, p) {
				t.Fatalf("reply %+v re-encodes to %x, from %x", r, got, p)
			}
		case msgHello:
			parseHello(p)
		case msgFile:
			parseFile(p)
		case msgData:
			flags, data, err := parseData(p)
			if err != nil {
				return
			}
			if got := script(func(w *writer) { w.data(flags, data) })[headerLen:]; !bytes.Equal(got, p) {
				t.Fatalf("data %#x %x re-encodes to %x, from %x", flags, data, got, p)
			}
		default:
			parseIndexReason(p)
			parseManifestEnd(p)
		}
	})
}

// FuzzCheckName: an accepted name always stays inside the directory.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "C:x", "a\\b", ".p2plink-partial/x", "a/./b", "ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if checkName(name) != nil {
			return
		}
		if !filepath.IsLocal(name) || filepath.Clean(name) != name || strings.ContainsAny(name, "\\\x00\n") {
			t.Fatalf("checkName accepted %q", name)
		}
		root, err := os.OpenRoot(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		if _, err := root.Lstat(name); err != nil && !os.IsNotExist(err) && !strings.Contains(err.Error(), "file name too long") {
			t.Fatalf("os.Root refuses accepted name %q: %v", name, err)
		}
	})
}

// TestPeerTextPrintable: a peer's reasons reach the user with control
// characters escaped: a hostile peer cannot send terminal escape sequences
// (OSC 52 sets the clipboard; others rewrite the line). Found by review.
func TestPeerTextPrintable(t *testing.T) {
	dst := t.TempDir()
	data := []byte("hello")
	_, err := receiveFrom(t, dst, ReceiveOptions{}, func(f *fakeSender) {
		f.manifest(fileEntry("f.txt", data))
		f.send(func(w *writer) { w.fatal("\x1b]52;c;cm0gLXJmIH4K\x07\x1b[2K\rall good") })
	})
	if err == nil || strings.ContainsRune(err.Error(), 0x1b) || !strings.Contains(err.Error(), `\x1b[2K\rall good`) {
		t.Errorf("Receive error %q: want the peer's reason with its escapes written out", err)
	}
}

// TestManifestBounded: the receiver holds a manifest whole before it
// answers, so a sender may announce only so many entries, and only so many
// bytes of names (a million names of 4 KB each took gigabytes; found by
// review); either refusal says what to do.
func TestManifestBounded(t *testing.T) {
	old := maxManifestNames
	maxManifestNames = 1 << 20
	defer func() { maxManifestNames = old }()
	for _, tc := range []struct {
		name    string
		entries int
		nameLen int
		opts    ReceiveOptions
		want    string
	}{
		{"too many", 11, 10, ReceiveOptions{MaxEntries: 10}, "more than 10 files and folders in one transfer"},
		{"names too long", 300, 4000, ReceiveOptions{}, "take more than 1 MiB"},
	} {
		in := script(func(w *writer) {
			w.hello(roleSender, []hashAlg{scriptHash}, 0)
			for i := range tc.entries {
				e := entry{Kind: kindDir, Name: fmt.Sprintf("%0*d", tc.nameLen, i), Mode: 0o755}
				w.entry(&e)
			}
		})
		_, err := Receive(context.Background(), &scripted{r: bytes.NewReader(in)}, t.TempDir(), tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "send fewer at once") {
			t.Errorf("%s: %v, want a refusal saying %q and what to do", tc.name, err, tc.want)
		}
	}
}
