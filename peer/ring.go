package peer

// byteRing is a queue of bytes in one buffer that wraps around: a byte is
// copied in once and out once, never moved in between (a slice that is
// appended to at one end and consumed at the other must move what it holds
// to reuse its room, and under a steady stream that is one more copy of
// every byte). The buffer grows, to a power of two, when a write does not
// fit; it is never smaller than minRing once used.
type byteRing struct {
	buf []byte
	r   int // index of the first byte held
	n   int // bytes held
}

const minRing = 4 << 10

// Len is how many bytes the ring holds.
func (q *byteRing) Len() int { return q.n }

// write appends p.
func (q *byteRing) write(p []byte) {
	if q.n+len(p) > len(q.buf) {
		q.grow(q.n + len(p))
	}
	w := (q.r + q.n) & (len(q.buf) - 1)
	k := copy(q.buf[w:], p)
	copy(q.buf, p[k:])
	q.n += len(p)
}

// grow moves what the ring holds to the start of a buffer of at least need
// bytes.
func (q *byteRing) grow(need int) {
	size := max(len(q.buf), minRing)
	for size < need {
		size *= 2
	}
	nb := make([]byte, size)
	a, b := q.peek(q.n)
	k := copy(nb, a)
	copy(nb[k:], b)
	q.buf, q.r = nb, 0
}

// peek returns the first n bytes held (n <= Len) as one or two slices of
// the ring's buffer, valid until the next write.
func (q *byteRing) peek(n int) (a, b []byte) {
	if n == 0 {
		return nil, nil
	}
	end := q.r + n
	if end <= len(q.buf) {
		return q.buf[q.r:end], nil
	}
	return q.buf[q.r:], q.buf[:end-len(q.buf)]
}

// discard drops the first n bytes held (n <= Len).
func (q *byteRing) discard(n int) {
	q.n -= n
	if q.n == 0 {
		q.r = 0 // the next bytes go to the start: fewer wraps
		return
	}
	q.r = (q.r + n) & (len(q.buf) - 1)
}

// read moves up to len(p) bytes out into p and returns how many.
func (q *byteRing) read(p []byte) int {
	a, b := q.peek(min(len(p), q.n))
	k := copy(p, a)
	k += copy(p[k:], b)
	q.discard(k)
	return k
}
