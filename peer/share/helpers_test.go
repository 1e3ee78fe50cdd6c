package share

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// memStream is one end of an in-memory full-duplex stream with CloseWrite.
// mangle, if set, may change what this end writes (a lying peer).
type memStream struct {
	r      *io.PipeReader
	w      *io.PipeWriter
	mu     sync.Mutex
	wrote  int64
	mangle func(off int64, p []byte)
}

var errClosed = errors.New("test: stream closed")

func streamPair() (a, b *memStream) {
	ar, bw := io.Pipe()
	br, aw := io.Pipe()
	return &memStream{r: ar, w: aw}, &memStream{r: br, w: bw}
}

func (s *memStream) Read(p []byte) (int, error) { return s.r.Read(p) }

func (s *memStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	off := s.wrote
	s.wrote += int64(len(p))
	m := s.mangle
	s.mu.Unlock()
	if m != nil {
		p = bytes.Clone(p)
		m(off, p)
	}
	return s.w.Write(p)
}

func (s *memStream) CloseWrite() error { return s.w.Close() }

func (s *memStream) Close() error {
	s.w.CloseWithError(errClosed)
	s.r.CloseWithError(errClosed)
	return nil
}

// cheap are Argon2id parameters that keep tests fast.
var cheap = argonParams{memory: 64, time: 1, threads: 1}

func cheapHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := hashPassword(pw, cheap)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Fingerprints of test peers.
const (
	fpAnn = "AAAA-BBBB-CCCC-DDDD"
	fpBob = "EEEE-FFFF-GGGG-HHHH"
	fpEve = "MMMM-NNNN-PPPP-QQQQ"
)

var (
	ann = Peer{Name: "ann", Fingerprint: fpAnn}
	bob = Peer{Name: "bob", Fingerprint: fpBob}
	eve = Peer{Name: "eve", Fingerprint: fpEve}
)

// fakeClock is an injectable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// logBuf collects the server's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newServer(t testing.TB, cfg *Config, opts ServerOptions) (*Server, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(lb, nil))
	}
	srv, err := NewServer(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return srv, lb
}

// call runs one request: the server serves one end as p, client uses the
// other. It returns the server's error.
func call(t testing.TB, srv *Server, p Peer, client func(st Stream)) error {
	t.Helper()
	return callMangled(t, srv, p, nil, client)
}

func callMangled(t testing.TB, srv *Server, p Peer, mangle func(int64, []byte), client func(st Stream)) error {
	t.Helper()
	a, b := streamPair()
	b.mangle = mangle
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(context.Background(), b, p) }()
	client(a)
	a.Close()
	select {
	case err := <-errc:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after the client finished")
		return nil
	}
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// listAll returns every path below dir, relative, slash-separated, without
// the partial-data folder.
func listAll(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() && d.Name() == ".p2plink-partial" {
			return filepath.SkipDir
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	return out
}
