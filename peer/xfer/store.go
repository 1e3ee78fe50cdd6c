package xfer

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// A hashStore keeps the roots (and chunk hashes) of files on disk, one
// small file per source file and hash, so that a later run of the program
// — the rerun after a cut, or a new send of the same big file — needs
// neither to read the file to hash it again nor to read its kept prefix
// to check a resume. An entry is used only while the file's identity is
// the one it was hashed at: device, inode, size, modification time and
// change time (which no one can set back: any write, chmod or rename
// moves it on), which is stricter than rsync's quick check. The receiver
// still verifies every byte against the root, and a file it finds
// different is forgotten here too.
//
// Entries are written whole to a temporary file and renamed into place,
// and end with a SHA-256 of what precedes it: a torn or damaged entry is
// ignored (the file is hashed again), never trusted.
type hashStore struct {
	dir string
	mu  sync.Mutex // serialises writes and the trimming of the folder
	// total is the folder's size as of its last listing plus what was
	// written since (other programs may write there too, so it is listed
	// again every relist writes); listed says it was listed once.
	total  int64
	writes int
	listed bool
}

// relist is how many entries are written between listings of the folder.
const relist = 64

// fileID is what identifies a file's content for the store: if any of it
// changed, the content may have.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
}

// Bounds of the store: files smaller than storeMin are cheap to hash again
// and are not stored; the folder holds at most storeMaxBytes of entries
// (each entry 32 bytes per 64 KiB chunk: 8 MiB for a 16 GiB file), the
// least recently written going first.
var (
	storeMin      int64 = 8 << 20
	storeMaxBytes int64 = 256 << 20
)

// Entries begin with storeMagic, or with prefixMagic for the hashes of a
// file's first chunks only (kept by a late-root send that was cut; the
// root field is zero), which an older program ignores.
const (
	storeMagic  = "p2plink-hashes 1\n"
	prefixMagic = "p2plink-hashes prefix 1\n"
)

// entryPath is where the entry for path under alg lives: one per path and
// hash, so that a changed file's new entry replaces its old one.
func (st *hashStore) entryPath(path string, alg hashAlg) string {
	h := sha256.Sum256([]byte("p2plink-hashes v1\x00" + path + "\x00" + alg.String()))
	return filepath.Join(st.dir, hex.EncodeToString(h[:16]))
}

// load returns the root and chunk hashes stored for path under alg, if
// the entry is whole and names the file's identity id.
func (st *hashStore) load(path string, alg hashAlg, id fileID) (root [hashLen]byte, sums [][hashLen]byte, ok bool) {
	return st.loadAs(storeMagic, path, alg, id)
}

// loadPrefix returns the hashes of the first chunks stored for path
// under alg by savePrefix, if the entry is whole and names the file's
// identity id.
func (st *hashStore) loadPrefix(path string, alg hashAlg, id fileID) (sums [][hashLen]byte, ok bool) {
	_, sums, ok = st.loadAs(prefixMagic, path, alg, id)
	return sums, ok && len(sums) > 0
}

func (st *hashStore) loadAs(magic, path string, alg hashAlg, id fileID) (root [hashLen]byte, sums [][hashLen]byte, ok bool) {
	b, err := os.ReadFile(st.entryPath(path, alg))
	if err != nil || len(b) < len(magic)+sha256.Size {
		return root, nil, false
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if s := sha256.Sum256(body); !bytes.Equal(s[:], sum) || !bytes.HasPrefix(body, []byte(magic)) {
		return root, nil, false
	}
	body = body[len(magic):]
	const fixed = 5*8 + 1 + hashLen + 4
	if len(body) < fixed {
		return root, nil, false
	}
	got := fileID{
		dev: binary.BigEndian.Uint64(body[0:]), ino: binary.BigEndian.Uint64(body[8:]),
		size: int64(binary.BigEndian.Uint64(body[16:])), mtime: int64(binary.BigEndian.Uint64(body[24:])),
		ctime: int64(binary.BigEndian.Uint64(body[32:])),
	}
	if got != id || hashAlg(body[40]) != alg {
		return root, nil, false
	}
	copy(root[:], body[41:])
	n := binary.BigEndian.Uint32(body[41+hashLen:])
	rest := body[fixed:]
	chunks := (id.size + ChunkSize - 1) / ChunkSize
	if int64(len(rest)) != int64(n)*hashLen || (magic == storeMagic && n > 0 && int64(n) != chunks) ||
		(magic == prefixMagic && int64(n) > chunks) {
		return root, nil, false
	}
	if n > 0 {
		sums = make([][hashLen]byte, n)
		for i := range sums {
			copy(sums[i][:], rest[i*hashLen:])
		}
	}
	return root, sums, true
}

// save stores root and sums (nil: not kept) for path under alg as the
// file's identity id, then trims the folder to its bound. Errors are
// ignored: the store only spares work.
func (st *hashStore) save(path string, alg hashAlg, id fileID, root [hashLen]byte, sums [][hashLen]byte) {
	st.saveAs(storeMagic, path, alg, id, root, sums)
}

// savePrefix stores the hashes of the first len(sums) chunks of path,
// unless the store holds as many or more for the same identity already: a
// send cut early after one cut late (a rerun to another receiver, or one
// whose partial data was gone) would otherwise leave a later resume fewer
// hashes than it had, and a whole entry is never replaced by a prefix.
func (st *hashStore) savePrefix(path string, alg hashAlg, id fileID, sums [][hashLen]byte) {
	if _, _, ok := st.load(path, alg, id); ok {
		return
	}
	if old, ok := st.loadPrefix(path, alg, id); ok && len(old) >= len(sums) {
		return
	}
	st.saveAs(prefixMagic, path, alg, id, [hashLen]byte{}, sums)
}

func (st *hashStore) saveAs(magic, path string, alg hashAlg, id fileID, root [hashLen]byte, sums [][hashLen]byte) {
	if id.size < storeMin {
		return
	}
	b := make([]byte, 0, len(magic)+5*8+1+hashLen+4+len(sums)*hashLen+sha256.Size)
	b = append(b, magic...)
	for _, v := range []uint64{id.dev, id.ino, uint64(id.size), uint64(id.mtime), uint64(id.ctime)} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	b = append(b, byte(alg))
	b = append(b, root[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(sums)))
	for i := range sums {
		b = append(b, sums[i][:]...)
	}
	s := sha256.Sum256(b)
	b = append(b, s[:]...)

	st.mu.Lock()
	defer st.mu.Unlock()
	if err := os.MkdirAll(st.dir, 0o700); err != nil {
		return
	}
	tmp, err := os.CreateTemp(st.dir, ".tmp-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), st.entryPath(path, alg)) != nil {
		os.Remove(tmp.Name())
		return
	}
	st.total += int64(len(b))
	st.writes++
	if !st.listed || st.total > storeMaxBytes || st.writes%relist == 0 {
		st.trimLocked()
	}
}

// drop removes the entries stored for path, under every hash.
func (st *hashStore) drop(path string) {
	for _, alg := range []hashAlg{hashSHA256, hashBLAKE3} {
		os.Remove(st.entryPath(path, alg))
	}
}

// trimLocked lists the folder and removes the least recently written
// entries (and temporary files a crash left behind) until it holds at most
// storeMaxBytes.
func (st *hashStore) trimLocked() {
	ents, err := os.ReadDir(st.dir)
	if err != nil {
		return
	}
	type kept struct {
		name  string
		size  int64
		mtime int64
	}
	var all []kept
	var total int64
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		all = append(all, kept{e.Name(), fi.Size(), fi.ModTime().UnixNano()})
		total += fi.Size()
	}
	st.listed = true
	defer func() { st.total = total }()
	if total <= storeMaxBytes {
		return
	}
	slices.SortFunc(all, func(a, b kept) int { return int(min(max(a.mtime-b.mtime, -1), 1)) })
	for _, k := range all {
		if total <= storeMaxBytes {
			return
		}
		if err := os.Remove(filepath.Join(st.dir, k.name)); err == nil || errors.Is(err, os.ErrNotExist) {
			total -= k.size
		}
	}
}
