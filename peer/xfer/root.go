package xfer

import (
	"errors"
	"hash"
	"io"
)

// rootHash computes a file's root hash under the transfer's hash H (hashAlg):
// H over the concatenated H of each ChunkSize chunk, in order (the last
// chunk may be shorter). The root of an empty file is the H of nothing. Both
// sides use it for every root they compute, so that a byte is hashed once
// per side.
type rootHash struct {
	alg hashAlg
	h   hash.Hash     // over the chunk hashes
	sum [hashLen]byte // scratch, so that hashing a chunk allocates nothing
}

func newRootHash(alg hashAlg) *rootHash { return &rootHash{alg: alg, h: alg.new()} }

// add hashes one chunk, adds its hash to the root and returns it.
func (r *rootHash) add(chunk []byte) [hashLen]byte {
	r.sum = r.alg.sum(chunk)
	r.h.Write(r.sum[:])
	return r.sum
}

// addSum adds a chunk hash computed elsewhere.
func (r *rootHash) addSum(sum *[hashLen]byte) {
	r.sum = *sum
	r.h.Write(r.sum[:])
}

// root returns the root over the chunks added so far.
func (r *rootHash) root() [hashLen]byte {
	r.h.Sum(r.sum[:0])
	return r.sum
}

// fileRoot reads rd to its end, one chunk at a time into buf (at least
// ChunkSize bytes), and returns the root hash under alg of what it read and
// how many bytes that was.
func fileRoot(alg hashAlg, rd io.Reader, buf []byte) (root [hashLen]byte, n int64, err error) {
	return fileRootKeep(alg, rd, buf, nil)
}

// fileRootKeep is fileRoot that also appends the chunks' hashes to *sums,
// unless sums is nil.
func fileRootKeep(alg hashAlg, rd io.Reader, buf []byte, sums *[][hashLen]byte) (root [hashLen]byte, n int64, err error) {
	rh := newRootHash(alg)
	n, err = rh.addFrom(rd, buf, sums)
	if err != nil {
		return root, n, err
	}
	return rh.root(), n, nil
}

// addFrom reads rd to its end, one chunk at a time into buf (at least
// ChunkSize bytes), adds each chunk to the root and, unless sums is nil,
// appends its hash to *sums. It returns how many bytes it read.
func (r *rootHash) addFrom(rd io.Reader, buf []byte, sums *[][hashLen]byte) (n int64, err error) {
	buf = buf[:ChunkSize]
	for {
		k, err := io.ReadFull(rd, buf)
		if k > 0 {
			sum := r.add(buf[:k])
			if sums != nil {
				*sums = append(*sums, sum)
			}
			n += int64(k)
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return n, nil
		default:
			return n, err
		}
	}
}
