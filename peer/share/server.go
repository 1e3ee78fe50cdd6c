package share

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/p2plink/p2plink/peer/xfer"
)

// Stream is the byte stream a request travels on: in p2plink a stream of the
// peer protocol opened for Service, whose peer is authenticated. It is
// xfer.Stream, since get and put hand it to xfer.
type Stream = xfer.Stream

// Peer names the authenticated peer at the other end of a stream, as the
// session's handshake verified it.
type Peer struct {
	Name        string
	Fingerprint string
}

// ServerOptions configure a Server. The zero value takes the defaults.
type ServerOptions struct {
	// Logger receives one line per request: who (peer name and
	// fingerprint), what (operation, share, paths) and the result. Nil
	// discards.
	Logger *slog.Logger
	// MaxFailures failed attempts by one peer (wrong passwords, shares it
	// may not see) within Window lock it out for Lockout. Defaults:
	// DefaultMaxFailures, DefaultWindow, DefaultLockout.
	MaxFailures int
	Window      time.Duration
	Lockout     time.Duration
	// Now is the clock of the limiter. Default time.Now.
	Now func() time.Time
	// Compress compresses file data sent by get where that pays.
	Compress bool
	// Hashes, if set, keeps the roots of the files get sends, so that a
	// file fetched again, or a get rerun after a cut, is not read to hash
	// it again while it has not changed (see xfer.NewHashesIn, which keeps
	// them on disk for later runs too). Nil: each get hashes its files.
	Hashes *xfer.Hashes

	// sendProgress, in tests, watches a get.
	sendProgress func(xfer.Progress)
}

// maxChecks bounds the password checks a server runs at once.
const maxChecks = 2

// Server answers share requests. It keeps, across streams and sessions, the
// count of failed attempts per peer. It is safe for concurrent use.
type Server struct {
	cfg  *Config
	opts ServerOptions
	log  *slog.Logger
	lim  *limiter
	// checks holds a token per password check running (at most
	// maxChecks at once, over all peers).
	checks chan struct{}
	dummy  passwordHash // verified against when no real hash applies, so timing reveals nothing
}

// NewServer checks cfg (see Config.Check) and returns a server for it. cfg
// must not change afterwards.
func NewServer(cfg *Config, opts ServerOptions) (*Server, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if opts.MaxFailures <= 0 {
		opts.MaxFailures = DefaultMaxFailures
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Lockout <= 0 {
		opts.Lockout = DefaultLockout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &Server{cfg: cfg, opts: opts, log: log,
		lim:    &limiter{max: opts.MaxFailures, window: opts.Window, lockout: opts.Lockout, now: opts.Now, peers: map[string]*attempts{}},
		checks: make(chan struct{}, maxChecks)}
	// The dummy costs what the shares' hashes cost.
	srv.dummy = passwordHash{p: defaultParams, salt: make([]byte, argonSaltLen), key: make([]byte, argonKeyLen)}
	for _, n := range cfg.Names() {
		if s := cfg.Shares[n]; s.pw.key != nil {
			srv.dummy.p = s.pw.p
			break
		}
	}
	return srv, nil
}

// Serve answers the one request on st from p, then closes st. For get and
// put it runs the transfer (xfer) on st after the answer. Refused requests
// are answered and logged, and return nil; the error is a failure to read the
// request, to answer, or of the transfer.
func (srv *Server) Serve(ctx context.Context, st Stream, p Peer) error {
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Close() })
	defer stop()
	srv.lim.prune()

	// A peer that opens a stream and says nothing is not waited for long.
	dl, hasDeadline := st.(interface{ SetReadDeadline(time.Time) error })
	if hasDeadline {
		dl.SetReadDeadline(time.Now().Add(requestTime))
	}
	var req request
	err := readMsg(st, maxRequest, &req)
	if hasDeadline {
		dl.SetReadDeadline(time.Time{})
	}
	if err != nil {
		srv.log.Warn("share: bad request", "peer", p.Name, "fingerprint", p.Fingerprint, "err", err)
		writeMsg(st, response{V: Version, Status: StatusBadRequest, Msg: "malformed request"})
		return fmt.Errorf("share: reading the request from %s: %w", p.Name, err)
	}
	a := srv.log.With("peer", p.Name, "fingerprint", p.Fingerprint, "op", req.Op, "share", req.Share)
	answer := func(r response, attrs ...any) error {
		r.V = Version
		level := slog.LevelInfo
		if r.Status != StatusOK {
			level = slog.LevelWarn
			attrs = append(attrs, "result", r.Msg)
		} else {
			attrs = append(attrs, "result", "ok")
		}
		a.Log(ctx, level, "share: "+req.Op, attrs...)
		if err := writeMsg(st, r); err != nil {
			return fmt.Errorf("share: answering %s: %w", p.Name, err)
		}
		if r.Status != StatusOK || req.Op == OpList || req.Op == OpLs {
			linger(st)
		}
		return nil
	}
	if req.V != Version {
		return answer(response{Status: StatusBadRequest, Msg: fmt.Sprintf("protocol version %d not spoken here (this peer speaks %d)", req.V, Version)})
	}
	switch req.Op {
	case OpList:
		var infos []ShareInfo
		for _, n := range srv.cfg.Names() {
			s := srv.cfg.Shares[n]
			if srv.cfg.allows(s, p.Fingerprint) {
				infos = append(infos, ShareInfo{Name: n, ReadWrite: s.ReadWrite, Password: s.PasswordHash != ""})
			}
		}
		return answer(response{Shares: infos}, "count", len(infos))
	case OpLs, OpGet, OpPut:
	default:
		return answer(response{Status: StatusBadRequest, Msg: fmt.Sprintf("unknown operation %q", req.Op)})
	}

	// A share open to the peer without a password has nothing to guess:
	// its requests are never counted nor refused as locked (the peer knows
	// it is open: list says so). Every other request counts against one
	// budget per peer, over all share names, so that naming other shares
	// gives no more guesses.
	//
	// A request that gives a password has it checked (against the
	// share's hash, or a dummy one): that takes 64 MiB and most of a CPU,
	// so a few run at once, and each counts as failed until it is done,
	// so that guesses sent at once on many streams get no more tries than
	// guesses sent in turn. Other requests are only refused while the
	// peer is locked out.
	s := srv.cfg.Shares[req.Share]
	if s == nil || s.pw.key != nil || !srv.cfg.allows(s, p.Fingerprint) {
		check := req.Password != ""
		if check {
			ok, l := srv.lim.begin(ctx, p.Fingerprint)
			if !ok && ctx.Err() != nil {
				return ctx.Err()
			}
			if !ok {
				return answer(response{Status: StatusLocked, Msg: lockedMsg(l)})
			}
			select {
			case srv.checks <- struct{}{}:
			case <-ctx.Done():
				srv.lim.end(p.Fingerprint, req.Share, false)
				return ctx.Err()
			}
		} else if locked, l := srv.lim.locked(p.Fingerprint); locked {
			return answer(response{Status: StatusLocked, Msg: lockedMsg(l)})
		}
		s = srv.authorize(&req, p)
		var lockedOut bool
		if check {
			<-srv.checks
			lockedOut = srv.lim.end(p.Fingerprint, req.Share, s == nil)
		} else if s == nil {
			lockedOut = srv.lim.fail(p.Fingerprint, req.Share)
		}
		if lockedOut {
			a.Warn("share: too many failed attempts; peer locked out", "for", srv.opts.Lockout)
		}
	}
	if s == nil {
		return answer(response{Status: StatusDenied, Msg: deniedMsg})
	}

	switch req.Op {
	case OpLs:
		entries, truncated, err := list(s.root, req.Path)
		if err != nil {
			return answer(pathError(err), "path", req.Path)
		}
		return answer(response{Entries: entries, Truncated: truncated}, "path", req.Path, "count", len(entries))
	case OpGet:
		if len(req.Paths) == 0 {
			req.Paths = []string{""}
		}
		if len(req.Paths) > 1000 {
			return answer(response{Status: StatusBadRequest, Msg: "at most 1000 paths per request"})
		}
		local := make([]string, len(req.Paths))
		for i, rp := range req.Paths {
			real, _, err := resolve(s.root, rp)
			if err != nil {
				r := pathError(err)
				r.Msg = fmt.Sprintf("%s: %s", rp, r.Msg)
				return answer(r, "paths", req.Paths)
			}
			local[i] = real
		}
		if err := answer(response{}, "paths", req.Paths); err != nil {
			return err
		}
		res, err := xfer.Send(ctx, st, local, xfer.SendOptions{Compress: srv.opts.Compress || req.Compress, Progress: srv.opts.sendProgress, Logger: a, Hashes: srv.opts.Hashes})
		return srv.done(a, "get", res, err)
	case OpPut:
		if !s.ReadWrite {
			return answer(response{Status: StatusReadOnly, Msg: "the share is read-only"}, "path", req.Path)
		}
		dir, err := resolveDir(s.root, req.Path)
		if err != nil {
			return answer(pathError(err), "path", req.Path)
		}
		if err := answer(response{}, "path", req.Path); err != nil {
			return err
		}
		res, err := xfer.Receive(ctx, st, dir, xfer.ReceiveOptions{Overwrite: req.Overwrite, Logger: a})
		return srv.done(a, "put", res, err)
	}
	return nil
}

// requestTime bounds how long the server waits for the request.
const requestTime = 30 * time.Second

// lingerTime bounds how long the server waits for the client to read a final
// answer and close.
const lingerTime = 10 * time.Second

// linger ends the server's side of st after its final answer and waits
// (briefly) for the client to finish too: closing a stream whose peer is
// still sending resets it, and a reset may overtake the answer.
func linger(st Stream) {
	st.CloseWrite()
	if d, ok := st.(interface{ SetReadDeadline(time.Time) error }); ok {
		d.SetReadDeadline(time.Now().Add(lingerTime))
	}
	io.Copy(io.Discard, io.LimitReader(st, maxRequest))
}

// done logs the end of a transfer.
func (srv *Server) done(a *slog.Logger, what string, res xfer.Result, err error) error {
	files := 0
	for _, f := range res.Files {
		if !f.Dir && (f.Status == xfer.StatusDone || f.Status == xfer.StatusPresent) {
			files++
		}
	}
	if err != nil {
		a.Warn("share: "+what+" failed", "files", files, "bytes", res.Bytes, "resumed", res.Resumed, "err", err)
		return fmt.Errorf("share: %s: %w", what, err)
	}
	a.Info("share: "+what+" done", "files", files, "bytes", res.Bytes, "resumed", res.Resumed)
	return nil
}

// authorize returns the share req names if p may see it and gave the right
// password, or nil. Every refusal looks the same from outside, including how
// long it takes: a password given for a share that does not exist or that p
// may not see is hashed all the same.
func (srv *Server) authorize(req *request, p Peer) *Share {
	s := srv.cfg.Shares[req.Share]
	visible := s != nil && srv.cfg.allows(s, p.Fingerprint)
	needPW := visible && s.pw.key != nil
	switch {
	case needPW:
		if req.Password == "" || !s.pw.verify(req.Password) {
			return nil
		}
	case req.Password != "":
		srv.dummy.verify(req.Password)
	}
	if !visible {
		return nil
	}
	return s
}

// lockedMsg says why a peer is refused, naming the shares whose failed
// attempts locked it out (names it gave itself: no existence is revealed),
// and that shares open without a password are not locked.
func lockedMsg(l lock) string {
	on := make([]string, len(l.on))
	for i, n := range l.on {
		on[i] = strconv.Quote(n)
	}
	return fmt.Sprintf("too many failed attempts on %s (a wrong or missing password, or a share not open to you): "+
		"shares that need a password are refused for %d s more; shares open without one still work",
		strings.Join(on, ", "), int64((l.wait+time.Second-1)/time.Second))
}

// pathError turns a path failure into an answer.
func pathError(err error) response {
	switch {
	case errors.Is(err, errBadPath):
		// What is wrong with it, if said, else that it is wrong.
		var bp *badPathError
		if errors.As(err, &bp) {
			return response{Status: StatusBadPath, Msg: bp.Error()}
		}
		return response{Status: StatusBadPath, Msg: errBadPath.Error()}
	case errors.Is(err, errOutside):
		return response{Status: StatusForbidden, Msg: errOutside.Error()}
	case errors.Is(err, errSpecial):
		return response{Status: StatusForbidden, Msg: errSpecial.Error()}
	case errors.Is(err, fs.ErrNotExist):
		return response{Status: StatusNotFound, Msg: "no such file or folder"}
	}
	return response{Status: StatusInternal, Msg: "the serving peer failed to read it (its log says why)"}
}

// list lists the folder (or describes the file) at the wire path p.
func list(root, p string) ([]Entry, bool, error) {
	real, fi, err := resolve(root, p)
	if err != nil {
		return nil, false, err
	}
	if !fi.IsDir() {
		return []Entry{entryOf(fi.Name(), fi)}, false, nil
	}
	f, err := os.Open(real)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	des, err := f.ReadDir(maxEntries + 1)
	if err != nil && len(des) == 0 && !errors.Is(err, io.EOF) {
		return nil, false, err
	}
	truncated := len(des) > maxEntries
	if truncated {
		des = des[:maxEntries]
	}
	entries := make([]Entry, 0, len(des))
	for _, de := range des {
		if strings.EqualFold(de.Name(), partialDir) {
			continue // unfinished puts, in whatever folder they go
		}
		info, err := de.Info() // lstat: links are listed, not followed
		if err != nil {
			continue
		}
		entries = append(entries, entryOf(de.Name(), info))
	}
	slicesSortEntries(entries)
	return entries, truncated, nil
}

func entryOf(name string, fi fs.FileInfo) Entry {
	e := Entry{Name: name, Mtime: fi.ModTime().UnixNano(), Mode: uint32(fi.Mode().Perm())}
	switch m := fi.Mode(); {
	case m.IsRegular():
		e.Type, e.Size = "file", fi.Size()
	case m.IsDir():
		e.Type = "dir"
	case m&fs.ModeSymlink != 0:
		e.Type = "link"
	default:
		e.Type = "other"
	}
	return e
}

func slicesSortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
}
