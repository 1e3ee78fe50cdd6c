package serialnet

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"

	"github.com/p2plink/p2plink/framing"
)

// ptyPair is one pseudo-terminal: the test drives master, the Link opens
// the slave by path. The pair keeps its own slave descriptor open so the
// master does not read EIO before the Link opens the slave.
type ptyPair struct {
	master, slave *os.File
	path          string
}

func newPty(t testing.TB) *ptyPair {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if _, err := term.MakeRaw(int(s.Fd())); err != nil {
		t.Fatalf("raw mode on %s: %v", s.Name(), err)
	}
	p := &ptyPair{master: m, slave: s, path: s.Name()}
	t.Cleanup(p.close)
	return p
}

// close closes both ends: the Link on the slave sees the line hang up.
func (p *ptyPair) close() {
	p.master.Close()
	p.slave.Close()
}

// nullModem is two pty pairs whose masters a copy goroutine joins, so two
// Links on the slaves talk as over a crossed serial cable.
type nullModem struct {
	a, b *ptyPair
	wg   sync.WaitGroup
}

func newNullModem(t testing.TB) *nullModem {
	t.Helper()
	n := &nullModem{a: newPty(t), b: newPty(t)}
	n.wg.Add(2)
	go n.copy(n.b.master, n.a.master)
	go n.copy(n.a.master, n.b.master)
	t.Cleanup(func() {
		n.a.close()
		n.b.close()
		n.wg.Wait()
	})
	return n
}

func (n *nullModem) copy(dst, src *os.File) {
	defer n.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// testConfig is a Config with a fast reader tick and reopen, logging to t.
func testConfig(t testing.TB) Config {
	return Config{
		ReadTimeout:    5 * time.Millisecond,
		ReopenInterval: 5 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(tWriter{t}, nil)),
	}
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func openLink(t testing.TB, path string, cfg Config) *Link {
	t.Helper()
	l, err := Open(path, cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// encode returns the wire bytes of one frame.
func encode(t testing.TB, typ framing.Type, payload []byte) []byte {
	t.Helper()
	buf := make([]byte, framing.EncodedLen(len(payload)))
	n, err := framing.Encode(buf, typ, payload)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// frameReader decodes frames the Link wrote, from a pty master.
type frameReader struct {
	r    io.Reader
	dec  *framing.Decoder
	buf  []byte
	have []byte
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: r, dec: framing.NewDecoder(framing.MaxPayload), buf: make([]byte, 4096)}
}

// next returns the next good frame's payload (a copy), failing on a bad one.
func (fr *frameReader) next(t testing.TB) []byte {
	t.Helper()
	for {
		for len(fr.have) > 0 {
			n, f, ok, err := fr.dec.Next(fr.have)
			fr.have = fr.have[n:]
			if err != nil {
				t.Fatalf("the Link wrote a bad frame: %v", err)
			}
			if ok {
				if f.Type != FrameType {
					t.Fatalf("frame type %d, want %d", f.Type, FrameType)
				}
				return append([]byte(nil), f.Payload...)
			}
		}
		n, err := fr.r.Read(fr.buf)
		if err != nil {
			t.Fatalf("reading the pty master: %v", err)
		}
		fr.have = fr.buf[:n]
	}
}

// readFrame reads one frame from l with a generous deadline, so a broken
// link fails the test instead of hanging it.
func readFrame(t testing.TB, l *Link) []byte {
	t.Helper()
	l.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer l.SetReadDeadline(time.Time{})
	buf := make([]byte, l.MTU())
	n, addr, err := l.ReadFrom(buf)
	if err != nil {
		t.Fatalf("ReadFrom: %v", err)
	}
	if addr == nil || addr.Network() != "p2p" {
		t.Fatalf("ReadFrom address %v, want link.PeerAddr", addr)
	}
	return buf[:n]
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
