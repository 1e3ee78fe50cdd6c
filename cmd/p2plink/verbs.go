package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/p2plink/p2plink/internal/printable"
	"github.com/p2plink/p2plink/link"
	"github.com/p2plink/p2plink/peer"
	"github.com/p2plink/p2plink/peer/xfer"
	"golang.org/x/term"
)

// Service names: each stream is opened for one of these.
const (
	svcXfer = "xfer"
	svcChat = "chat"
	svcPipe = "pipe"
)

// connect waits for the peer and reports who it is. On a multi-peer link
// the peer is the one --to names (or the only one there); verbs that only
// answer (receive, serve) take whichever peer comes first.
func (e *env) connect(ctx context.Context, o *options, ep *peer.Endpoint, verb string) (*peer.Session, error) {
	until := "Ctrl-C to stop"
	wctx := ctx
	if o.wait > 0 {
		until = fmt.Sprintf("for %v at most", o.wait)
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, o.wait)
		defer cancel()
	}
	fmt.Fprintf(e.stderr, "waiting for the peer on %s (%s)…\n", where(ep.Link()), until)
	s, err := e.connectWithin(wctx, o, ep, verb)
	if err != nil && ctx.Err() == nil && errors.Is(wctx.Err(), context.DeadlineExceeded) {
		return nil, noPeerError(o, ep)
	}
	return s, err
}

// noPeerError says that --wait ran out, and what to check.
func noPeerError(o *options, ep *peer.Endpoint) error {
	who := "no peer answered"
	if o.to != "" {
		who = "no peer named " + strconv.Quote(o.to) + " answered"
	}
	return fmt.Errorf("%s on %s within %v (--wait): is p2plink running at the other end, with the matching verb (send and receive, get and serve, …)?",
		who, ep.Link().LocalAddr(), o.wait)
}

// connectWithin is connect's wait for the session, until ctx ends.
func (e *env) connectWithin(ctx context.Context, o *options, ep *peer.Endpoint, verb string) (*peer.Session, error) {
	var s *peer.Session
	var err error
	switch {
	case !multiPeer(ep):
		s, err = ep.Connect(ctx, nil)
		for answering(verb) && err != nil && ctx.Err() == nil && (lostBeforeSession(err) || verb == "serve" && fatal(err)) {
			// A client that gave up (or restarted) before the session
			// was set up is no reason for the end that waits for one to
			// stop: wait for the next. Nor, for a server, is a client it
			// refused (a changed key, another than --peer names, another
			// protocol version): said loudly, and the next one served.
			if fatal(err) {
				fmt.Fprintf(e.stderr, "refused a client: %v; serving on\n", err)
			} else {
				fmt.Fprintf(e.stderr, "no session (%v); waiting on\n", err)
			}
			s, err = ep.Connect(ctx, nil)
		}
	case o.to == "" && answering(verb):
		s, err = ep.Accept(ctx)
	default:
		stop := e.hintWhileFinding(ctx, ep, o.to)
		var nb peer.Neighbor
		nb, err = ep.FindNeighbor(ctx, o.to)
		stop()
		if err == nil {
			s, err = ep.ConnectNeighbor(ctx, nb)
		}
		err = explainFind(err)
	}
	if err != nil {
		return nil, err
	}
	pi := s.Peer()
	note := ""
	switch {
	case pi.Pinned:
		note = " (new peer: key pinned)"
	case pi.KnownAs != "":
		note = fmt.Sprintf(" (the key pinned as %s: %s renamed itself %s)", pi.KnownAs, pi.KnownAs, pi.Name)
	}
	fmt.Fprintf(e.stderr, "connected to %s, fingerprint %s%s\n", pi.Name, pi.Fingerprint, note)
	return s, nil
}

// findError is FindNeighbor's refusal said in the command's terms (--to);
// it unwraps to the refusal.
type findError struct {
	msg string
	err error
}

func (e *findError) Error() string { return e.msg }
func (e *findError) Unwrap() error { return e.err }

// explainFind says which --to picks a peer when several are there (or
// several match), suggesting fingerprints only where names repeat.
func explainFind(err error) error {
	var amb *peer.AmbiguousError
	if !errors.As(err, &amb) {
		return err
	}
	list := make([]string, len(amb.Peers))
	for i, nb := range amb.Peers {
		list[i] = nb.Name + " " + nb.Fingerprint
	}
	peers := strings.Join(list, ", ")
	if amb.Query != "" {
		return &findError{fmt.Sprintf("--to %s matches %d peers (%s): name one with --to FINGERPRINT",
			amb.Query, len(amb.Peers), peers), err}
	}
	how := "name one with --to NAME"
	switch rep := amb.RepeatedNames(); {
	case len(rep) == 1 && amb.Peers[0].Name == amb.Peers[len(amb.Peers)-1].Name:
		how = fmt.Sprintf("they all call themselves %s: name one with --to FINGERPRINT", rep[0])
	case len(rep) > 0:
		how = fmt.Sprintf("name one with --to NAME, or --to FINGERPRINT for %s (names more than one of them use)", strings.Join(rep, ", "))
	}
	return &findError{fmt.Sprintf("%d peers are here (%s): %s", len(amb.Peers), peers, how), err}
}

// findHint is how long a search for a peer by name goes before the command
// says who it does hear, so that a mistyped name or a peer on another
// segment shows at once.
const findHint = 3 * time.Second

// hintWhileFinding prints, once findHint has passed, which peers the link
// hears while the command waits for the one named to (or that it hears
// none). The returned function stops it, and returns once it cannot print.
func (e *env) hintWhileFinding(ctx context.Context, ep *peer.Endpoint, to string) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTimer(findHint)
		defer t.Stop()
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		nbs := ep.Neighbors()
		if len(nbs) == 0 {
			fmt.Fprintf(e.stderr, "no peer heard on %s yet: is p2plink running at the other end, on the same segment?\n", ep.Link().LocalAddr())
			return
		}
		names := make([]string, len(nbs))
		for i, nb := range nbs {
			names[i] = nb.Name + " (" + nb.Fingerprint + ")"
		}
		what := "no peer named " + strconv.Quote(to)
		if to == "" {
			what = "more than one peer"
		}
		fmt.Fprintf(e.stderr, "%s heard yet; the peers here: %s\n", what, strings.Join(names, ", "))
	}()
	return func() {
		close(done)
		<-finished
	}
}

// turnAway answers, while a one-shot receive runs with its peer busy,
// every other peer that sends to it on the segment: that we are busy, so
// that it fails at once instead of waiting for a hello until its timeout.
// A new session of the busy peer itself (it restarted, and comes back to
// resume) is not turned away but kept, and returned by stop, which ends
// the rest and waits for its goroutines.
func (e *env) turnAway(ctx context.Context, ep *peer.Endpoint, busy *peer.Session, me string) (stop func() *peer.Session) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var held *peer.Session
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			s, err := ep.Accept(ctx)
			if err != nil {
				return
			}
			if s == busy {
				continue
			}
			if bytes.Equal(s.Peer().PublicKey, busy.Peer().PublicKey) {
				mu.Lock()
				if held != nil {
					held.Close() // an older return of it
				}
				held = s
				mu.Unlock()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				// The session itself is left for the sender to end once it
				// has read why: closing it here could drop the reason.
				for {
					st, err := s.AcceptStream(ctx)
					if err != nil {
						return
					}
					if st.Service() != svcXfer {
						st.Close()
						continue
					}
					xfer.Refuse(st, fmt.Sprintf("%s is busy receiving from another peer; send again when that is done", me))
				}
			}()
		}
	}()
	return func() *peer.Session {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return held
	}
}

// answering reports whether verb waits for a client rather than starting
// something of its own.
func answering(verb string) bool { return verb == "receive" || verb == "serve" }

// lostBeforeSession reports whether Connect failed because the peer went
// away or restarted while the session was set up.
func lostBeforeSession(err error) bool {
	return errors.Is(err, peer.ErrPeerRestarted) || errors.Is(err, peer.ErrPeerGone)
}

// retryable reports whether a failed session is worth connecting again: the
// peer restarted, so a rerun resumes where the transfer stopped.
func retryable(s *peer.Session) bool {
	return s != nil && errors.Is(s.Err(), peer.ErrPeerRestarted)
}

func multiPeer(ep *peer.Endpoint) bool {
	_, ok := ep.Link().(link.Broadcaster)
	return ok
}

// peers lists the neighbors heard on a multi-peer link.
func (e *env) peers(ctx context.Context, ep *peer.Endpoint) error {
	if !multiPeer(ep) {
		return usageError("peers lists the peers of a multi-peer link (eth); a point-to-point link has one")
	}
	// Peers answer our announcement at once; a quiet endpoint makes none,
	// and waits for their periodic ones.
	wait := 2500 * time.Millisecond
	if ep.Quiet() {
		wait = peer.DefaultAnnounceInterval*6/5 + time.Second
	}
	select {
	case <-ctx.Done():
	case <-time.After(wait):
	}
	nbs := ep.Neighbors()
	if len(nbs) == 0 {
		fmt.Fprintln(e.stdout, "no peers heard on this segment")
		return nil
	}
	fmt.Fprintf(e.stdout, "%-20s %-20s %-18s %s\n", "NAME", "FINGERPRINT", "ADDRESS", "LAST SEEN")
	for _, nb := range nbs {
		fmt.Fprintf(e.stdout, "%-20s %-20s %-18s %s ago\n", nb.Name, nb.Fingerprint, nb.Addr, time.Since(nb.LastSeen).Round(100*time.Millisecond))
	}
	return nil
}

// fatal reports errors that another session would meet again.
func fatal(err error) bool {
	return errors.Is(err, peer.ErrVersion) || errors.Is(err, peer.ErrKeyChanged) || errors.Is(err, peer.ErrFingerprintMismatch)
}

func (e *env) runVerb(ctx context.Context, o *options, ep *peer.Endpoint, verb string, args []string) (err error) {
	if verb == "serve" {
		defer func() {
			if ctx.Err() != nil {
				err = nil // serve runs until stopped: a stop is its normal end
			}
		}()
	}
	if verb == "peers" {
		return e.peers(ctx, ep)
	}
	if verb == "serve" {
		// The shares are checked before any peer is awaited: a share
		// folder that does not exist is said now, not to a client.
		if _, err := e.shareServer(o, &o.sf); err != nil {
			return err
		}
		if multiPeer(ep) && o.to == "" {
			return e.serveAll(ctx, o, ep)
		}
	}
	if verb == "send" {
		// Hash while the peer is found and the session set up (a peer
		// that takes late roots stops the pass: what it did not cover is
		// hashed as it is sent); a rerun after a cut takes the roots, or
		// the hashes of what was sent, again, and a later run takes them
		// from the store on disk while the files have not changed.
		o.hashes = xfer.PrepareIn(ctx, args, hashStoreDir())
	}
	var held *peer.Session // the busy peer's new session, taken while turning others away
	for attempt := 0; ; attempt++ {
		var s *peer.Session
		var err error
		if held != nil {
			s, held = held, nil
			fmt.Fprintf(e.stderr, "connected to %s, fingerprint %s\n", s.Peer().Name, s.Peer().Fingerprint)
		} else if s, err = e.connect(ctx, o, ep, verb); err != nil {
			return err
		}
		var stopTurning func() *peer.Session
		if verb == "receive" && multiPeer(ep) {
			stopTurning = e.turnAway(ctx, ep, s, o.displayName())
		}
		err = e.runOnce(ctx, o, s, verb, args)
		if stopTurning != nil {
			held = stopTurning()
		}
		if verb == "serve" && ctx.Err() == nil && !fatal(err) {
			// A server outlives its clients: wait for the next session,
			// for as long as it takes (--wait bounds the first one only).
			o.wait = 0
			s.Close()
			fmt.Fprintf(e.stderr, "%s left (%v); serving on\n", s.Peer().Name, s.Err())
			continue
		}
		if err != nil && retryable(s) && attempt < 20 && ctx.Err() == nil {
			fmt.Fprintf(e.stderr, "the peer restarted: reconnecting to resume\n")
			continue
		}
		// Tell the peer we are done, even after a refusal, so that it
		// need not wait for a dead-peer timeout.
		s.Close()
		if held != nil {
			held.Close()
		}
		return err
	}
}

func (e *env) runOnce(ctx context.Context, o *options, s *peer.Session, verb string, args []string) error {
	switch verb {
	case "send":
		return e.send(ctx, o, s, args)
	case "receive":
		for {
			st, err := s.AcceptStream(ctx)
			if err != nil {
				return err
			}
			if st.Service() != svcXfer {
				st.Close()
				continue
			}
			return e.receive(ctx, o, st)
		}
	case "chat":
		st, err := e.openOrAccept(ctx, s, svcChat, peer.PrioInteractive)
		if err != nil {
			return err
		}
		return e.chat(ctx, o.displayName(), st)
	case "pipe":
		st, err := e.openOrAccept(ctx, s, svcPipe, peer.PrioBulk)
		if err != nil {
			return err
		}
		return xfer.Pipe(ctx, st, e.pipeInput(), e.stdout)
	case "serve":
		return e.serve(ctx, o, s)
	case "ls", "get", "put":
		return e.shareVerb(ctx, o, &o.sf, s, verb, args)
	case "ping":
		return e.ping(ctx, s, o.count)
	}
	return fmt.Errorf("unknown verb %q", verb)
}

// pipeInput is what pipe sends: stdin, unless it is a terminal — then the
// pipe only receives (tar c dir | p2plink … pipe on one end, p2plink … pipe
// | tar x on the other) and ends when the peer's data does.
func (e *env) pipeInput() io.Reader {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return strings.NewReader("")
	}
	return e.stdin
}

// openOrAccept gives both ends of a two-sided service one stream: the
// handshake's initiator opens it, the other end accepts it.
func (e *env) openOrAccept(ctx context.Context, s *peer.Session, service string, prio peer.Priority) (*peer.Stream, error) {
	if s.Initiator() {
		return s.OpenStream(ctx, service, prio)
	}
	for {
		st, err := s.AcceptStream(ctx)
		if err != nil {
			return nil, err
		}
		if st.Service() == service {
			return st, nil
		}
		st.Close()
	}
}

func (e *env) send(ctx context.Context, o *options, s *peer.Session, paths []string) error {
	st, err := s.OpenStream(ctx, svcXfer, peer.PrioBulk)
	if err != nil {
		return err
	}
	rep := newReporter(e.stderr, o.json, "send")
	start := time.Now()
	res, err := xfer.Send(ctx, st, paths, o.sendOptions(rep.update, o.logger(e.stderr)))
	return e.transferDone(s, "sent", rep, res, start, err)
}

// transferDone ends a transfer's report: the progress line, the summary, and
// for a transfer the session cut, how to resume it.
func (e *env) transferDone(s *peer.Session, what string, rep *reporter, res xfer.Result, start time.Time, err error) error {
	rep.finish()
	e.summary(what, res, time.Since(start))
	if err != nil {
		return resumeHint(err, s.Err())
	}
	return nil
}

func (e *env) receive(ctx context.Context, o *options, st *peer.Stream) error {
	rep := newReporter(e.stderr, o.json, "receive")
	start := time.Now()
	res, err := xfer.Receive(ctx, st, o.dir, xfer.ReceiveOptions{
		Overwrite: o.overwrite,
		Progress:  rep.update,
		Logger:    o.logger(e.stderr),
	})
	rep.finish()
	e.summary("received", res, time.Since(start))
	return err
}

// summary lists what became of each file (a name that came from the peer
// shown escaped), and sums the transfer up, with how many entries were
// not sent (skipped: links, special files, names a receiver refuses),
// which a receiver learns from a sender that tells them.
func (e *env) summary(what string, res xfer.Result, d time.Duration) {
	if jl, ok := e.stderr.(*jsonLines); ok && jl.json() {
		e.jsonSummary(jl, what, res, d)
		return
	}
	skipped := 0
	for _, f := range res.Files {
		if f.Status == xfer.StatusSkipped {
			skipped++
		}
		if f.Dir {
			continue
		}
		line := fmt.Sprintf("  %-8s %s (%s)", f.Status, printable.String(f.Name), human(f.Size))
		if f.Resumed > 0 {
			line += fmt.Sprintf(", resumed after %s", human(f.Resumed))
		}
		if f.Err != nil {
			line += ": " + printable.String(f.Err.Error())
		}
		fmt.Fprintln(e.stderr, line)
	}
	rate := float64(res.Bytes) / max(d.Seconds(), 1e-9)
	not := ""
	if skipped > 0 {
		not = fmt.Sprintf("; %d skipped, not sent (listed above)", skipped)
	}
	fmt.Fprintf(e.stderr, "%s %s in %.1fs (%s/s), %s on the wire, %s resumed%s\n",
		what, human(res.Bytes), d.Seconds(), human(int64(rate)), human(res.WireBytes), human(res.Resumed), not)
}

// jsonSummary is summary under --json: one "file" event per file or
// folder, then one "summary" event.
func (e *env) jsonSummary(jl *jsonLines, what string, res xfer.Result, d time.Duration) {
	skipped, failed := 0, 0
	for _, f := range res.Files {
		ev := map[string]any{"event": "file", "name": f.Name, "dir": f.Dir, "status": f.Status.String(), "size": f.Size}
		if f.Resumed > 0 {
			ev["resumed"] = f.Resumed
		}
		if f.Stored != "" && f.Stored != f.Name {
			ev["stored"] = f.Stored
		}
		if f.Err != nil {
			ev["error"] = f.Err.Error()
		}
		switch f.Status {
		case xfer.StatusSkipped:
			skipped++
		case xfer.StatusFailed:
			failed++
		}
		jl.event(ev)
	}
	jl.event(map[string]any{"event": "summary", "what": what, "bytes": res.Bytes, "seconds": d.Seconds(),
		"wire_bytes": res.WireBytes, "resumed": res.Resumed, "files": len(res.Files), "skipped": skipped, "failed": failed})
}

// serve answers whatever the peer asks for until the session ends.
func (e *env) serve(ctx context.Context, o *options, s *peer.Session) error {
	fmt.Fprintf(e.stderr, "serving: files sent to us go to %s\n", o.dir)
	if _, err := e.shareServer(o, &o.sf); err != nil {
		return err
	}
	for {
		st, err := s.AcceptStream(ctx)
		if err != nil {
			if errors.Is(err, peer.ErrPeerClosed) {
				return nil
			}
			return err
		}
		switch st.Service() {
		case svcXfer:
			if err := e.receive(ctx, o, st); err != nil {
				fmt.Fprintf(e.stderr, "receive: %v\n", err)
			}
		case svcChat:
			go e.chat(ctx, o.displayName(), st)
		case svcPipe:
			go xfer.Pipe(ctx, st, e.stdin, e.stdout)
		case svcPing:
			go echo(st)
		case svcShare:
			go func() {
				if err := e.serveShares(ctx, o, &o.sf, s, st); err != nil {
					fmt.Fprintf(e.stderr, "share: %v\n", err)
				}
			}()
		default:
			st.Close()
		}
	}
}

// serveAll serves every peer that connects, each in its own goroutine.
func (e *env) serveAll(ctx context.Context, o *options, ep *peer.Endpoint) error {
	fmt.Fprintf(e.stderr, "serving every peer on %s: files go to %s\n", where(ep.Link()), o.dir)
	// Each peer is served by a goroutine of its own; they have all ended
	// (their sessions end with ctx) before serveAll returns.
	var wg sync.WaitGroup
	defer wg.Wait()
	for first := true; ; first = false {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if first && o.wait > 0 {
			// --wait bounds the wait for the first peer only.
			actx, cancel = context.WithTimeout(ctx, o.wait)
		}
		s, err := ep.Accept(actx)
		timedOut := ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded)
		cancel()
		if err != nil {
			if timedOut {
				return noPeerError(o, ep)
			}
			return err
		}
		pi := s.Peer()
		fmt.Fprintf(e.stderr, "%s (%s) connected\n", pi.Name, pi.Fingerprint)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.serve(ctx, o, s); err != nil {
				fmt.Fprintf(e.stderr, "%s: %v\n", pi.Name, err)
			}
			s.Close() // the peer is told, rather than left waiting
		}()
	}
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// hashStoreDir is where send keeps the hashes of the files it sent, for
// later runs ("" when the system names no cache folder: then it keeps them
// in memory only).
func hashStoreDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(base, "p2plink", "hashes")
}

// where names the link for the user: an Ethernet link by its interface and
// address, others by their address (a serial port's path).
func where(l link.Link) string {
	if n, ok := l.(interface{ Interface() string }); ok {
		if ifi, err := net.InterfaceByName(n.Interface()); err == nil && ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagRunning == 0 {
			return fmt.Sprintf("%s (%s; no carrier: is the cable plugged in, and the other end up?)", n.Interface(), l.LocalAddr())
		}
		return fmt.Sprintf("%s (%s)", n.Interface(), l.LocalAddr())
	}
	return l.LocalAddr().String()
}

// resumeHint adds to a transfer's error what cut its session (se; nil: the
// session lives, and err says it all), unless err says it already, and
// that a rerun resumes.
func resumeHint(err, se error) error {
	switch {
	case se == nil:
		return err
	case strings.Contains(err.Error(), se.Error()):
		return fmt.Errorf("%w; run the same command again to resume", err)
	}
	return fmt.Errorf("%w (%v); run the same command again to resume", err, se)
}

// sendOptions are the options of a send or put.
func (o *options) sendOptions(progress func(xfer.Progress), log *slog.Logger) xfer.SendOptions {
	return xfer.SendOptions{
		Compress:  !o.noCompress,
		Progress:  progress,
		Logger:    log,
		Hashes:    o.hashes,
		HashFirst: o.hashFirst,
	}
}
