package xfer

import (
	"context"
	"sync"
)

// Hashes keeps the root hashes of files sent, so that a later Send of the
// same files — the rerun after a pulled cable, or the transfer that starts
// once a peer appears — need not hash them again before it starts (a
// resumed file's kept prefix is still checked against the file). Prepare fills it ahead of
// time. A file's root is reused while its path, size and modification time
// are those it was hashed at, as rsync's quick check does; a file the
// receiver then finds different (its content changed with neither) is
// dropped from it, so the next run hashes it again. The zero value is not
// usable: use NewHashes or Prepare. A Hashes is safe for concurrent use.
type Hashes struct {
	mu    sync.Mutex
	roots map[hashKey][hashLen]byte
	ready chan struct{} // closed when Prepare's pass is over (nil: none)
}

type hashKey struct {
	path  string
	size  int64
	mtime int64
	alg   hashAlg
}

// NewHashes returns an empty Hashes.
func NewHashes() *Hashes { return &Hashes{roots: map[hashKey][hashLen]byte{}} }

// Prepare starts hashing the files named by paths in the background, with
// the hash this machine prefers (the one a peer of the same kind agrees
// on), and returns the Hashes it fills. Pass it to Send in SendOptions: Send
// waits for the pass to end and hashes only what it did not cover. ctx
// stops the pass. Errors (a missing file, one that changes while hashed)
// are left for Send to meet and report.
func Prepare(ctx context.Context, paths []string) *Hashes {
	h := NewHashes()
	h.ready = make(chan struct{})
	go func() {
		defer close(h.ready)
		files, _, err := buildManifest(ctx, paths)
		if err != nil {
			return
		}
		hashFiles(ctx, files, localHashes()[0], h) // errors: Send meets them again
	}()
	return h
}

// waitFor waits for Prepare's pass, if any; h may be nil.
func (h *Hashes) waitFor(ctx context.Context) error {
	if h == nil || h.ready == nil {
		return nil
	}
	select {
	case <-h.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hashes) get(k hashKey) ([hashLen]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.roots[k]
	return r, ok
}

func (h *Hashes) put(k hashKey, root [hashLen]byte) {
	h.mu.Lock()
	h.roots[k] = root
	h.mu.Unlock()
}

// forget drops every root kept for path.
func (h *Hashes) forget(path string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := range h.roots {
		if k.path == path {
			delete(h.roots, k)
		}
	}
}
