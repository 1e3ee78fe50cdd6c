package xfer

import (
	"errors"
	"io"
	"net"
	"sync"
)

// memStream is one end of an in-memory, unbuffered, full-duplex stream with
// CloseWrite, like a peer-protocol stream over net.Pipe.
type memStream struct {
	r    *io.PipeReader
	w    *io.PipeWriter
	cut  *cutter // shared by both ends; nil: never cut
	peer *memStream
}

// cutter cuts both directions once limit bytes were written by the end that
// counts (the sender), as a pulled cable would.
type cutter struct {
	mu      sync.Mutex
	limit   int64
	written int64
	ends    []*memStream
}

var errCut = errors.New("test: cable cut")

func streamPair() (a, b *memStream) {
	ar, bw := io.Pipe()
	br, aw := io.Pipe()
	a = &memStream{r: ar, w: aw}
	b = &memStream{r: br, w: bw}
	a.peer, b.peer = b, a
	return a, b
}

// cutPair returns a pair whose a side's writes are cut after limit bytes.
func cutPair(limit int64) (a, b *memStream) {
	a, b = streamPair()
	a.cut = &cutter{limit: limit, ends: []*memStream{a, b}}
	b.cut = a.cut
	return a, b
}

func (s *memStream) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && s.cutDone() {
		err = errCut
	}
	return n, err
}

func (s *memStream) cutDone() bool {
	c := s.cut
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written >= c.limit
}

func (s *memStream) Write(p []byte) (int, error) {
	if s.cut == nil {
		return s.w.Write(p)
	}
	if s != s.cut.ends[0] {
		n, err := s.w.Write(p)
		if err != nil && s.cutDone() {
			err = errCut
		}
		return n, err
	}
	c := s.cut
	c.mu.Lock()
	room := c.limit - c.written
	if room <= 0 {
		c.mu.Unlock()
		return 0, errCut
	}
	n := int64(len(p))
	if n > room {
		n = room
	}
	c.written += n
	c.mu.Unlock()
	m, err := s.w.Write(p[:n])
	if n == room {
		for _, e := range c.ends {
			e.r.CloseWithError(errCut)
			e.w.CloseWithError(errCut)
		}
		if err == nil && m < len(p) {
			err = errCut
		}
	}
	return m, err
}

func (s *memStream) CloseWrite() error { return s.w.Close() }

func (s *memStream) Close() error {
	s.w.CloseWithError(net.ErrClosed)
	s.r.CloseWithError(net.ErrClosed)
	return nil
}
