package xfer

import (
	"crypto/sha256"
	"errors"
	"hash"
	"io"
)

// rootHash computes a file's root hash: SHA-256 over the concatenated
// SHA-256 of each ChunkSize chunk, in order (the last chunk may be shorter).
// The root of an empty file is the SHA-256 of nothing. Both sides use it for
// every root they compute, so that a byte is hashed once per side.
type rootHash struct {
	h   hash.Hash     // over the chunk hashes
	sum [hashLen]byte // scratch, so that hashing a chunk allocates nothing
}

func newRootHash() *rootHash { return &rootHash{h: sha256.New()} }

// add hashes one chunk, adds its hash to the root and returns it.
func (r *rootHash) add(chunk []byte) [hashLen]byte {
	r.sum = sha256.Sum256(chunk)
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
// ChunkSize bytes), and returns the root hash of what it read and how many
// bytes that was.
func fileRoot(rd io.Reader, buf []byte) (root [hashLen]byte, n int64, err error) {
	rh := newRootHash()
	buf = buf[:ChunkSize]
	for {
		k, err := io.ReadFull(rd, buf)
		if k > 0 {
			rh.add(buf[:k])
			n += int64(k)
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return rh.root(), n, nil
		default:
			return root, n, err
		}
	}
}
