package xfer

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/p2plink/p2plink/internal/printable"
)

// partFile is the file partial data is written to (an *os.File; tests wrap
// it to inject faults such as a full disk).
type partFile interface {
	io.Writer
	io.ReaderAt
	io.Seeker
	Truncate(size int64) error
	Sync() error
	Chmod(mode fs.FileMode) error
	Close() error
}

// partState is the small state file kept beside partial data.
type partState struct {
	Name  string `json:"name"`
	Size  int64  `json:"size"`
	Root  string `json:"root"` // hex; see fileRoot
	Chunk int    `json:"chunk"`
	Hash  string `json:"hash"` // hashAlg.String() of the root and the chunk hashes
	// Late-root files (root ""): the sender's modification time, which
	// with the name and size tells the version resumed.
	Mtime int64 `json:"mtime,omitempty"`
}

// state is the partState of f's partial data.
func (f *rfile) state(alg hashAlg) partState {
	st := partState{Name: f.Name, Size: f.Size, Root: hex.EncodeToString(f.Root[:]), Chunk: ChunkSize, Hash: alg.String()}
	if f.Late {
		st.Root, st.Mtime = "", f.Mtime
	}
	return st
}

// rfile is one manifest entry on the receiving side.
type rfile struct {
	entry
	res     *FileResult
	action  byte
	offset  int64     // offered offset
	prefix  *rootHash // root state over the offered prefix's chunks; nil if none
	started bool
	created bool // a folder this transfer made (only those get the sender's mode and time)
	// kept is the partial data verifyPartial read the offered prefix
	// from: a resume must continue that very file, or none.
	kept os.FileInfo
	// partID, if set, is the id of that partial data when it is not
	// partialID's (a late-root file's earlier modification time).
	partID string
	// For actCheck: the files here whose roots were offered. present:
	// the sender found its file the same as one of them (F at the size).
	checks  []check
	present bool
}

// check is a file of the receive folder whose root actCheck offers.
type check struct {
	name string
	root [hashLen]byte
}

// maxChecks bounds the files actCheck offers: one root in the reply's
// root field, the others in its reason field (at most maxReason bytes).
const maxChecks = 1 + maxReason/hashLen

// Receive receives files and folders from s into dir (created if needed) and
// returns what became of each. Receive closes s before it returns; cancelling
// ctx closes it at once.
//
// Nothing is ever written outside dir: unsafe names are refused (the result
// says why) and symbolic links in dir that lead outside it are not followed.
// Data is kept in dir/.p2plink-partial/ until the whole file is verified, then
// moved into place; an existing file of the same name is kept and the new one
// stored as "name (1).ext", unless opts.Overwrite is set. If the transfer is
// cut, the data that arrived intact stays in dir/.p2plink-partial/ and the
// next transfer of the same file resumes from it. A full disk ends the
// transfer with a *DiskFullError.
//
// Entries the sender leaves out (symbolic links, special files, names this
// side would refuse) come last in the result, as StatusSkipped with the
// sender's reason, when the sender tells them (both hellos list the
// feature; see SPEC.md). As for Send, they do not make the error non-nil:
// it is nil only if every file was stored or was already present.
func Receive(ctx context.Context, s Stream, dir string, opts ReceiveOptions) (Result, error) {
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	var res Result
	rc := &receiver{
		ctx: ctx, s: s, dir: dir, opts: opts, log: logger(opts.Logger), res: &res,
		w: newWriter(s, 64<<10),
		r: newReader(s),
	}
	// A receive folder that cannot be made or opened is told to the
	// sender, in place of our hello: it would otherwise see the stream
	// end with no reason.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, rc.fatal(fmt.Errorf("xfer: receive directory: %w", err))
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return res, rc.fatal(fmt.Errorf("xfer: receive directory: %w", err))
	}
	defer root.Close()
	rc.root = root
	err = rc.run()
	rc.closeCurrent()
	if rc.dec != nil {
		rc.dec.Close()
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return res, err
	}
	return res, failures(res.Files)
}

type receiver struct {
	ctx  context.Context
	s    Stream
	dir  string
	root *os.Root
	opts ReceiveOptions
	log  interface {
		Info(string, ...any)
		Warn(string, ...any)
	}
	res   *Result
	w     *writer
	r     *reader
	files []*rfile
	total int64
	done  int64
	kept  int64 // of done, not moved: resumed or present

	dec  *zstd.Decoder
	dbuf []byte
	buf  []byte // ChunkSize, for hashing files on disk

	// The file being received.
	cur    *rfile
	pos    int64
	synced int64 // writeback of rc.data was started up to here
	data   partFile
	sums   *os.File
	leaves *rootHash // root hash state over the chunks held so far
	id     string

	alg            hashAlg // agreed in the hellos
	senderFeatures byte    // listed in the sender's hello

	probed   map[string]error       // storable's answers, per name element
	partials map[string][]partEntry // partialIndex, once read
}

// hashes lists the hashes this side accepts, preferred first.
func (rc *receiver) hashes() []hashAlg {
	if rc.opts.hashes != nil {
		return rc.opts.hashes
	}
	return localHashes()
}

// fatal tells the sender why the transfer stops, and returns err. What the
// sender still writes is read and dropped meanwhile, so that a sender blocked
// writing cannot block us; the stream is closed afterwards.
func (rc *receiver) fatal(err error) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, rc.r.br)
	}()
	if rc.w.fatal(rc.forPeer(err)) == nil {
		rc.w.flush()
	}
	rc.s.CloseWrite()
	rc.s.Close()
	<-done
	return err
}

// forPeer is err's text as the sender is told it: where the receive
// folder lies on this machine is not the sender's business (a share
// server's folders), so it is written as "the receive folder".
func (rc *receiver) forPeer(err error) string {
	msg := err.Error()
	if abs, aerr := filepath.Abs(rc.dir); aerr == nil && len(abs) > 1 {
		msg = strings.ReplaceAll(msg, abs, "(the receive folder)")
	}
	return msg
}

func (rc *receiver) run() error {
	// Our hello is written while the sender's is read, so that neither
	// side blocks the other on a stream without buffering.
	hello := make(chan error, 1)
	go func() {
		features := featLateRoots | featNotSent
		if rc.opts.noLateRoots {
			features &^= featLateRoots
		}
		if rc.opts.noNotSent {
			features &^= featNotSent
		}
		err := rc.w.hello(roleReceiver, rc.hashes(), features)
		if err == nil {
			err = rc.w.flush()
		}
		hello <- err
	}()
	typ, p, err := rc.r.next()
	if err != nil {
		rc.s.Close()
		<-hello
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("xfer: the sender closed the stream before the transfer began: %w", io.ErrUnexpectedEOF)
		}
		return readErr("reading the sender's hello", err)
	}
	if err := <-hello; err != nil {
		return streamErr(rc.ctx, "sending hello", err)
	}
	if typ != msgHello {
		return rc.fatal(protoErrorf("expected hello, got message %q", typ))
	}
	h, err := parseHello(p)
	if err != nil {
		return rc.fatal(err)
	}
	alg, err := agree(h, roleSender, rc.hashes())
	if err != nil {
		return rc.fatal(err)
	}
	rc.alg, rc.res.Hash = alg, alg.String()
	rc.senderFeatures = h.features
	if err := rc.readManifest(); err != nil {
		return rc.fatal(err)
	}
	if err := rc.reply(); err != nil {
		return err
	}
	return rc.receive()
}

// maxManifestNames bounds the bytes of the names of one manifest, with
// the names and reasons of the entries the sender leaves out.
var maxManifestNames = 64 << 20

func (rc *receiver) readManifest() error {
	maxEntries := rc.opts.MaxEntries
	if maxEntries <= 0 {
		maxEntries = 1_000_000
	}
	seen := map[string]bool{}
	nameBytes := 0
	// What the sender leaves out goes after the entries in the result,
	// whose first len(rc.files) entries are theirs.
	var notSent []FileResult
	for {
		typ, p, err := rc.r.next()
		if err != nil {
			return readErr("reading the manifest", err)
		}
		switch typ {
		case msgEntry:
		case msgManifest:
			count, total, err := parseManifestEnd(p)
			if err != nil {
				return err
			}
			if int(count) != len(rc.files) || total != rc.total {
				return protoErrorf("manifest says %d entries and %d bytes, but has %d and %d", count, total, len(rc.files), rc.total)
			}
			rc.res.Files = append(rc.res.Files, notSent...)
			return nil
		case msgNotSent:
			if rc.opts.noNotSent || rc.senderFeatures&featNotSent == 0 {
				return protoErrorf("a note of an entry not sent, though the two hellos did not both list those")
			}
		case msgError:
			return fmt.Errorf("%w: %s", ErrPeer, printable.String(string(p)))
		default:
			return protoErrorf("unexpected message %q in the manifest", typ)
		}
		if len(rc.files)+len(notSent) >= maxEntries {
			return fmt.Errorf("xfer: more than %d files and folders in one transfer; refused (send fewer at once, or a tar of them through pipe)", maxEntries)
		}
		if typ == msgNotSent {
			// Held until the end like the entries, and bounded with them.
			name, reason, err := parseNotSent(p)
			if err != nil {
				return err
			}
			if nameBytes += len(name) + len(reason); nameBytes > maxManifestNames {
				return fmt.Errorf("xfer: the names of the files and folders of one transfer take more than %d MiB; refused (send fewer at once, or a tar of them through pipe)", maxManifestNames>>20)
			}
			notSent = append(notSent, FileResult{Name: name, Status: StatusSkipped, Err: notSentError(reason)})
			continue
		}
		e, err := parseEntry(p)
		if err != nil {
			return err
		}
		if e.Late && (rc.opts.noLateRoots || rc.senderFeatures&featLateRoots == 0) {
			return protoErrorf("%q comes without its root, though the two hellos did not both list late roots", e.Name)
		}
		// The manifest is held whole before the replies: its names are
		// bounded too (a peer's million names of 4 KB each would take
		// gigabytes).
		if nameBytes += len(e.Name); nameBytes > maxManifestNames {
			return fmt.Errorf("xfer: the names of the files and folders of one transfer take more than %d MiB; refused (send fewer at once, or a tar of them through pipe)", maxManifestNames>>20)
		}
		if seen[e.Name] {
			return protoErrorf("%q twice in the manifest", e.Name)
		}
		seen[e.Name] = true
		rc.total += e.Size
		if rc.total < 0 || rc.total > 1<<62 {
			return protoErrorf("manifest total overflows")
		}
		rc.res.Files = append(rc.res.Files, FileResult{Name: e.Name, Dir: e.Kind == kindDir, Size: e.Size})
		rc.files = append(rc.files, &rfile{entry: e})
	}
}

// notSentError is the error of an entry the sender left out, for the
// reason it gave: shown as it came, escaped.
func notSentError(reason string) error {
	if reason == "" {
		return errors.New("xfer: not sent (the sender gave no reason)")
	}
	return errors.New(printable.String(reason))
}

// reply decides, for every entry, what the receiver needs, and tells the sender.
func (rc *receiver) reply() error {
	room, roomKnown := freeBytes(rc.dir)
	for i, f := range rc.files {
		f.res = &rc.res.Files[i]
		r := reply{Index: uint32(i), Action: actSend}
		err := rc.plan(f, &r)
		if err == nil && roomKnown && f.Kind == kindFile && r.Action == actSend {
			// A file the disk cannot hold, beside those accepted before
			// it, is refused now: found only when its data came, it would
			// end the whole transfer, and the files after it with it.
			need := f.Size - int64(r.Offset)
			if need > room {
				err = &DiskFullError{Name: f.Name, Kept: int64(r.Offset), Size: f.Size, Needed: need, Free: max(room, 0), Err: syscall.ENOSPC}
			} else {
				room -= need
			}
		}
		if err != nil {
			r.Action, r.Reason = actRefuse, err.Error()
			f.res.Status, f.res.Err = StatusFailed, err
			rc.log.Warn("xfer: refused", "name", f.Name, "reason", err)
		}
		f.action = r.Action
		if r.Action == actCheck {
			f.offset = f.Size
		}
		if r.Action == actPresent {
			rc.done += f.Size
			rc.kept += f.Size
		}
		if err := rc.w.reply(&r); err != nil {
			return streamErr(rc.ctx, "sending replies", err)
		}
	}
	if err := rc.w.flush(); err != nil {
		return streamErr(rc.ctx, "sending replies", err)
	}
	return nil
}

func (rc *receiver) plan(f *rfile, r *reply) error {
	if err := checkName(f.Name); err != nil {
		return err
	}
	if err := rc.storable(f.Name); err != nil {
		return err
	}
	if f.Kind == kindDir {
		_, err := rc.root.Lstat(f.Name)
		f.created = errors.Is(err, fs.ErrNotExist)
		if err := rc.root.MkdirAll(f.Name, 0o755); err != nil {
			return fmt.Errorf("xfer: creating folder %q: %w", f.Name, err)
		}
		f.res.Status, f.res.Path = StatusDone, f.Name
		return nil
	}
	// The folder it goes in must be a folder inside the receive directory
	// (a symbolic link that leads outside is refused here, and again by
	// os.Root when the file is stored).
	if parent := path.Dir(f.Name); parent != "." {
		fi, err := rc.root.Stat(parent)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("%w %q: %v", ErrUnsafeName, f.Name, err)
		case !fi.IsDir():
			return fmt.Errorf("xfer: %q: %s is not a folder here", f.Name, parent)
		}
	}
	if f.Late {
		return rc.planLate(f, r)
	}
	// An identical file already there (under its name or a numbered one)?
	rc.sameSize(f, func(name string, root [hashLen]byte) bool {
		if root != f.Root {
			return true
		}
		r.Action = actPresent
		f.res.Status, f.res.Path, f.res.Stored = StatusPresent, name, name
		return false
	})
	if r.Action == actPresent {
		return nil
	}
	r.Offset = rc.verifyPartial(f, &r.Root)
	f.offset = r.Offset
	return nil
}

// riskyElement reports whether a name element holds what some file
// systems refuse or change: FAT and exFAT (a USB stick, an SD card) refuse
// " * : < > ? | and drop a trailing dot or space, and so do SMB shares.
func riskyElement(c string) bool {
	return strings.ContainsAny(c, `"*:<>?|`) || strings.HasSuffix(c, ".") || strings.HasSuffix(c, " ")
}

// storable reports, before any data comes, whether the receive folder's
// file system takes the name as it is. The file systems that refuse or
// change names (FAT, exFAT, SMB) do so for a character or a trailing dot
// or space wherever it stands, so each such feature of an element is tried
// once per transfer, in a stand-in name (at most nine tries, whatever the
// manifest holds), as a file in a folder of its own under the partial
// data's. A name refused would otherwise fail only once its data arrived.
func (rc *receiver) storable(name string) error {
	for _, c := range strings.Split(name, "/") {
		if !riskyElement(c) {
			continue
		}
		var err error
		for _, stand := range standIns(c) {
			if rc.probed == nil {
				rc.probed = map[string]error{}
			}
			e, ok := rc.probed[stand]
			if !ok {
				e = rc.probeName(stand)
				rc.probed[stand] = e
			}
			if e != nil {
				err = e
				break
			}
		}
		if err != nil {
			return fmt.Errorf("xfer: %q cannot be stored in %s: its file system %s the name %q (FAT and exFAT, on USB sticks and SD cards, refuse \" * : < > ? | in names and drop a trailing dot or space); rename it on the sender, or receive onto another file system",
				name, rc.dir, err, c)
		}
	}
	return nil
}

// standIns returns a stand-in name for each feature of c that a file
// system may refuse or change: each of " * : < > ? | it holds, and a
// trailing dot or space.
func standIns(c string) []string {
	var s []string
	for _, r := range `"*:<>?|` {
		if strings.ContainsRune(c, r) {
			s = append(s, "p2plink-probe"+string(r)+"x")
		}
	}
	if strings.HasSuffix(c, ".") {
		s = append(s, "p2plink-probe.")
	}
	if strings.HasSuffix(c, " ") {
		s = append(s, "p2plink-probe ")
	}
	return s
}

// probeName tries the name element c in the receive folder's file system,
// and returns nil if a file so named keeps exactly that name, or what
// the file system does with it ("refuses", "changes").
func (rc *receiver) probeName(c string) error {
	if rc.opts.hookName != nil {
		return rc.opts.hookName(c)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	dir := partialDir + "/probe-" + hex.EncodeToString(rnd[:])
	if err := rc.root.MkdirAll(dir, 0o700); err != nil {
		return nil // no room to try: the name meets the file system when stored
	}
	defer func() {
		if d, err := rc.root.Open(dir); err == nil {
			names, _ := d.Readdirnames(-1)
			d.Close()
			for _, n := range names {
				rc.root.Remove(dir + "/" + n)
			}
		}
		rc.root.Remove(dir)
		rc.root.Remove(partialDir) // only if empty
	}()
	f, err := rc.root.OpenFile(dir+"/"+c, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		// EINVAL (vfat, the kernel's exfat), ENOENT in the folder just
		// made (exfat-fuse), EILSEQ: the name. Anything else (no room,
		// no descriptor left, a network file system's trouble) is not
		// its fault, and is met when the file is stored.
		if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.EILSEQ) {
			return errors.New("refuses")
		}
		return nil
	}
	f.Close()
	d, err := rc.root.Open(dir)
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	if len(names) != 1 || names[0] != c {
		return errors.New("changes")
	}
	return nil
}

// verifyOtherVersion offers, for a late-root file, the partial data kept
// for the same name and size under another modification time (the file
// was touched, or copied again, since the transfer that was cut): the
// sender checks the prefix's root against its file as it is now, and
// sends from 0 if they differ. It returns the offset offered, and leaves
// the data's id in f.partID.
//
// Its own id comes first (its state may name another time: a transfer of
// the touched file resumed into it and was cut too), and data another
// transfer holds is passed over: that one may still be writing it.
func (rc *receiver) verifyOtherVersion(f *rfile, root *[hashLen]byte) int64 {
	want := f.state(rc.alg)
	same := func(st partState) bool {
		st.Mtime = want.Mtime
		return st.Root == "" && st == want
	}
	own := partialID(&f.entry, rc.alg)
	ids := []string{own}
	for _, p := range rc.partialIndex()[f.Name] {
		if p.id != own && same(p.st) {
			ids = append(ids, p.id)
		}
	}
	for _, id := range ids {
		if rc.partialBusy(id) {
			continue
		}
		if off := rc.verifyPartialID(f, id, same, root); off > 0 {
			if id != own {
				f.partID = id
			}
			return off
		}
	}
	return 0
}

// partialScans counts the readings of the partial data's folder; tests
// watch it.
var partialScans atomic.Int64

// partEntry is partial data kept in the receive folder.
type partEntry struct {
	id string
	st partState
}

// partialIndex lists the partial data kept in the receive folder by the
// name it is for, read once per transfer (and so bounded by the folder,
// not by the folder times the manifest). It is read while the replies
// are planned, before this transfer writes any: what changes later is
// met by openPartial's checks under the lock, and dropOtherPartials
// passes over data another transfer holds.
func (rc *receiver) partialIndex() map[string][]partEntry {
	if rc.partials != nil {
		return rc.partials
	}
	rc.partials = map[string][]partEntry{}
	partialScans.Add(1)
	d, err := rc.root.Open(partialDir)
	if err != nil {
		return rc.partials
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, n := range names {
		id, ok := strings.CutSuffix(n, ".json")
		if !ok {
			continue
		}
		if st, ok := rc.readState(id); ok {
			rc.partials[st.Name] = append(rc.partials[st.Name], partEntry{id, st})
		}
	}
	return rc.partials
}

// readState reads the state of the partial data kept under id: a regular
// file of at most 64 KiB (a FIFO or a huge file planted there is passed
// over, not waited for or read whole).
func (rc *receiver) readState(id string) (partState, bool) {
	var st partState
	fi, err := rc.root.Lstat(partPath(id, ".json"))
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > 64<<10 {
		return st, false
	}
	b, err := rc.root.ReadFile(partPath(id, ".json"))
	if err != nil || len(b) > 64<<10 || json.Unmarshal(b, &st) != nil {
		return st, false
	}
	return st, true
}

// partialBusy reports whether another transfer holds the partial data
// kept under id (its lock is taken and let go at once if not).
func (rc *receiver) partialBusy(id string) bool {
	data, err := rc.root.OpenFile(partPath(id, ".part"), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer data.Close()
	return lockPartial(data) != nil
}

// planLate plans a file whose root comes with its end: a resume from
// partial data kept for the same name, size and modification time, else,
// if a file of that name and size is here (under its name or a numbered
// one), the root of the first such to check against the sender's.
func (rc *receiver) planLate(f *rfile, r *reply) error {
	r.Offset = rc.verifyPartial(f, &r.Root)
	if r.Offset == 0 {
		r.Offset = rc.verifyOtherVersion(f, &r.Root)
	}
	f.offset = r.Offset
	if r.Offset > 0 {
		return nil
	}
	rc.sameSize(f, func(name string, root [hashLen]byte) bool {
		f.checks = append(f.checks, check{name, root})
		return len(f.checks) < maxChecks
	})
	if len(f.checks) > 0 {
		r.Action, r.Offset, r.Root = actCheck, f.Size, f.checks[0].root
		var more []byte
		for _, c := range f.checks[1:] {
			more = append(more, c.root[:]...)
		}
		r.Reason = string(more)
	}
	return nil
}

// sameSize calls found with the name and root of each regular file here
// of f's size under f's name or a numbered one ("name (1).ext", …, in
// order, up to the first name not taken, and only the name itself with
// the overwrite option), until found returns false.
func (rc *receiver) sameSize(f *rfile, found func(name string, root [hashLen]byte) bool) {
	for n := 0; n < 100; n++ {
		name := f.Name
		if n > 0 {
			name = numbered(f.Name, n)
		}
		fi, err := rc.root.Lstat(name)
		if err != nil {
			return
		}
		if fi.Mode().IsRegular() && fi.Size() == f.Size {
			if root, ok := rc.rootOf(name, f.Size); ok && !found(name, root) {
				return
			}
		}
		if rc.opts.Overwrite {
			return
		}
	}
}

// rootOf returns the root of the file name, if it holds size bytes.
func (rc *receiver) rootOf(name string, size int64) ([hashLen]byte, bool) {
	file, err := rc.root.Open(name)
	if err != nil {
		return [hashLen]byte{}, false
	}
	defer file.Close()
	root, n, err := fileRoot(rc.alg, file, rc.chunkBuf())
	return root, err == nil && n == size
}

// chunkBuf returns a buffer of ChunkSize bytes, reused.
func (rc *receiver) chunkBuf() []byte {
	if rc.buf == nil {
		rc.buf = make([]byte, ChunkSize)
	}
	return rc.buf
}

func partialID(e *entry, alg hashAlg) string {
	h := sha256.New()
	if e.Late {
		fmt.Fprintf(h, "p2plink-xfer partial v3 late\x00%s\x00%d\x00%s\x00%d", e.Name, e.Size, alg, e.Mtime)
	} else {
		fmt.Fprintf(h, "p2plink-xfer partial v3\x00%s\x00%d\x00%s\x00%x", e.Name, e.Size, alg, e.Root)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func partPath(id, ext string) string { return partialDir + "/" + id + ext }

// verifyPartial returns how much of f is held intact in partial data: the
// longest prefix of whole chunks whose data matches the chunk hashes recorded
// when they arrived. It fills root with the root hash over those chunks and
// leaves f.prefix holding the same state, to continue from.
func (rc *receiver) verifyPartial(f *rfile, root *[hashLen]byte) int64 {
	want := f.state(rc.alg)
	return rc.verifyPartialID(f, partialID(&f.entry, rc.alg), func(st partState) bool { return st == want }, root)
}

// verifyPartialID is verifyPartial for the partial data kept under id,
// whose state ok must accept.
func (rc *receiver) verifyPartialID(f *rfile, id string, ok func(partState) bool, root *[hashLen]byte) int64 {
	st, found := rc.readState(id)
	if !found || !ok(st) {
		return 0
	}
	data, err := rc.root.Open(partPath(id, ".part"))
	if err != nil {
		return 0
	}
	defer data.Close()
	kept, err := data.Stat()
	if err != nil {
		return 0
	}
	sums, err := rc.root.Open(partPath(id, ".sums"))
	if err != nil {
		return 0
	}
	defer sums.Close()
	sr := bufio.NewReader(sums)
	buf := rc.chunkBuf()
	rh := newRootHash(rc.alg)
	var want [hashLen]byte
	var pos int64
	for pos < f.Size {
		n := min(int64(ChunkSize), f.Size-pos)
		if _, err := io.ReadFull(sr, want[:]); err != nil {
			break
		}
		if _, err := data.ReadAt(buf[:n], pos); err != nil {
			break
		}
		if rc.alg.sum(buf[:n]) != want {
			break
		}
		rh.addSum(&want)
		pos += n
	}
	*root = rh.root()
	if pos > 0 {
		f.prefix, f.kept = rh, kept // kept only for files that resume
	}
	return pos
}

func (rc *receiver) receive() error {
	for {
		if err := rc.ctx.Err(); err != nil {
			return err
		}
		typ, p, err := rc.r.next()
		if err != nil {
			if errors.Is(err, ErrProtocol) {
				return rc.fatal(err)
			}
			if rc.ctx.Err() != nil {
				return rc.ctx.Err()
			}
			return rc.cut(err)
		}
		switch typ {
		case msgFile:
			err = rc.startFile(p)
		case msgData:
			err = rc.chunk(p)
		case msgEnd, msgAbort:
			err = rc.endFile(typ, p)
		case msgDone:
			if rc.cur != nil {
				return rc.fatal(protoErrorf("end of transfer inside file %q", rc.cur.Name))
			}
			for _, f := range rc.files {
				if (f.action == actSend || f.action == actCheck) && f.Kind == kindFile && !f.started {
					f.res.Status, f.res.Err = StatusFailed, fmt.Errorf("xfer: %q was announced but not sent", f.Name)
				}
			}
			if err := rc.w.msg(msgDone); err != nil {
				return streamErr(rc.ctx, "confirming the end", err)
			}
			if err := rc.w.flush(); err != nil {
				return streamErr(rc.ctx, "confirming the end", err)
			}
			rc.s.CloseWrite()
			rc.finishDirs()
			return nil
		case msgError:
			return fmt.Errorf("%w: %s", ErrPeer, printable.String(string(p)))
		default:
			err = protoErrorf("unexpected message %q", typ)
		}
		if err != nil {
			return err
		}
	}
}

// cut reports a stream that ended before the transfer did.
func (rc *receiver) cut(err error) error {
	if rc.cur != nil {
		kept := rc.pos
		rc.closeCurrent()
		return fmt.Errorf("xfer: the stream ended while receiving %q (%d of %d bytes kept in %s); rerun the transfer to resume: %w",
			rc.cur.Name, kept, rc.cur.Size, filepath.Join(rc.dir, partialDir), err)
	}
	return fmt.Errorf("xfer: the stream ended before the transfer was complete; rerun it to resume: %w", err)
}

func (rc *receiver) startFile(p []byte) error {
	idx, off, err := parseFile(p)
	if err != nil {
		return rc.fatal(err)
	}
	if rc.cur != nil {
		return rc.fatal(protoErrorf("file %d started inside file %q", idx, rc.cur.Name))
	}
	if int(idx) >= len(rc.files) {
		return rc.fatal(protoErrorf("file %d of %d", idx, len(rc.files)))
	}
	f := rc.files[idx]
	if f.Kind != kindFile || (f.action != actSend && f.action != actCheck) || f.started {
		return rc.fatal(protoErrorf("file %q sent though not asked for", f.Name))
	}
	if off != 0 && off != f.offset {
		return rc.fatal(protoErrorf("file %q sent from offset %d; %d was asked for", f.Name, off, f.offset))
	}
	f.started = true
	if f.action == actCheck && off == f.Size {
		// The sender says its file is the one here: its end brings the
		// root, which must be the one offered; nothing is written.
		f.present = true
		rc.cur, rc.pos, rc.id = f, off, ""
		return nil
	}
	rh := f.prefix
	if off == 0 || rh == nil {
		rh = newRootHash(rc.alg) // nothing kept, or the sender did not accept it
	}
	f.prefix = nil
	f.res.Resumed = off
	rc.res.Resumed += off
	f.offset = off
	id := partialID(&f.entry, rc.alg)
	if off > 0 && f.partID != "" {
		id = f.partID // the data of the earlier modification time, checked by the sender
	}
	rc.cur, rc.pos, rc.synced, rc.leaves, rc.id = f, off, off, rh, id
	if err := rc.openPartial(f, off); err != nil {
		rc.closeCurrent()
		return rc.fatal(err)
	}
	rc.done += off
	rc.kept += off
	if rc.opts.Progress != nil {
		rc.opts.Progress(Progress{Name: f.Name, FileDone: off, FileSize: f.Size, Done: rc.done, Total: rc.total, Kept: rc.kept})
	}
	return nil
}

func (rc *receiver) openPartial(f *rfile, off int64) error {
	if err := rc.root.MkdirAll(partialDir, 0o700); err != nil {
		return rc.diskErr(fmt.Errorf("xfer: creating %s: %w", filepath.Join(rc.dir, partialDir), err))
	}
	flags := os.O_RDWR | os.O_CREATE
	if off > 0 {
		flags = os.O_RDWR // a resume continues the data it checked, never a new file
	}
	data, err := rc.root.OpenFile(partPath(rc.id, ".part"), flags, 0o600)
	if off > 0 && errors.Is(err, fs.ErrNotExist) {
		return partialChanged(f)
	}
	if err != nil {
		return rc.diskErr(fmt.Errorf("xfer: %w", err))
	}
	// Nothing of the partial data is touched before it is ours.
	if err := lockPartial(data); err != nil {
		data.Close()
		return fmt.Errorf("xfer: %q: %w; rerun once that one has ended (it resumes from what arrived)", f.Name, err)
	}
	// Locked, it must still be what the name leads to (another transfer
	// may have stored it, so that it is now the stored file, and removed
	// the name), and for a resume the very data whose prefix was checked,
	// still holding it.
	held, herr := data.Stat()
	named, nerr := rc.root.Stat(partPath(rc.id, ".part"))
	if herr != nil || nerr != nil || !os.SameFile(held, named) ||
		(off > 0 && (f.kept == nil || !os.SameFile(held, f.kept) || held.Size() < off)) {
		data.Close()
		return partialChanged(f)
	}
	if off > 0 && !rc.sumsStill(off) {
		data.Close()
		return partialChanged(f)
	}
	rc.data = data
	if rc.opts.hookFile != nil {
		rc.data = rc.opts.hookFile(data)
	}
	st, _ := json.Marshal(f.state(rc.alg))
	if err := rc.root.WriteFile(partPath(rc.id, ".json"), st, 0o600); err != nil {
		return rc.diskErr(fmt.Errorf("xfer: writing the state of %q: %w", f.Name, err))
	}
	if err := rc.data.Truncate(off); err != nil {
		return rc.diskErr(fmt.Errorf("xfer: %w", err))
	}
	if _, err := rc.data.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("xfer: %w", err)
	}
	rc.sums, err = rc.root.OpenFile(partPath(rc.id, ".sums"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return rc.diskErr(fmt.Errorf("xfer: %w", err))
	}
	nsums := (off + ChunkSize - 1) / ChunkSize * hashLen
	if err := rc.sums.Truncate(nsums); err != nil {
		return rc.diskErr(fmt.Errorf("xfer: %w", err))
	}
	if _, err := rc.sums.Seek(nsums, io.SeekStart); err != nil {
		return fmt.Errorf("xfer: %w", err)
	}
	if err := reserveSpace(rc.data, off, f.Size-off); err != nil {
		if errors.Is(err, syscall.EFBIG) {
			return fmt.Errorf("xfer: %q has %d bytes, more than a file on this file system can hold (FAT32 holds under 4 GiB): receive it onto another file system (%w)", f.Name, f.Size, err)
		}
		err = rc.diskErr(fmt.Errorf("xfer: reserving room for %q: %w", f.Name, err))
		var de *DiskFullError
		if errors.As(err, &de) {
			de.Needed = f.Size - off
		}
		return err
	}
	return nil
}

// diskErr turns a failure to write into a *DiskFullError when the disk is
// full (or the user's quota is), keeping what arrived intact.
func (rc *receiver) diskErr(err error) error {
	if !(errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) || rc.cur == nil {
		return err
	}
	return &DiskFullError{Name: rc.cur.Name, Kept: rc.pos, Size: rc.cur.Size,
		PartialPath: filepath.Join(rc.dir, filepath.FromSlash(partPath(rc.id, ".part"))), Err: err}
}

// writebackStep is how much of a file is received between requests to
// write it to disk (startWriteback): the disk works while data arrives.
const writebackStep = 8 << 20

// writeback is startWriteback; tests watch it.
var writeback = startWriteback

func (rc *receiver) chunk(p []byte) error {
	f := rc.cur
	if f == nil {
		return rc.fatal(protoErrorf("data outside a file"))
	}
	if f.present {
		return rc.fatal(protoErrorf("data for %q, which the sender found already here", f.Name))
	}
	flags, data, err := parseData(p)
	if err != nil {
		return rc.fail(err)
	}
	if flags&flagZstd != 0 {
		if rc.dec == nil {
			rc.dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(ChunkSize), zstd.WithDecoderMaxWindow(1<<20))
			if err != nil {
				return rc.fatal(err)
			}
			rc.dbuf = make([]byte, 0, ChunkSize)
		}
		out, err := rc.dec.DecodeAll(data, rc.dbuf[:0])
		if err != nil {
			return rc.fail(protoErrorf("chunk of %q does not decompress: %v", f.Name, err))
		}
		if cap(out) <= cap(rc.dbuf) {
			rc.dbuf = out[:0]
		}
		data = out
	}
	n := int64(len(data))
	switch {
	case n > ChunkSize || n == 0:
		return rc.fail(protoErrorf("chunk of %d bytes in %q", n, f.Name))
	case rc.pos+n > f.Size:
		return rc.fail(protoErrorf("more data than the %d bytes announced for %q", f.Size, f.Name))
	case rc.pos+n < f.Size && n != ChunkSize:
		return rc.fail(protoErrorf("short chunk of %d bytes inside %q", n, f.Name))
	}
	// The one hash of this chunk: a leaf of the root checked at the end,
	// and the record that lets a later run resume after it.
	sum := rc.leaves.add(data)
	if _, err := rc.data.Write(data); err != nil {
		return rc.fatal(rc.writeFailed(err))
	}
	if _, err := rc.sums.Write(sum[:]); err != nil {
		return rc.fatal(rc.writeFailed(err))
	}
	rc.pos += n
	if rc.pos-rc.synced >= writebackStep {
		writeback(rc.data, rc.synced, rc.pos-rc.synced)
		rc.synced = rc.pos
	}
	rc.done += n
	f.res.Sent += n
	rc.res.Bytes += n
	rc.res.WireBytes += int64(len(p) - 1)
	if rc.opts.Progress != nil {
		rc.opts.Progress(Progress{Name: f.Name, FileDone: rc.pos, FileSize: f.Size, Done: rc.done, Total: rc.total, Kept: rc.kept})
	}
	return nil
}

// writeFailed keeps the intact prefix (whole chunks) after a failed write.
func (rc *receiver) writeFailed(err error) error {
	rc.data.Truncate(rc.pos)
	rc.data.Sync()
	rc.sums.Truncate((rc.pos + ChunkSize - 1) / ChunkSize * hashLen)
	rc.sums.Sync()
	err = fmt.Errorf("xfer: writing %q: %w", rc.cur.Name, err)
	if de := rc.diskErr(err); de != err {
		f := rc.cur
		f.res.Status, f.res.Err = StatusFailed, de
		return de
	}
	f := rc.cur
	err = fmt.Errorf("%w; %d bytes kept in %s, rerun to resume", err, rc.pos, filepath.Join(rc.dir, partialDir))
	f.res.Status, f.res.Err = StatusFailed, err
	return err
}

// partialChanged is the error for partial data that another transfer of
// the same file stored or replaced between this transfer's plan and its
// start.
func partialChanged(f *rfile) error {
	return fmt.Errorf("xfer: %q: its partial data changed as this transfer started (another transfer of the same file ended meanwhile); run the same command again", f.Name)
}

// fail ends the transfer because the sender lied about the current file:
// its partial data is discarded.
func (rc *receiver) fail(err error) error {
	f := rc.cur
	f.res.Status, f.res.Err = StatusFailed, err
	rc.discard()
	return rc.fatal(err)
}

// closeCurrent closes the current file's partial data, keeping it.
func (rc *receiver) closeCurrent() {
	if rc.data != nil {
		if rc.cur != nil && rc.pos < rc.cur.Size {
			// Give back the room reserved for the rest (reserveSpace):
			// a file left partial holds only what arrived, and a refused
			// one leaves the disk as it found it.
			rc.data.Truncate(rc.pos)
		}
		rc.data.Sync()
		rc.data.Close()
		rc.data = nil
	}
	if rc.sums != nil {
		rc.sums.Close()
		rc.sums = nil
	}
}

// discard removes the current file's partial data.
func (rc *receiver) discard() {
	rc.closeCurrent()
	if rc.id == "" {
		rc.cur = nil
		return
	}
	for _, ext := range []string{".part", ".sums", ".json"} {
		rc.root.Remove(partPath(rc.id, ext))
	}
	rc.root.Remove(partialDir) // only if empty
	rc.cur = nil
}

func (rc *receiver) endFile(typ byte, p []byte) error {
	idx, code, reason, err := parseIndexReason(p)
	if err != nil {
		return rc.fatal(err)
	}
	f := rc.cur
	if f == nil && typ == msgAbort && int(idx) < len(rc.files) {
		// The sender gave up on a file before starting it.
		g := rc.files[idx]
		if g.Kind == kindFile && (g.action == actSend || g.action == actCheck) && !g.started {
			g.started = true
			err := fmt.Errorf("%w: sender: %s", ErrPeer, printable.String(reason))
			if code == resChanged {
				err = fmt.Errorf("sender: %s (%w)", printable.String(reason), ErrChanged)
			}
			g.res.Status, g.res.Err = StatusFailed, err
			if err := rc.w.indexReason(msgResult, idx, code, err.Error()); err != nil {
				return streamErr(rc.ctx, "sending a result", err)
			}
			if err := rc.w.flush(); err != nil {
				return streamErr(rc.ctx, "sending a result", err)
			}
			return nil
		}
	}
	if f == nil || int(idx) >= len(rc.files) || rc.files[idx] != f {
		return rc.fatal(protoErrorf("end of file %d, which was not being sent", idx))
	}
	if typ == msgEnd {
		// For a late root, the root comes with the end: the sender's hash
		// of what it read as it sent the file; otherwise nothing does.
		switch {
		case code != 0:
			return rc.fail(protoErrorf("end of %q with code %d", f.Name, code))
		case f.Late && len(reason) != hashLen:
			return rc.fail(protoErrorf("end of %q with %d bytes for its root", f.Name, len(reason)))
		case !f.Late && len(reason) != 0:
			return rc.fail(protoErrorf("end of %q with %d bytes after it", f.Name, len(reason)))
		}
		copy(f.Root[:], reason)
	}
	if f.present {
		rc.cur = nil
		same := ""
		for _, c := range f.checks {
			if c.root == f.Root {
				same = c.name
				break
			}
		}
		if typ == msgEnd && same == "" {
			f.res.Status, f.res.Err = StatusFailed, protoErrorf("the sender called %q the same as a file here, but gave another root", f.Name)
			return rc.fatal(f.res.Err)
		}
		var reason string
		if typ == msgEnd {
			code = resOK
			f.res.Status, f.res.Path, f.res.Stored = StatusPresent, same, same
			rc.done += f.Size
			rc.kept += f.Size
			reason = same
		} else {
			err := fmt.Errorf("%w: sender: %s", ErrPeer, printable.String(reason))
			if code == resChanged {
				err = fmt.Errorf("sender: %s (%w)", printable.String(reason), ErrChanged)
			}
			f.res.Status, f.res.Err = StatusFailed, err
			reason = err.Error()
		}
		if err := rc.w.indexReason(msgResult, idx, code, reason); err != nil {
			return streamErr(rc.ctx, "sending a result", err)
		}
		if err := rc.w.flush(); err != nil {
			return streamErr(rc.ctx, "sending a result", err)
		}
		return nil
	}
	var ferr error
	switch {
	case typ == msgAbort:
		ferr = fmt.Errorf("%w: sender: %s", ErrPeer, printable.String(reason))
		if code == resChanged {
			ferr = fmt.Errorf("sender: %s (%w)", printable.String(reason), ErrChanged)
		}
	case rc.pos != f.Size:
		return rc.fail(protoErrorf("%q ended after %d of the %d bytes announced", f.Name, rc.pos, f.Size))
	case rc.leaves.root() != f.Root:
		ferr = fmt.Errorf("%w: the content of %q differs from the sender's manifest (most likely the file changed on the sender while it was sent); nothing stored, send it again",
			ErrVerify, f.Name)
		code = resVerify
	default:
		ferr = rc.commit(f)
		code = resOK
		if ferr != nil {
			code = resOther
			var de *DiskFullError
			if errors.As(ferr, &de) {
				f.res.Status, f.res.Err = StatusFailed, ferr
				return rc.fatal(ferr)
			}
		}
	}
	if ferr != nil {
		if typ == msgAbort || code == resVerify {
			rc.discard()
		} else {
			rc.closeCurrent()
		}
		f.res.Status, f.res.Err = StatusFailed, ferr
		rc.log.Warn("xfer: not stored", "name", f.Name, "reason", ferr)
		reason = ferr.Error()
	} else {
		f.res.Status, f.res.Stored = StatusDone, f.res.Path
		reason = f.res.Path
	}
	rc.cur = nil
	if err := rc.w.indexReason(msgResult, idx, code, reason); err != nil {
		return streamErr(rc.ctx, "sending a result", err)
	}
	if err := rc.w.flush(); err != nil {
		return streamErr(rc.ctx, "sending a result", err)
	}
	return nil
}

// commit moves verified partial data into place without overwriting anything
// (unless asked), with its mode and modification time.
func (rc *receiver) commit(f *rfile) error {
	part := partPath(rc.id, ".part")
	if err := rc.data.Sync(); err != nil {
		return rc.diskErr(fmt.Errorf("xfer: %w", err))
	}
	if err := rc.data.Chmod(fs.FileMode(f.Mode) &^ umask); err != nil {
		return fmt.Errorf("xfer: %w", err)
	}
	// The partial data stays open, and so locked, until its name is gone:
	// another transfer of the same file must not open it (and cut it)
	// between the link below and the removal of that name. Where an open
	// file cannot be renamed (Windows) it is closed first.
	if !holdWhileStoring {
		rc.closeCurrent()
	}
	defer rc.closeCurrent()
	mt := time.Unix(0, f.Mtime)
	if err := rc.root.Chtimes(part, mt, mt); err != nil {
		return fmt.Errorf("xfer: %w", err)
	}
	parent := path.Dir(f.Name)
	if err := rc.root.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("xfer: creating folder for %q: %w", f.Name, err)
	}
	stored := f.Name
	if rc.opts.Overwrite {
		if fi, err := rc.root.Lstat(stored); err == nil && fi.IsDir() {
			return fmt.Errorf("xfer: %q is a folder here; not replaced by a file", stored)
		}
		if err := rc.root.Rename(part, stored); err != nil {
			return fmt.Errorf("xfer: storing %q: %w", stored, err)
		}
	} else {
		for n := 0; ; n++ {
			if n > 0 {
				stored = numbered(f.Name, n)
			}
			err := rc.root.Link(part, stored)
			if err == nil {
				break
			}
			if errors.Is(err, fs.ErrExist) && n < 9999 {
				continue
			}
			if !errors.Is(err, fs.ErrExist) {
				// No hard links here (e.g. FAT): check, then rename.
				if _, lerr := rc.root.Lstat(stored); errors.Is(lerr, fs.ErrNotExist) {
					if err = rc.root.Rename(part, stored); err == nil {
						break
					}
				}
			}
			return fmt.Errorf("xfer: storing %q: %w", f.Name, err)
		}
		if stored != f.Name {
			rc.log.Info("xfer: a file of that name exists; stored beside it", "name", f.Name, "stored", stored)
		}
	}
	if d, err := rc.root.Open(parent); err == nil {
		d.Sync()
		d.Close()
	}
	f.res.Path = stored
	for _, ext := range []string{".part", ".sums", ".json"} {
		rc.root.Remove(partPath(rc.id, ext))
	}
	rc.closeCurrent()
	rc.dropOtherPartials(f)
	rc.root.Remove(partialDir) // only if empty
	return nil
}

// dropOtherPartials removes partial data kept for f's name under another
// id: data of an earlier version of the file (of any size), or kept under
// the other hash (from a sender that prefers it). Once f is stored it
// would never be resumed, and it would take the disk space for good.
// Partial data another transfer is receiving right now (locked) is left
// alone.
func (rc *receiver) dropOtherPartials(f *rfile) {
	for _, p := range rc.partialIndex()[f.Name] {
		id := p.id
		if id == rc.id {
			continue
		}
		if data, err := rc.root.OpenFile(partPath(id, ".part"), os.O_RDWR, 0); err == nil {
			busy := lockPartial(data) != nil
			if !busy {
				for _, ext := range []string{".part", ".sums", ".json"} {
					rc.root.Remove(partPath(id, ext))
				}
			}
			data.Close()
			continue
		}
		for _, ext := range []string{".part", ".sums", ".json"} {
			rc.root.Remove(partPath(id, ext))
		}
	}
}

// finishDirs restores the mode (less the umask) and modification time of
// the folders this transfer made, deepest first, once their content is in
// place. A folder that was there already is left as it was: a sender
// must not open up (or date) the receiver's own folders.
func (rc *receiver) finishDirs() {
	for i := len(rc.files) - 1; i >= 0; i-- {
		f := rc.files[i]
		if f.Kind != kindDir || f.res.Status != StatusDone || !f.created {
			continue // a folder that was there keeps its mode and time
		}
		rc.root.Chmod(f.Name, fs.FileMode(f.Mode)&^umask|0o700)
		mt := time.Unix(0, f.Mtime)
		rc.root.Chtimes(f.Name, mt, mt)
	}
}

// sumsStill reports whether .sums still records, for the first off bytes,
// the chunk hashes the resume's root state (rc.leaves) was built from.
func (rc *receiver) sumsStill(off int64) bool {
	sums, err := rc.root.Open(partPath(rc.id, ".sums"))
	if err != nil {
		return false
	}
	defer sums.Close()
	sr := bufio.NewReader(sums)
	rh := newRootHash(rc.alg)
	var sum [hashLen]byte
	for n := (off + ChunkSize - 1) / ChunkSize; n > 0; n-- {
		if _, err := io.ReadFull(sr, sum[:]); err != nil {
			return false
		}
		rh.addSum(&sum)
	}
	return rh.root() == rc.leaves.root()
}

// freeHook, set by tests, stands in for the file system's answer to
// freeBytes.
var freeHook func(dir string) (int64, bool)

// sizeText writes n bytes for people: "300 MiB", "1.5 GiB", "512 bytes".
func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	v, u := float64(n), 0
	for v >= unit && u < 5 {
		v /= unit
		u++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[u-1])
}

// Refuse answers a sender on s with reason in place of a transfer (this
// side is busy with another, say), so that the sender fails at once with
// it rather than wait for a hello, and closes s. What the sender writes
// meanwhile is read and dropped.
func Refuse(s Stream, reason string) error {
	defer s.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, s)
	}()
	w := newWriter(s, 4096)
	err := w.fatal(reason)
	if err == nil {
		err = w.flush()
	}
	s.CloseWrite()
	s.Close()
	<-done
	return err
}
