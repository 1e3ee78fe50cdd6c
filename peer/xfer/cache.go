package xfer

import (
	"context"
	"path/filepath"
	"sync"
	"time"
)

// Hashes keeps the root hashes of files sent, so that a later Send of the
// same files — the rerun after a pulled cable, or the transfer that starts
// once a peer appears — need not hash them again before it starts. Prepare fills it ahead of
// time. A file's root is reused while its path, size and modification time
// are those it was hashed at, as rsync's quick check does; a file the
// receiver then finds different (its content changed with neither) is
// dropped from it, so the next run hashes it again. It keeps the chunks'
// hashes of files up to 16 GiB too, so that a resumed file's kept prefix
// is checked without reading it. The zero value is not
// usable: use NewHashes or Prepare. A Hashes is safe for concurrent use.
type Hashes struct {
	mu    sync.Mutex
	roots map[hashKey]cachedRoot
	kept  int           // chunk hashes kept, over all files (maxKeptChunks)
	ready chan struct{} // closed when Prepare's pass is over (nil: none)
	stop  func()        // cuts Prepare's pass short
	store *hashStore    // on disk, across runs (nil: in memory only)
}

// cachedRoot is a file's root and, for a file of at most keptChunks chunks,
// its chunks' hashes: the root of any prefix of whole chunks is then the
// hash of the first of them, so that checking a resumed file's kept prefix
// reads nothing (32 bytes kept per 64 KiB chunk).
type cachedRoot struct {
	root [hashLen]byte
	sums [][hashLen]byte
	// prefix: sums are those of a prefix only (a late-root send that was
	// cut), and root is unknown; they are used only while the file's
	// identity on disk is still id (its path, size and modification time
	// are not enough: the prefix's root would then be taken for content
	// that is no longer there, and the rest of a new file joined to the
	// receiver's old prefix under a root of that splice).
	prefix bool
	// id is the file's identity on disk when the hashes were taken, if
	// known (idOK; always for a prefix). A late-root resume, which trusts
	// the hashes of the prefix it does not read, takes them only under it.
	id   fileID
	idOK bool
}

// keptChunks bounds the chunk hashes kept for one file: 8 MiB of them, for
// files up to 16 GiB; maxKeptChunks bounds them in all: 64 MiB, for 128 GiB
// of files. A file whose hashes are not kept has its kept prefix read again
// to check it.
const (
	keptChunks    = 1 << 18
	maxKeptChunks = 1 << 21
)

// racyWindow is how recently a file may have changed and still have its
// hashes stored on disk.
var racyWindow = 2 * time.Second

// maxRoots bounds the files a Hashes keeps in memory (about 100 bytes each
// with their path, 25 MiB in all, besides the chunk hashes).
var maxRoots = 1 << 18

type hashKey struct {
	path  string
	size  int64
	mtime int64
	alg   hashAlg
}

// NewHashes returns an empty Hashes.
func NewHashes() *Hashes { return &Hashes{roots: map[hashKey]cachedRoot{}} }

// NewHashesIn returns a Hashes that also keeps what it learns on disk, in
// the folder dir (made when first needed, mode 0700), for later runs of
// the program: a file of 8 MiB or more whose device, inode, size,
// modification time and change time are those it was hashed at is not
// read again, neither to hash it nor to check a resumed transfer's kept
// prefix (on Unix systems; elsewhere it keeps nothing on disk). A file
// changed in the 2 s before it was hashed is not kept on disk. The folder
// holds at most 256 MiB (32 bytes per 64 KiB of file, files up to 16 GiB
// with their chunk hashes), the oldest entries going first; deleting it
// only costs the hashing again. With dir "" it is NewHashes.
func NewHashesIn(dir string) *Hashes {
	h := NewHashes()
	if dir != "" {
		h.store = &hashStore{dir: dir}
	}
	return h
}

// Prepare starts hashing the files named by paths in the background, with
// the hash this machine prefers (the one a peer of the same kind agrees
// on), and returns the Hashes it fills. Pass it to Send in SendOptions. A
// receiver that takes late roots needs no root before a file is sent:
// then Send stops the pass, puts the roots it found in the manifest and
// hashes the other files as it sends them, so that the pass never delays
// the transfer. Otherwise Send waits for the pass to end and hashes only
// what it did not cover. ctx stops the pass. Errors (a missing file, one that changes while hashed)
// are left for Send to meet and report.
func Prepare(ctx context.Context, paths []string) *Hashes { return PrepareIn(ctx, paths, "") }

// PrepareIn is Prepare with a Hashes that keeps what it learns in the
// folder dir too, and takes what earlier runs kept there (see NewHashesIn).
func PrepareIn(ctx context.Context, paths []string, dir string) *Hashes {
	h := NewHashesIn(dir)
	h.ready = make(chan struct{})
	ctx, h.stop = context.WithCancel(ctx)
	go func() {
		defer close(h.ready)
		defer h.stop()
		if passHook != nil {
			passHook(ctx)
		}
		files, _, err := buildManifest(ctx, paths)
		if err != nil {
			return
		}
		hashFiles(ctx, files, localHashes()[0], h, false) // errors: Send meets them again
	}()
	return h
}

// passHook, set by tests, runs at the start of Prepare's pass.
var passHook func(ctx context.Context)

// stopPass cuts Prepare's pass short, if any, and waits for it to end;
// h may be nil.
func (h *Hashes) stopPass(ctx context.Context) error {
	if h != nil && h.stop != nil {
		h.stop()
	}
	return h.waitFor(ctx)
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
	return r.root, ok && !r.prefix
}

// put keeps a file's root and its chunk hashes (nil: not kept). Past
// maxRoots files, one kept before goes (a long-running server meets ever
// more files, and new versions of them).
func (h *Hashes) put(k hashKey, root [hashLen]byte, sums [][hashLen]byte) {
	h.putID(k, root, sums, fileID{}, false)
}

// putID is put for a file whose identity was id (if idOK) as it was hashed.
func (h *Hashes) putID(k hashKey, root [hashLen]byte, sums [][hashLen]byte, id fileID, idOK bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked(k)
	if h.kept+len(sums) > maxKeptChunks {
		sums = nil
	}
	h.kept += len(sums)
	h.roots[k] = cachedRoot{root: root, sums: sums, id: id, idOK: idOK}
}

// dropLocked makes room for k's entry: drops what is kept under k, and
// one other entry if maxRoots are kept.
func (h *Hashes) dropLocked(k hashKey) {
	if _, ok := h.roots[k]; !ok && len(h.roots) >= maxRoots {
		for old, c := range h.roots {
			h.kept -= len(c.sums)
			delete(h.roots, old)
			break
		}
	}
	h.kept -= len(h.roots[k].sums)
	delete(h.roots, k)
}

// putPrefix keeps the hashes of the first chunks of a file whose identity
// is id, unless more is kept for it already.
func (h *Hashes) putPrefix(k hashKey, id fileID, sums [][hashLen]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.roots[k]; ok && (!c.prefix || (c.id == id && len(c.sums) >= len(sums))) {
		return
	}
	h.dropLocked(k)
	if h.kept+len(sums) > maxKeptChunks {
		return
	}
	h.kept += len(sums)
	h.roots[k] = cachedRoot{sums: sums, prefix: true, id: id, idOK: true}
}

// prefixRoot returns the root of the file's first off bytes, a whole number
// of chunks or the whole file, from the chunk hashes kept for it; ok is
// false when they were not kept. h may be nil.
func (h *Hashes) prefixRoot(k hashKey, off int64) (root [hashLen]byte, ok bool) {
	rh, ok := h.prefixState(k, off, nil, false)
	if !ok {
		return root, false
	}
	return rh.root(), true
}

// prefixState returns the root state over the file's first off bytes, a
// whole number of chunks, from the chunk hashes kept for it, and appends
// those to *sums unless sums is nil; ok is false when they were not kept.
// Hashes of a prefix only, and with needID any, are taken only while the
// file's identity is the one they were taken under: a late-root resume
// has no root in the manifest to catch stale ones. h may be nil.
func (h *Hashes) prefixState(k hashKey, off int64, sums *[][hashLen]byte, needID bool) (rh *rootHash, ok bool) {
	if h == nil {
		return nil, false
	}
	h.mu.Lock()
	c, found := h.roots[k]
	h.mu.Unlock()
	n := (off + ChunkSize - 1) / ChunkSize
	if !found || c.sums == nil || n > int64(len(c.sums)) {
		return nil, false
	}
	if c.prefix || needID {
		if now, ok := statID(k.path); !ok || !c.idOK || now != c.id {
			return nil, false
		}
	}
	rh = newRootHash(k.alg)
	for i := range n {
		rh.addSum(&c.sums[i])
	}
	if sums != nil {
		*sums = append(*sums, c.sums[:n]...)
	}
	return rh, true
}

// lookupPrefix makes sure the chunk hashes kept for the first off bytes
// of the late-root file f, in memory or on disk, are in memory, if there
// are any.
func (h *Hashes) lookupPrefix(f *srcFile, alg hashAlg, off int64) {
	k := hashKey{f.path, f.Size, f.Mtime, alg}
	if _, ok := h.prefixState(k, off, nil, true); ok || h == nil || h.store == nil {
		return
	}
	abs, err := filepath.Abs(f.path)
	id, ok := statID(f.path)
	if err != nil || !ok || id.size != f.Size || id.mtime != f.Mtime {
		return
	}
	if sums, ok := h.store.loadPrefix(abs, alg, id); ok {
		h.putPrefix(k, id, sums)
	}
}

// forget drops every root kept for path, in memory and on disk.
func (h *Hashes) forget(path string) {
	h.mu.Lock()
	for k, c := range h.roots {
		if k.path == path {
			h.kept -= len(c.sums)
			delete(h.roots, k)
		}
	}
	h.mu.Unlock()
	if h.store != nil {
		if abs, err := filepath.Abs(path); err == nil {
			h.store.drop(abs)
		}
	}
}

// lookup returns the root kept for the file f under alg: in memory, or on
// disk (then kept in memory too) while the file is as it was hashed.
func (h *Hashes) lookup(f *srcFile, alg hashAlg) ([hashLen]byte, bool) {
	k := hashKey{f.path, f.Size, f.Mtime, alg}
	if root, ok := h.get(k); ok || h.store == nil {
		return root, ok
	}
	abs, err := filepath.Abs(f.path)
	id, ok := statID(f.path)
	if err != nil || !ok || id.size != f.Size || id.mtime != f.Mtime {
		return [hashLen]byte{}, false
	}
	root, sums, ok := h.store.load(abs, alg, id)
	if ok {
		h.putID(k, root, sums, id, true)
	}
	return root, ok
}

// keep keeps the root and chunk hashes (nil: not kept) of the file f,
// hashed under alg while its identity on disk was before (ok: known): in
// memory, and on disk when it is still that identity now (a file that
// changed while it was hashed is not stored on disk; in memory its key has
// the size and modification time it was hashed at, which Send checks
// again before and after sending it).
func (h *Hashes) keep(f *srcFile, alg hashAlg, before fileID, ok bool, sums [][hashLen]byte) {
	k := hashKey{f.path, f.Size, f.Mtime, alg}
	var after fileID
	if ok {
		after, ok = statID(f.path)
		ok = ok && after == before && after.size == f.Size && after.mtime == f.Mtime
	}
	h.putID(k, f.Root, sums, after, ok)
	abs, err := filepath.Abs(f.path)
	if h.store == nil || !ok || err != nil {
		return
	}
	// A file changed within the last moments may change again within the
	// same tick of the file system's clock, leaving its times as they are
	// (git's "racily clean" files): such a file is not stored.
	// (The change time is the one to ask: any write moves it, and, unlike
	// the modification time, nobody can set it, to the future either.)
	if now := time.Now().UnixNano(); now-after.ctime < int64(racyWindow) {
		return
	}
	h.store.save(abs, alg, after, f.Root, sums)
}

// keepPrefix keeps the hashes of the first chunks of the late-root file
// f, read while its identity on disk was before (ok: known), for a resume
// of the send that was cut: in memory, and on disk under the same
// conditions as keep.
//
// Unlike a whole file's root, which the receiver checks against every byte,
// a prefix's hashes are trusted for the bytes they cover, so they are kept
// only under the file's full identity (device, inode, size, modification
// and change time), in memory too, and not for a file changed in the
// racyWindow before; where that identity cannot be had (not on Unix),
// they are not kept.
func (h *Hashes) keepPrefix(f *srcFile, alg hashAlg, before fileID, ok bool, sums [][hashLen]byte) {
	if !ok {
		return
	}
	after, ok := statID(f.path)
	if !ok || after != before || after.size != f.Size || after.mtime != f.Mtime {
		return
	}
	if now := time.Now().UnixNano(); now-after.ctime < int64(racyWindow) {
		return
	}
	h.putPrefix(hashKey{f.path, f.Size, f.Mtime, alg}, after, sums)
	if abs, err := filepath.Abs(f.path); h.store != nil && err == nil {
		h.store.savePrefix(abs, alg, after, sums)
	}
}
