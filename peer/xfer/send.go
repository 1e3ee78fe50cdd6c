package xfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/p2plink/p2plink/internal/printable"
)

// Result status codes carried by msgResult.
const (
	resOK      byte = 0
	resVerify  byte = 1
	resChanged byte = 2
	resOther   byte = 3
)

const ioBuffer = 256 << 10

// srcFile is one manifest entry with its local path.
type srcFile struct {
	entry
	path string
}

// Send sends the files and folders named by paths over s, and returns what
// became of each. A folder is sent with everything below it; its name on the
// receiving side is its last path element. Symbolic links and special files
// (devices, fifos, sockets) are not sent, nor are names a receiver would
// refuse: they are listed in the result as StatusSkipped and logged, and
// told to a receiver that takes such notes, each with the reason. Send
// closes s before it returns; cancelling ctx closes it at once.
//
// The error is nil only if every file was stored or already present on the
// receiving side. A file is hashed once: as it is read to be sent, its
// root sent with its end (a late root, when the receiver takes those), or
// after the hellos and before any data is sent, unless opts.Hashes holds
// its root. Its size
// and modification time are checked again before and after it is sent, and
// one found changed fails with ErrChanged. A file hashed before it was sent
// whose content changed while it was sent without a new modification time
// fails with ErrVerify: the receiver checks the data against the announced
// hash and stores nothing. With a late root, such a file is stored as it
// was read.
func Send(ctx context.Context, s Stream, paths []string, opts SendOptions) (Result, error) {
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	log := logger(opts.Logger)

	var res Result
	files, skipped, err := buildManifest(ctx, paths)
	if err != nil {
		return res, err
	}
	for _, sk := range skipped {
		log.Warn("xfer: not sent", "path", sk.Path, "reason", sk.Err)
	}

	// The hellos come first, so that a receiver of another version, or one
	// that refuses, is known before the files are hashed, and the hash is
	// agreed on.
	rd := &sendReader{r: newReader(s), n: len(files),
		replies: make(chan []reply, 1), results: make([]*fileOutcome, len(files))}
	w := newWriter(s, ioBuffer)
	alg, feats, err := sendHello(s, w, rd.r, opts)
	if err != nil {
		if ctx.Err() != nil {
			return withSkipped(res, skipped), ctx.Err()
		}
		return withSkipped(res, skipped), err
	}
	res.Hash = alg.String()
	late := feats&featLateRoots != 0

	// The receiver's messages are read by one goroutine, started before the
	// files are hashed: a receiver that gives up meanwhile (it sends '!' or
	// closes) stops the hashing, and while the manifest is written neither
	// side blocks writing while the other writes too.
	hctx, stopHashing := context.WithCancel(ctx)
	defer stopHashing()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rd.run(func(err error) {
			if errors.Is(err, ErrProtocol) && ctx.Err() == nil {
				// The receiver broke the protocol (a malformed reply):
				// tell it so before the stream goes, and before the
				// main goroutine, waiting for the replies, is woken.
				tellPeer(w, err)
			}
		})
		if rd.err != nil {
			s.Close() // unblock the writer
			stopHashing()
		}
	}()
	pass := opts.Hashes.waitFor
	if late {
		pass = opts.Hashes.stopPass
	}
	if err := pass(hctx); err != nil {
		s.Close()
		wg.Wait()
		if ctx.Err() != nil {
			return withSkipped(res, skipped), ctx.Err()
		}
		return withSkipped(res, skipped), rd.err
	}
	if err := hashFiles(hctx, files, alg, opts.Hashes, late); err != nil {
		if hctx.Err() == nil {
			// Tell the receiver why nothing comes.
			if w.fatal(err.Error()) == nil {
				w.flush()
			}
		}
		s.Close()
		wg.Wait()
		switch {
		case ctx.Err() != nil:
			return withSkipped(res, skipped), ctx.Err()
		case hctx.Err() != nil && rd.err != nil:
			return withSkipped(res, skipped), rd.err
		}
		return withSkipped(res, skipped), err
	}
	res.Files = make([]FileResult, len(files), len(files)+len(skipped))
	var total int64
	for i, f := range files {
		res.Files[i] = FileResult{Name: f.Name, Dir: f.Kind == kindDir, Path: f.path, Size: f.Size}
		total += f.Size
	}

	err = func() error {
		for i := range files {
			if err := w.entry(&files[i].entry); err != nil {
				return err
			}
		}
		if feats&featNotSent != 0 {
			// The receiver learns what is left out, and why.
			for _, sk := range skipped {
				var se *skipError
				if !errors.As(sk.Err, &se) {
					continue
				}
				if err := w.notSent(sk.Name, se.forPeer()); err != nil {
					return err
				}
			}
		}
		if err := w.manifestEnd(uint32(len(files)), total); err != nil {
			return err
		}
		return w.flush()
	}()
	if err == nil {
		err = sendFiles(ctx, w, rd, files, &res, total, alg, opts)
	}
	if err == nil {
		if err = w.msg(msgDone); err == nil {
			err = w.flush()
		}
		if err == nil {
			err = s.CloseWrite()
		}
	}
	if err != nil {
		if errors.Is(err, ErrProtocol) && ctx.Err() == nil {
			// The receiver broke the protocol: tell it so, as far as
			// it still reads.
			tellPeer(w, err)
		}
		s.Close()
	}
	wg.Wait()
	for i, o := range rd.results {
		if o == nil || res.Files[i].Status != StatusPending {
			continue
		}
		if o.err != nil {
			res.Files[i].Status, res.Files[i].Err = StatusFailed, o.err
		} else {
			res.Files[i].Status, res.Files[i].Stored = StatusDone, o.stored
		}
	}
	if opts.Hashes != nil {
		// A file found different from its root is hashed again next time.
		for _, f := range res.Files {
			if errors.Is(f.Err, ErrVerify) || errors.Is(f.Err, ErrChanged) {
				opts.Hashes.forget(f.Path)
			}
		}
	}
	if ctx.Err() != nil {
		return withSkipped(res, skipped), ctx.Err()
	}
	if errors.Is(err, ErrProtocol) {
		// The receiver broke the protocol (the reader then only saw the
		// stream closed for it).
		return withSkipped(res, skipped), err
	}
	if rd.err != nil && !rd.done {
		return withSkipped(res, skipped), rd.err
	}
	if err != nil {
		return withSkipped(res, skipped), streamErr(ctx, "sending", err)
	}
	if !rd.done {
		return withSkipped(res, skipped), fmt.Errorf("xfer: the receiver ended the stream without confirming: %w", io.ErrUnexpectedEOF)
	}
	return withSkipped(res, skipped), failures(res.Files)
}

func withSkipped(res Result, skipped []FileResult) Result {
	res.Files = append(res.Files, skipped...)
	return res
}

func streamErr(ctx context.Context, doing string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("xfer: %s: %w", doing, err)
}

// fileOutcome is the receiver's verdict on one file.
type fileOutcome struct {
	err    error
	stored string
}

// sendReader reads the receiver's side of the conversation.
type sendReader struct {
	r       *reader
	n       int
	replies chan []reply

	mu      sync.Mutex
	results []*fileOutcome
	err     error // set before run returns; read after the goroutine is joined
	done    bool  // the receiver confirmed the end
}

// run reads the receiver's side until its end, calling failed (unless
// nil) with the error that ended it before the replies channel closes.
func (sr *sendReader) run(failed func(error)) {
	defer close(sr.replies)
	sr.err = sr.loop()
	if sr.err != nil && failed != nil {
		failed(sr.err)
	}
}

// tellPeer sends '!' with err's text, for at most helloGrace (the caller
// closes the stream then, which ends a write still blocked).
func tellPeer(w *writer, err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if w.fatal(err.Error()) == nil {
			w.flush()
		}
	}()
	t := time.NewTimer(helloGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// helloGrace bounds how long a sender that refused the receiver's hello
// waits for its own hello and its reason to be taken before it closes.
const helloGrace = 5 * time.Second

// sendHello writes the sender's hello, reads the receiver's and returns the
// hash the two agreed on and the features both listed. Our hello is written while the receiver's is
// read, so that neither side blocks the other on a stream without
// buffering. If the read fails, s is closed, which ends the write; if the
// receiver's hello is refused, our hello and then '!' with the reason go
// out first (a receiver that sent its hello reads ours), for at most
// helloGrace, so that the receiver learns why.
func sendHello(s Stream, w *writer, r *reader, opts SendOptions) (alg hashAlg, both byte, err error) {
	ours := opts.hashes
	if ours == nil {
		ours = localHashes()
	}
	features := featLateRoots | featNotSent
	if opts.HashFirst {
		features &^= featLateRoots
	}
	if opts.noNotSent {
		features &^= featNotSent
	}
	wrote := make(chan error, 1)
	go func() {
		err := w.hello(roleSender, ours, features)
		if err == nil {
			err = w.flush()
		}
		wrote <- err
	}()
	alg, theirs, read, err := readHello(r, ours)
	switch {
	case err != nil && !read:
		s.Close()
		<-wrote
		return 0, 0, err
	case err != nil:
		// What the receiver still writes is read and dropped meanwhile, so
		// that a receiver blocked writing its own '!' cannot block us.
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			for {
				if _, _, err := r.next(); err != nil {
					return
				}
			}
		}()
		done := make(chan struct{})
		go func() {
			defer close(done)
			if <-wrote == nil && w.fatal(err.Error()) == nil {
				w.flush()
			}
		}()
		t := time.NewTimer(helloGrace)
		select {
		case <-done:
		case <-t.C:
		}
		t.Stop()
		s.Close()
		<-done
		<-drained
		return 0, 0, err
	}
	if err := <-wrote; err != nil {
		return 0, 0, fmt.Errorf("xfer: sending hello: %w", err)
	}
	return alg, features & theirs, nil
}

// readHello reads the receiver's hello and returns the hash the two sides
// agree on and the features the receiver has; read reports whether a
// message arrived at all.
func readHello(r *reader, ours []hashAlg) (alg hashAlg, features byte, read bool, err error) {
	typ, p, err := r.next()
	if err != nil {
		return 0, 0, false, readErr("reading the receiver's hello", err)
	}
	alg, features, err = checkHello(typ, p, ours)
	return alg, features, true, err
}

// checkHello checks the receiver's first message, which should be its hello.
func checkHello(typ byte, p []byte, ours []hashAlg) (hashAlg, byte, error) {
	if typ == msgError {
		return 0, 0, fmt.Errorf("%w: %s", ErrPeer, printable.String(string(p)))
	}
	if typ != msgHello {
		return 0, 0, protoErrorf("expected hello, got message %q", typ)
	}
	h, err := parseHello(p)
	if err != nil {
		return 0, 0, err
	}
	alg, err := agree(h, roleReceiver, ours)
	return alg, h.features, err
}

func (sr *sendReader) loop() error {
	replies := make([]reply, 0, sr.n)
	for len(replies) < sr.n {
		typ, p, err := sr.r.next()
		if err != nil {
			return readErr("reading the receiver's replies", err)
		}
		switch typ {
		case msgError:
			return fmt.Errorf("%w: %s", ErrPeer, printable.String(string(p)))
		case msgReply:
		default:
			return protoErrorf("expected a reply, got message %q", typ)
		}
		r, err := parseReply(p)
		if err != nil {
			return err
		}
		if int(r.Index) != len(replies) {
			return protoErrorf("reply for entry %d, expected %d", r.Index, len(replies))
		}
		replies = append(replies, r)
	}
	sr.replies <- replies
	for {
		typ, p, err := sr.r.next()
		if err != nil {
			return readErr("reading the receiver's results", err)
		}
		switch typ {
		case msgError:
			return fmt.Errorf("%w: %s", ErrPeer, printable.String(string(p)))
		case msgDone:
			sr.done = true
			return nil
		case msgResult:
		default:
			return protoErrorf("unexpected message %q from the receiver", typ)
		}
		idx, status, reason, err := parseIndexReason(p)
		if err != nil {
			return err
		}
		if int(idx) >= sr.n {
			return protoErrorf("result for entry %d of %d", idx, sr.n)
		}
		o := &fileOutcome{}
		switch status {
		case resOK:
			o.stored = printable.String(reason)
		case resVerify:
			o.err = fmt.Errorf("%w: receiver: %s", ErrVerify, printable.String(reason))
		case resChanged:
			o.err = fmt.Errorf("%w: receiver: %s", ErrChanged, printable.String(reason))
		default:
			o.err = fmt.Errorf("%w: %s", ErrPeer, printable.String(reason))
		}
		sr.mu.Lock()
		sr.results[idx] = o
		sr.mu.Unlock()
	}
}

func readErr(doing string, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// The other side closed its stream without a reason: it was
		// stopped (Ctrl-C), or it failed, and its own output says which.
		return fmt.Errorf("xfer: %s: %w: the other side ended the transfer without a word (stopped, or it failed: its output says why); run the same commands again to resume", doing, err)
	}
	return fmt.Errorf("xfer: %s: %w", doing, err)
}

func sendFiles(ctx context.Context, w *writer, rd *sendReader, files []srcFile, res *Result, total int64, alg hashAlg, opts SendOptions) error {
	var replies []reply
	select {
	case replies = <-rd.replies:
	case <-ctx.Done():
		return ctx.Err()
	}
	if replies == nil {
		return errors.New("xfer: no replies from the receiver")
	}
	snd := &fileSender{ctx: ctx, w: w, opts: opts, alg: alg, total: total, buf: make([]byte, ChunkSize), res: res}
	if opts.Compress {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(ChunkSize))
		if err != nil {
			return err
		}
		defer enc.Close()
		snd.enc = enc
		snd.cbuf = make([]byte, 0, ChunkSize+ChunkSize/8)
	}
	// Account first for what needs no sending.
	for i, r := range replies {
		f := &res.Files[i]
		if r.Action == actCheck && !files[i].Late {
			return protoErrorf("receiver asked to check %q, whose root the manifest holds", files[i].Name)
		}
		switch r.Action {
		case actPresent:
			f.Status = StatusPresent
			snd.done += f.Size
			snd.kept += f.Size
		case actRefuse:
			f.Status, f.Err = StatusFailed, fmt.Errorf("%w: %s", ErrRefused, printable.String(r.Reason))
		case actSend:
			if files[i].Kind == kindDir {
				f.Status = StatusDone
			}
		}
	}
	for i, r := range replies {
		if (r.Action != actSend && r.Action != actCheck) || files[i].Kind != kindFile {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := snd.send(uint32(i), &files[i], r); err != nil {
			return err
		}
	}
	return nil
}

type fileSender struct {
	ctx   context.Context
	w     *writer
	opts  SendOptions
	alg   hashAlg // agreed in the hellos
	res   *Result
	enc   *zstd.Encoder
	buf   []byte
	cbuf  []byte
	total int64
	done  int64
	kept  int64 // of done, not moved: resumed, present, given up
}

// send sends one file from the offset the receiver asked for. Errors on the
// local file fail the file (msgAbort); only stream errors are returned.
func (fs *fileSender) send(index uint32, f *srcFile, r reply) error {
	fr := &fs.res.Files[index]
	local := func(err error) error {
		fr.Status, fr.Err = StatusFailed, err
		fs.done += f.Size - fr.Sent - fr.Resumed
		fs.kept += f.Size - fr.Sent - fr.Resumed
		code := resOther
		if errors.Is(err, ErrChanged) {
			code = resChanged
		}
		if err := fs.w.indexReason(msgAbort, index, code, err.Error()); err != nil {
			return err
		}
		return fs.w.flush()
	}
	changed := func(what string) error {
		return local(fmt.Errorf("%w: %s: %s; not stored, send it again once it is stable", ErrChanged, f.path, what))
	}
	// A late-root file is hashed as it is read to be sent (rh), its
	// chunks' hashes kept (sums) for opts.Hashes.
	var rh *rootHash
	var sums *[][hashLen]byte
	var before fileID
	var known bool
	if f.Late && fs.opts.Hashes != nil {
		before, known = statID(f.path)
		if f.Size <= keptChunks*ChunkSize {
			sums = new([][hashLen]byte)
		}
	}
	completed := false
	defer func() {
		// A late-root send cut short keeps the hashes of the chunks it
		// read, so that its resume checks the receiver's prefix unread.
		if !completed && f.Late && sums != nil && len(*sums) > 0 {
			fs.opts.Hashes.keepPrefix(f, fs.alg, before, known, *sums)
		}
	}()
	keep := func() {
		completed = true
		if fs.opts.Hashes == nil {
			return
		}
		var kept [][hashLen]byte
		if sums != nil && int64(len(*sums)) == (f.Size+ChunkSize-1)/ChunkSize {
			kept = *sums
		}
		fs.opts.Hashes.keep(f, fs.alg, before, known, kept)
	}
	file, err := os.Open(f.path)
	if err != nil {
		return local(fmt.Errorf("xfer: %w", err))
	}
	defer file.Close()
	if fi, err := file.Stat(); err != nil {
		return local(fmt.Errorf("xfer: %w", err))
	} else if fi.Size() != f.Size || fi.ModTime().UnixNano() != f.Mtime {
		return changed("size or modification time differ from the manifest")
	}
	off := r.Offset
	if off > f.Size || (off%ChunkSize != 0 && off != f.Size) {
		return protoErrorf("receiver asked for %q from offset %d of %d", f.Name, off, f.Size)
	}
	switch {
	case r.Action == actCheck:
		// The receiver has a file of this name and size: the same as
		// ours? That takes reading ours whole, as the manifest pass of
		// a sender without late roots does.
		if off != f.Size || len(r.Reason)%hashLen != 0 {
			return protoErrorf("receiver asked to check %q at offset %d of %d, with %d more bytes of roots", f.Name, off, f.Size, len(r.Reason))
		}
		fileHashes.Add(1)
		root, n, err := fileRootParallelKeep(fs.ctx, fs.alg, file, f.Size, hashWorkers(), sums)
		if err != nil {
			if e := fs.ctx.Err(); e != nil {
				return e
			}
			return local(fmt.Errorf("xfer: reading %s: %w", f.path, err))
		}
		if n != f.Size {
			return changed("its size changed while it was read")
		}
		f.Root = root
		same := root == r.Root
		for i := 0; i < len(r.Reason); i += hashLen {
			same = same || string(root[:]) == r.Reason[i:i+hashLen]
		}
		if same {
			if fi, err := file.Stat(); err != nil || fi.Size() != f.Size || fi.ModTime().UnixNano() != f.Mtime {
				return changed("modified while it was being read")
			}
			keep()
			fr.Status = StatusPresent
			fs.done += f.Size
			fs.kept += f.Size
			if err := fs.w.file(index, f.Size); err != nil {
				return err
			}
			if err := fs.w.end(index, &f.Root); err != nil {
				return err
			}
			if fs.opts.Progress != nil {
				fs.opts.Progress(Progress{Name: f.Name, FileDone: f.Size, FileSize: f.Size, Done: fs.done, Total: fs.total, Kept: fs.kept})
			}
			return fs.w.flush()
		}
		// Another file: ours goes whole, under the root just computed,
		// which the receiver checks as if the manifest had held it. It
		// is kept once sent: kept now, a rerun after a cut would put it
		// in the manifest, and the receiver would not find the partial
		// data it keeps under the late root's key.
		off = 0
		if _, err := file.Seek(0, io.SeekStart); err != nil {
			return local(fmt.Errorf("xfer: %w", err))
		}
	case f.Late && off > 0:
		// Check the receiver's prefix against ours, the root state over
		// it continued by the rest of the file: from the chunk hashes kept
		// by the send that was cut, or read again.
		var kept bool
		if fs.opts.Hashes != nil {
			fs.opts.Hashes.lookupPrefix(f, fs.alg, off)
			rh, kept = fs.opts.Hashes.prefixState(hashKey{f.path, f.Size, f.Mtime, fs.alg}, off, sums, true)
		}
		if kept {
			if _, err := file.Seek(off, io.SeekStart); err != nil {
				return local(fmt.Errorf("xfer: %w", err))
			}
		} else {
			prefixReads.Add(1)
			rh = newRootHash(fs.alg)
			n, err := rh.addFrom(io.LimitReader(file, off), fs.buf, sums)
			if err != nil {
				return local(fmt.Errorf("xfer: reading %s: %w", f.path, err))
			}
			if n != off {
				return changed("shorter than announced")
			}
		}
		if rh.root() != r.Root {
			logger(fs.opts.Logger).Warn("xfer: the receiver's partial data differs; sending the whole file", "file", f.Name)
			off = 0
			rh = newRootHash(fs.alg)
			if sums != nil {
				*sums = (*sums)[:0]
			}
			if _, err := file.Seek(0, io.SeekStart); err != nil {
				return local(fmt.Errorf("xfer: %w", err))
			}
		}
	case f.Late:
		rh = newRootHash(fs.alg)
		lateRoots.Add(1)
	case off > 0:
		// Check the receiver's prefix against ours: the same root over
		// the same chunks, from the chunk hashes kept when the file was
		// hashed, or read again.
		root, kept := fs.opts.Hashes.prefixRoot(hashKey{f.path, f.Size, f.Mtime, fs.alg}, off)
		if kept {
			if _, err := file.Seek(off, io.SeekStart); err != nil {
				return local(fmt.Errorf("xfer: %w", err))
			}
		} else {
			prefixReads.Add(1)
			var n int64
			root, n, err = fileRoot(fs.alg, io.LimitReader(file, off), fs.buf)
			if err != nil {
				return local(fmt.Errorf("xfer: reading %s: %w", f.path, err))
			}
			if n != off {
				return changed("shorter than announced")
			}
		}
		if root != r.Root {
			logger(fs.opts.Logger).Warn("xfer: the receiver's partial data differs; sending the whole file", "file", f.Name)
			off = 0
			if _, err := file.Seek(0, io.SeekStart); err != nil {
				return local(fmt.Errorf("xfer: %w", err))
			}
		}
	}
	fr.Resumed = off
	fs.res.Resumed += off
	fs.done += off
	fs.kept += off
	if err := fs.w.file(index, off); err != nil {
		return err
	}
	if fs.opts.Progress != nil {
		fs.opts.Progress(Progress{Name: f.Name, FileDone: off, FileSize: f.Size, Done: fs.done, Total: fs.total, Kept: fs.kept})
	}
	// Each chunk is read as it is sent, with no goroutine reading ahead:
	// the stream's send buffer (up to maxSendBuf, refilled when half of it
	// went out) is the read-ahead, and the kernel reads ahead of a file
	// read in order. A reader goroutine cost 4 % of the CPU in hand-offs
	// (ethbench, 8 alternated runs: 277.0 against 291.3 MB/s without).
	misses := 0
	for pos, chunk := off, 0; pos < f.Size; chunk++ {
		p := fs.buf[:min(int64(ChunkSize), f.Size-pos)]
		if _, err := io.ReadFull(file, p); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return changed("shorter than announced")
			}
			return local(fmt.Errorf("xfer: reading %s: %w", f.path, err))
		}
		n := int64(len(p))
		if rh != nil {
			sum := rh.add(p)
			if sums != nil {
				*sums = append(*sums, sum)
			}
		}
		flags, payload := byte(0), p
		if fs.enc != nil && (misses < 4 || chunk%16 == 0) {
			cp := fs.enc.EncodeAll(p, fs.cbuf[:0])
			if len(cp)*100 < len(p)*95 {
				flags, payload = flagZstd, cp
				misses = 0
			} else {
				misses++
			}
			fs.cbuf = cp[:0]
		}
		if err := fs.w.data(flags, payload); err != nil {
			return err
		}
		pos += n
		fr.Sent += n
		fs.done += n
		fs.res.Bytes += n
		fs.res.WireBytes += int64(len(payload))
		if fs.opts.Progress != nil {
			fs.opts.Progress(Progress{Name: f.Name, FileDone: pos, FileSize: f.Size, Done: fs.done, Total: fs.total, Kept: fs.kept})
		}
	}
	var one [1]byte
	if k, _ := file.Read(one[:]); k > 0 {
		return changed("longer than announced")
	}
	if fi, err := file.Stat(); err != nil || fi.Size() != f.Size || fi.ModTime().UnixNano() != f.Mtime {
		return changed("modified while it was being sent")
	}
	// The receiver checks the content against the root: the one
	// announced in the manifest, or for a late-root file the one hashed
	// as it was read here, which comes with the end.
	var root *[hashLen]byte
	if f.Late {
		if rh != nil {
			f.Root = rh.root()
		}
		keep()
		root = &f.Root
	}
	if err := fs.w.end(index, root); err != nil {
		return err
	}
	return fs.w.flush()
}

// skipError says why an entry is not sent: "xfer: " who what, then err
// (which it wraps) if any. who is its local path; the receiver, told of it
// (featNotSent), reads the same with its name there instead: where the
// sender's files lie is not its business (a share server's folders).
type skipError struct {
	who, name string
	what      string
	err       error
}

func (e *skipError) Error() string { return e.text(e.who) }

// Unwrap returns the error that made the entry unsendable, if any.
func (e *skipError) Unwrap() error { return e.err }

// forPeer is the reason the receiver is told.
func (e *skipError) forPeer() string { return e.text(e.name) }

func (e *skipError) text(who string) string {
	s := "xfer: " + who + e.what
	if e.err != nil {
		s += e.err.Error()
	}
	return s
}

// buildManifest walks paths and lists what is to be sent, and what is
// not (symbolic links, special files, names a receiver refuses: skipped,
// each with a *skipError); hashFiles then fills in the root hashes.
func buildManifest(ctx context.Context, paths []string) (files []srcFile, skipped []FileResult, err error) {
	seen := map[string]string{}
	add := func(f srcFile) error {
		if prev, ok := seen[f.Name]; ok {
			return fmt.Errorf("xfer: %s and %s would both be received as %q; send them separately", prev, f.path, f.Name)
		}
		seen[f.Name] = f.path
		files = append(files, f)
		return nil
	}
	skip := func(path, name, what string, err error) {
		skipped = append(skipped, FileResult{Name: name, Path: path, Status: StatusSkipped,
			Err: &skipError{who: path, name: name, what: what, err: err}})
	}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, nil, fmt.Errorf("xfer: %w", err)
		}
		base := filepath.Base(abs)
		if base == string(filepath.Separator) || base == "." {
			return nil, nil, fmt.Errorf("xfer: cannot send %q: name a folder below the file-system root", p)
		}
		err = filepath.WalkDir(abs, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("xfer: %w", err)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			rel, err := filepath.Rel(filepath.Dir(abs), path)
			if err != nil {
				return fmt.Errorf("xfer: %w", err)
			}
			name := filepath.ToSlash(rel)
			t := d.Type()
			switch {
			case t&fs.ModeSymlink != 0:
				skip(path, name, " is a symbolic link; not sent (send its target instead)", nil)
				return nil
			case !t.IsDir() && !t.IsRegular():
				skip(path, name, fmt.Sprintf(" is a special file (%v); not sent", t), nil)
				return nil
			case t.IsDir() && strings.EqualFold(d.Name(), partialDir):
				// A receiver's unfinished data (another transfer may be
				// writing it): never part of what is sent.
				skip(path, name, " holds partial data of unfinished transfers; not sent", nil)
				return filepath.SkipDir
			}
			if err := checkName(name); err != nil {
				skip(path, name, ": not sent, as the receiver would refuse the name (rename it to send it): ", err)
				if t.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return fmt.Errorf("xfer: %w", err)
			}
			f := srcFile{path: path, entry: entry{Name: name, Mode: uint32(info.Mode().Perm()), Mtime: info.ModTime().UnixNano()}}
			if t.IsDir() {
				f.Kind = kindDir
				return add(f)
			}
			f.Kind = kindFile
			f.Size = info.Size()
			return add(f)
		})
		if err != nil {
			return nil, nil, err
		}
	}
	if int64(len(files)) > 1<<31 {
		return nil, nil, fmt.Errorf("xfer: too many files (%d)", len(files))
	}
	return files, skipped, nil
}

// hashFiles hashes every regular file of the manifest under alg, taking
// the roots cache holds (nil: none) for files whose size and modification
// time have not changed since (and, kept on disk, neither their change
// time nor inode), and keeping the new ones there. With late (the
// receiver takes late roots), a file whose root cache does not hold is
// not read here but marked Late: it is hashed as it is sent.
func hashFiles(ctx context.Context, files []srcFile, alg hashAlg, cache *Hashes, late bool) error {
	buf := make([]byte, ChunkSize)
	for i := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		f := &files[i]
		if f.Kind != kindFile {
			continue
		}
		var before fileID
		var known bool
		if cache != nil {
			if root, ok := cache.lookup(f, alg); ok {
				f.Root = root
				continue
			}
		}
		if late {
			f.Late = true
			continue
		}
		if cache != nil {
			before, known = statID(f.path)
		}
		var sums *[][hashLen]byte
		if cache != nil && f.Size <= keptChunks*ChunkSize {
			sums = new([][hashLen]byte)
		}
		if err := hashFile(ctx, alg, f.path, &f.entry, buf, sums); err != nil {
			return err
		}
		if cache != nil {
			var kept [][hashLen]byte
			if sums != nil {
				kept = *sums
			}
			cache.keep(f, alg, before, known, kept)
		}
	}
	return nil
}

// hashFile fills in e's size, modification time and root hash under alg
// from the file, reading it once through buf (ChunkSize bytes). A file of several chunks is
// hashed by up to hashWorkers goroutines at once (the root is over the
// chunks' own hashes, so they are independent): the manifest pass is the
// one part of a transfer that nothing else overlaps.
func hashFile(ctx context.Context, alg hashAlg, path string, e *entry, buf []byte, sums *[][hashLen]byte) error {
	fileHashes.Add(1)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("xfer: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("xfer: %w", err)
	}
	var root [hashLen]byte
	var n int64
	if w := hashWorkers(); w > 1 && fi.Size() >= 2*ChunkSize {
		root, n, err = fileRootParallelKeep(ctx, alg, f, fi.Size(), w, sums)
	} else {
		// One chunk at a time, stopping when ctx ends: on one thread this
		// is Prepare's pass, which a receiver that takes late roots stops
		// (it ran on to the end of the file, and the send waited for it:
		// the whole file hashed twice).
		root, n, err = fileRootKeep(alg, ctxReader{ctx, f}, buf, sums)
	}
	if err != nil {
		return fmt.Errorf("xfer: hashing %s: %w", path, err)
	}
	if n != fi.Size() {
		return fmt.Errorf("xfer: %s changed while it was being hashed; send it again once it is stable: %w", path, ErrChanged)
	}
	e.Size, e.Mtime, e.Root = fi.Size(), fi.ModTime().UnixNano(), root
	return nil
}

// ctxReader is r that fails with ctx's error once ctx ends, and lets the
// other goroutines run between reads: on one thread, a pass that hashes
// while the session is set up would otherwise hold it for a whole time
// slice (10 ms) at every step of the handshake.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	runtime.Gosched()
	return c.r.Read(p)
}

// prefixReads counts the kept prefixes read again to check a resume (the
// chunk hashes were not kept), and fileHashes the files read to hash them;
// tests watch them.
var prefixReads, fileHashes atomic.Int64

// lateRoots counts the files sent from their start with a late root,
// hashed as they were read to be sent; tests watch it.
var lateRoots atomic.Int64

// hashWorkers is how many goroutines hash one file's chunks.
func hashWorkers() int { return min(runtime.GOMAXPROCS(0), 4) }

// hashSpan is how many chunks fileRootParallel hashes between two folds
// into the root: it bounds the chunk hashes held at once.
const hashSpan = 256

// fileRootParallel is fileRoot over the first size bytes of f, hashed by
// workers goroutines. A file is mapped into memory where it can be (see
// mapFile), so that its bytes are hashed where they lie in the page cache
// rather than copied out first; otherwise it is read with ReadAt. It
// returns the bytes it found: fewer than size if the file is shorter, one
// more if it is longer.
func fileRootParallel(ctx context.Context, alg hashAlg, f io.ReaderAt, size int64, workers int) (root [hashLen]byte, n int64, err error) {
	return fileRootParallelKeep(ctx, alg, f, size, workers, nil)
}

// fileRootParallelKeep is fileRootParallel that also appends the chunks'
// hashes to *sums, unless sums is nil.
func fileRootParallelKeep(ctx context.Context, alg hashAlg, f io.ReaderAt, size int64, workers int, sums *[][hashLen]byte) (root [hashLen]byte, n int64, err error) {
	m, unmap := mapFile(f, size)
	defer unmap()
	root, n, err = rootOfChunks(ctx, alg, f, m, size, workers, sums)
	if m != nil && err == nil && n == size {
		// A file cut short inside its last page reads as zeros there
		// instead of faulting: ask its size again.
		if st, ok := f.(interface{ Stat() (os.FileInfo, error) }); ok {
			if fi, serr := st.Stat(); serr == nil && fi.Size() < size {
				return root, fi.Size(), nil
			}
		}
	}
	return root, n, err
}

// rootOfChunks is fileRootParallel over m, f's first size bytes mapped
// into memory, or with ReadAt when m is nil. A mapped file that shrinks
// under the workers makes the page they touch fault: such a fault ends the
// hashing as a file found shorter, not the program.
func rootOfChunks(ctx context.Context, alg hashAlg, f io.ReaderAt, m []byte, size int64, workers int, keep *[][hashLen]byte) (root [hashLen]byte, n int64, err error) {
	rh := newRootHash(alg)
	chunks := (size + ChunkSize - 1) / ChunkSize
	sums := make([][hashLen]byte, min(chunks, hashSpan))
	bufs := make([][]byte, workers)
	for i := range bufs {
		if m == nil {
			bufs[i] = make([]byte, ChunkSize)
		}
	}
	for first := int64(0); first < chunks; first += hashSpan {
		if err := ctx.Err(); err != nil {
			return root, 0, err // checked every hashSpan chunks (16 MiB)
		}
		span := min(chunks-first, hashSpan)
		var next atomic.Int64
		var failed atomic.Bool
		var mu sync.Mutex
		var firstErr error
		fail := func(err error) {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
			failed.Store(true)
		}
		var wg sync.WaitGroup
		for w := range min(int64(workers), span) {
			wg.Add(1)
			go func(buf []byte) {
				defer wg.Done()
				var off, end int64 // the chunk being hashed
				if m != nil {
					defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
					defer func() {
						if r := recover(); r != nil {
							if _, fault := r.(interface{ Addr() uintptr }); !fault {
								panic(r)
							}
							// The page is gone (the file shrank) or could
							// not be read (a bad sector, a device pulled):
							// reading the chunk says which.
							p := make([]byte, end-off)
							if k, err := f.ReadAt(p, off); k < len(p) && err != nil && !errors.Is(err, io.EOF) {
								fail(err)
								return
							}
							fail(fmt.Errorf("%w: shorter than announced (a fault reading its mapping)", io.ErrUnexpectedEOF))
						}
					}()
				}
				for !failed.Load() {
					i := next.Add(1) - 1
					if i >= span {
						return
					}
					off = (first + i) * ChunkSize
					end = min(off+ChunkSize, size)
					var p []byte
					if m != nil {
						p = m[off:end]
					} else {
						p = buf[:end-off]
						if k, err := f.ReadAt(p, off); k < len(p) {
							if err == nil || errors.Is(err, io.EOF) {
								err = fmt.Errorf("%w: shorter than announced", io.ErrUnexpectedEOF)
							}
							fail(err)
							return
						}
					}
					sums[i] = alg.sum(p)
				}
			}(bufs[w])
		}
		wg.Wait()
		if firstErr != nil {
			if errors.Is(firstErr, io.ErrUnexpectedEOF) {
				return root, 0, nil // shorter than size: the caller reports the change
			}
			return root, 0, firstErr
		}
		for i := range span {
			rh.addSum(&sums[i])
		}
		if keep != nil {
			*keep = append(*keep, sums[:span]...)
		}
	}
	// A file that grew has a byte past size.
	var one [1]byte
	if k, _ := f.ReadAt(one[:], size); k > 0 {
		return root, size + 1, nil
	}
	return rh.root(), size, nil
}
