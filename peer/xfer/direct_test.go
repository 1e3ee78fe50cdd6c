package xfer

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// vecBuffer is a bytes.Buffer that also takes several buffers at once,
// as peer.Stream does, and counts how often it did.
type vecBuffer struct {
	bytes.Buffer
	vecs int
}

func (b *vecBuffer) WriteBuffers(bufs ...[]byte) (int, error) {
	b.vecs++
	n := 0
	for _, p := range bufs {
		k, _ := b.Write(p)
		n += k
	}
	return n, nil
}

// TestDirectMessages checks that messages large enough to skip the writer's
// buffer (directIO) are framed byte for byte as through it, interleaved
// with small ones, and read back whole.
func TestDirectMessages(t *testing.T) {
	big := randBytes(5, 4*ChunkSize)
	var plain bytes.Buffer
	pw := &writer{bw: bufio.NewWriterSize(&plain, ioBuffer)}
	var direct vecBuffer
	dw := newWriter(&direct, ioBuffer)
	sizes := []int{ChunkSize, 10, directIO, directIO - 1, 0, ChunkSize, 3, ChunkSize - 7}
	for _, w := range []*writer{pw, dw} {
		off := 0
		for i, n := range sizes {
			if err := w.data(byte(i), big[off:off+n]); err != nil {
				t.Fatal(err)
			}
			off += n
		}
		if err := w.flush(); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(plain.Bytes(), direct.Bytes()) {
		t.Fatalf("direct framing differs: %d bytes against %d through the buffer", direct.Len(), plain.Len())
	}
	if want := 5; direct.vecs != want { // messages of directIO bytes and more (with the flags byte)
		t.Fatalf("%d messages went directly, want %d", direct.vecs, want)
	}
	// Read them back: past the reader's small buffer, a payload is read
	// directly, so no read asks for more than one payload and some ask
	// for most of a chunk.
	src := &maxReader{r: bytes.NewReader(direct.Bytes())}
	r := newReader(src)
	off := 0
	for i, n := range sizes {
		typ, p, err := r.next()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		want := append([]byte{byte(i)}, big[off:off+n]...)
		if typ != msgData || !bytes.Equal(p, want) {
			t.Fatalf("message %d: type %d, %d bytes, differs from the %d written", i, typ, len(p), len(want))
		}
		off += n
	}
	if _, _, err := r.next(); err != io.EOF {
		t.Fatalf("after the last message: %v, want io.EOF", err)
	}
	if src.max > ChunkSize+1 || src.max < ChunkSize-readBuffer {
		t.Fatalf("the largest read asked for %d bytes; want %d to %d: payloads went through the reader's buffer", src.max, ChunkSize-readBuffer, ChunkSize+1)
	}
}

// maxReader remembers the largest read asked of it.
type maxReader struct {
	r   io.Reader
	max int
}

func (m *maxReader) Read(p []byte) (int, error) {
	m.max = max(m.max, len(p))
	return m.r.Read(p)
}
