package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/p2plink/p2plink/link"
)

// Config sets up an Endpoint. Zero fields take the documented defaults.
type Config struct {
	// Identity is this peer's long-term key. Required.
	Identity *Identity
	// Name is shown to other peers and pins their record of our key.
	// Default: the host name.
	Name string
	// KnownPeers pins peers' keys on first contact; nil pins nothing.
	KnownPeers *KnownPeers
	// RequireFingerprint, when set, refuses every peer whose fingerprint
	// differs (compared after NormalizeFingerprint).
	RequireFingerprint string
	// DeadPeerTimeout ends a session after this long without a word from the
	// peer (cable pulled and not put back, peer gone). Default 30 s.
	DeadPeerTimeout time.Duration
	// KeepAlive is how often an idle session proves it is alive (the peer
	// answers at once). Default 1 s, and at most a third of DeadPeerTimeout.
	KeepAlive time.Duration
	// Window is the most packets in flight. Default: what holds 4 MiB at
	// the link's MTU, from 512 to 2048 packets — enough to ride out the
	// scheduling pauses of a busy machine on a fast link.
	Window int
	// MaxSegment caps the payload of one packet, in bytes. Default: what the
	// link's MTU allows.
	MaxSegment int
	// FixedSegment turns off adapting the segment size to the frame error
	// rate.
	FixedSegment bool
	// AnnounceInterval is how often the endpoint announces itself on a
	// multi-peer link. Default 5 s (and three times in the first half
	// second).
	AnnounceInterval time.Duration
	// Quiet makes an endpoint that only listens to announcements (to list
	// the peers on a segment beside another endpoint on the same interface,
	// see ethnet.Config.Exclusive): it never announces itself, answers no
	// hello and starts no session. Neighbors fill as the others announce,
	// every AnnounceInterval.
	Quiet bool
	// Logger receives the endpoint's log lines. Default: discard.
	Logger *slog.Logger

	// ciphers overrides the transport ciphers offered (tests).
	ciphers []string
}

func (c *Config) offeredCiphers() []string {
	if c.ciphers != nil {
		return c.ciphers
	}
	return localCiphers()
}

func (c *Config) withDefaults(mtu int) Config {
	d := *c
	if d.Name == "" {
		d.Name, _ = os.Hostname()
	}
	d.Name = cleanName(d.Name)
	if d.DeadPeerTimeout <= 0 {
		d.DeadPeerTimeout = 30 * time.Second
	}
	if d.KeepAlive <= 0 {
		d.KeepAlive = time.Second
	}
	// An idle session must prove itself alive several times within the
	// dead-peer timeout, or a short timeout ends healthy sessions.
	d.KeepAlive = min(d.KeepAlive, d.DeadPeerTimeout/3)
	if d.Window <= 0 {
		d.Window = min(max((4<<20)/max(mtu, 1), 512), 2048)
	}
	if d.Window > 4096 {
		d.Window = 4096
	}
	if d.AnnounceInterval <= 0 {
		d.AnnounceInterval = DefaultAnnounceInterval
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return d
}

// DefaultAnnounceInterval is Config.AnnounceInterval's default.
const DefaultAnnounceInterval = 5 * time.Second

// Quiet reports whether the endpoint only listens (Config.Quiet).
func (e *Endpoint) Quiet() bool { return e.cfg.Quiet }

// cleanName keeps a peer name printable, short and free of spaces.
func cleanName(s string) string {
	out := make([]byte, 0, maxName)
	for _, r := range s {
		if r <= ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			r = '_'
		}
		if len(out)+utf8.RuneLen(r) > maxName {
			break // 64 bytes, so that the handshake fits a 512-byte MTU
		}
		out = utf8.AppendRune(out, r)
	}
	if len(out) == 0 {
		return "peer"
	}
	return string(out)
}

// maxName bounds a peer's name, in bytes, and minMTU the link MTU the
// protocol needs: the handshake's message 2 (keys, and the description
// with that name, the ciphers and the MTU) must fit one packet.
const (
	maxName = 64
	minMTU  = 512
)

// Errors a session ends with. Test with errors.Is.
var (
	ErrPeerGone      = errors.New("peer: no word from the peer within the dead-peer timeout")
	ErrPeerRestarted = errors.New("peer: the peer restarted; connect again")
	ErrPeerClosed    = errors.New("peer: the peer closed the session")
	ErrVersion       = errors.New("peer: the peer speaks another protocol version")
	ErrRefused       = errors.New("peer: the peer refused the session")
	ErrClosed        = net.ErrClosed
)

// maxSessions bounds the sessions of one endpoint, so that a flood of hellos
// from forged addresses cannot exhaust memory. Sessions that never finish
// their handshake end after the dead-peer timeout.
const maxSessions = 64

// Endpoint speaks the peer protocol on one link. It owns the link: Close
// closes it. On a point-to-point link it has at most one session at a time;
// on a multi-peer link, one per peer address.
type Endpoint struct {
	l    link.Link
	cfg  Config
	mtu  int
	done chan struct{}
	wg   sync.WaitGroup

	heard chan struct{} // a neighbor was heard

	mu        sync.Mutex
	sessions  map[string]*Session
	neighbors map[string]*Neighbor
	refused   map[string]error // why the last session with an address was refused
	accepted  chan *Session
	closed    bool
	// The key of the address the last packet came from: a link that hands
	// out the same address value for a peer's every frame (ethnet's
	// cached *packet.Addr) then costs no String call per packet.
	lastAddr net.Addr
	lastKey  string

	// The read token: whoever holds it reads the link and dispatches what
	// comes, using rbuf. The read loop holds it, except in lead mode, when
	// a stream reader blocked in Read takes it and reads the link itself, so
	// that a packet reaches its reader without a hand-off between
	// goroutines (see Stream.Read). Guarded by rmu, which is taken after
	// any other lock and held around no other.
	rmu      sync.Mutex
	rbuf     []byte
	reading  bool          // someone holds the token
	leader   bool          // ...and it is a stream reader
	leadMode bool          // stream readers take the token; the read loop stands aside
	leadGen  uint64        // counts the tokens stream readers took
	intr     bool          // the link's read deadline is in the past to interrupt the leader
	noLead   bool          // the link failed under a leader: the read loop reads, with its backoff
	loopIdle bool          // the read loop waits, with no timer, for the leader to let go
	loopC    chan struct{} // wakes the read loop
	waitq    []*Stream     // stream readers with no deadline waiting for data
	wantLead bool          // a stream reader waited for the read loop
	needRead bool          // needReader came while a leader held the token
	leadSess *Session      // the leader's session, while it dispatches (guarded by the token)
	lazy     []*Session    // the read loop's scratch for checkLazyAcks
	loopPkts atomic.Uint64 // packets the read loop read (tests)
}

// leadCheck is how often the read loop checks, in lead mode, that stream
// readers still take the read token, and arms the timers of acks left lazy
// (see Stream.ready). A token left alone for one to two periods (the
// readers stopped reading) goes back to the read loop; readers that do not
// lead and blocked writers ask for it at once (needReader). A period above
// a millisecond keeps the timer from shaping the runtime's scheduling of a
// fast ping-pong; one short of the RTO bounds the delay of a lazy ack.
const leadCheck = 5 * time.Millisecond

// NewEndpoint starts the peer protocol on l. Sessions start when the peer
// says hello or Connect is called.
func NewEndpoint(l link.Link, cfg Config) (*Endpoint, error) {
	if cfg.Identity == nil {
		return nil, errors.New("peer: Config.Identity is required")
	}
	if l.MTU() < minMTU {
		return nil, fmt.Errorf("peer: link MTU %d is below the %d bytes the protocol needs", l.MTU(), minMTU)
	}
	e := &Endpoint{
		l:         l,
		cfg:       cfg.withDefaults(l.MTU()),
		mtu:       l.MTU(),
		done:      make(chan struct{}),
		sessions:  make(map[string]*Session),
		neighbors: make(map[string]*Neighbor),
		refused:   make(map[string]error),
		accepted:  make(chan *Session, 16),
		heard:     make(chan struct{}, 1),
		rbuf:      make([]byte, l.MTU()),
		loopC:     make(chan struct{}, 1),
	}
	e.wg.Add(1)
	go e.readLoop()
	if b, ok := l.(link.Broadcaster); ok && !e.cfg.Quiet {
		e.wg.Add(1)
		go e.announceLoop(b)
	}
	return e, nil
}

// Connect starts (or joins) the session with the peer at addr — nil on a
// point-to-point link — and returns it once the handshake is done.
func (e *Endpoint) Connect(ctx context.Context, addr net.Addr) (*Session, error) {
	return e.connect(ctx, addr, nil, false)
}

// connect is Connect. A session it starts refuses a peer that proves
// another key than want (if set), and with byKey checks the pin of want
// rather than of the peer's name (see KnownPeers.check). A session the
// peer started first is checked as any.
func (e *Endpoint) connect(ctx context.Context, addr net.Addr, want []byte, byKey bool) (*Session, error) {
	if addr == nil {
		addr = link.PeerAddr
	}
	if e.cfg.Quiet {
		return nil, errors.New("peer: a quiet endpoint starts no sessions (Config.Quiet)")
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	if err := e.refused[addr.String()]; err != nil {
		delete(e.refused, addr.String())
		e.mu.Unlock()
		return nil, err
	}
	s := e.sessions[addr.String()]
	if s == nil {
		s = newSession(e, addr)
		// Set before the session is in the map, where the reader finds it.
		s.wantKey, s.byKey = want, byKey && want != nil
		e.sessions[addr.String()] = s
	}
	s.claimed = true
	e.mu.Unlock()
	select {
	case <-s.ready:
		return s, nil
	case <-s.done:
		return nil, s.err
	case <-ctx.Done():
		s.fail(ctx.Err())
		return nil, fmt.Errorf("peer: no session with the peer: %w (is the other end running, and the cable in?)", ctx.Err())
	}
}

// Accept returns the next session that a peer started and no Connect
// claimed.
func (e *Endpoint) Accept(ctx context.Context) (*Session, error) {
	select {
	case s := <-e.accepted:
		return s, nil
	case <-e.done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close ends every session at once, closes the link and waits for the
// endpoint's goroutines.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	ss := make([]*Session, 0, len(e.sessions))
	for _, s := range e.sessions {
		ss = append(ss, s)
	}
	e.mu.Unlock()
	for _, s := range ss {
		s.fail(ErrClosed)
	}
	close(e.done)
	err := e.l.Close()
	e.wg.Wait()
	return err
}

// Link returns the endpoint's link.
func (e *Endpoint) Link() link.Link { return e.l }

func (e *Endpoint) forget(s *Session, err error) {
	e.mu.Lock()
	if e.sessions[s.key] == s {
		delete(e.sessions, s.key)
	}
	if !s.claimed && (errors.Is(err, ErrVersion) || errors.Is(err, ErrRefused) || errors.Is(err, ErrKeyChanged) || errors.Is(err, ErrFingerprintMismatch)) {
		// No Connect waits for it: keep the reason for the next one.
		e.refused[s.key] = err
	}
	e.mu.Unlock()
}

// readLoop reads the link whenever no stream reader leads (see lead).
func (e *Endpoint) readLoop() {
	defer e.wg.Done()
	t := time.NewTimer(leadCheck)
	defer t.Stop()
	seen := ^uint64(0) // leadGen at the last check
	led := false       // lead mode was on: readers may have left acks lazy
	e.rmu.Lock()
	for {
		if e.leadMode {
			led = true
			timed := true
			switch {
			case e.noLead:
				e.leadMode = false
			case e.reading && e.leadGen == seen:
				// A leader has waited for a packet since the last check:
				// it wakes us when it lets go.
				e.loopIdle, timed = true, false
			case e.reading || e.leadGen != seen:
				// Readers lead: check again later.
			default:
				// The token lay unused for a whole period: the readers
				// stopped reading. Take it back.
				e.leadMode = false
			}
			if e.leadMode {
				seen = e.leadGen
				e.rmu.Unlock()
				var tc <-chan time.Time
				if timed {
					t.Reset(leadCheck)
					tc = t.C
				}
				select {
				case <-e.loopC:
					seen = ^uint64(0) // a leader let go: give readers a period
				case <-tc:
					e.checkLazyAcks()
				case <-e.done:
					return
				}
				e.rmu.Lock()
				continue
			}
		}
		if led {
			// Lead mode is over, and with it our checks: time the acks
			// readers left lazy now.
			led = false
			e.rmu.Unlock()
			e.checkLazyAcks()
			e.rmu.Lock()
			continue
		}
		// Hold the token through dispatch: it guards rbuf.
		e.reading = true
		e.rmu.Unlock()
		pkt, addr, err := e.readPacket()
		if err == nil && len(pkt) > 0 && addr != nil {
			e.loopPkts.Add(1)
			e.dispatch(pkt, addr)
		}
		e.rmu.Lock()
		e.reading = false
		if err == nil {
			e.noLead = false
			if e.wantLead {
				// A stream reader waited for a packet (maybe this one):
				// let readers read the link themselves from now on.
				e.wantLead = false
				e.leadMode = true
				seen = ^uint64(0) // give them a period to take the token
				for _, st := range e.waitq {
					st.notifyRead()
				}
			}
			continue
		}
		e.rmu.Unlock()
		switch {
		case errors.Is(err, net.ErrClosed):
			return
		case errors.Is(err, io.ErrShortBuffer), errors.Is(err, os.ErrDeadlineExceeded):
		default:
			// Disconnected or odd: wait a little and try again; the link
			// comes back by itself or Close ends us.
			select {
			case <-e.done:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		e.rmu.Lock()
	}
}

// lead gives the read token to st's reader, which has no deadline and
// nothing to read, when stream readers lead. It returns false otherwise,
// with st queued among the waiting readers: the caller waits for st.readC
// and then calls unwait.
func (e *Endpoint) lead(st *Stream) bool {
	e.rmu.Lock()
	defer e.rmu.Unlock()
	if e.leadMode && !e.reading && !e.noLead {
		e.reading, e.leader = true, true
		e.leadGen++
		return true
	}
	e.waitq = append(e.waitq, st)
	e.wantLead = true
	return false
}

// unwait takes st off the waiting readers after a wait that lead queued it
// for. Should the token be free, the next waiting reader is told to take
// it: st may have been told and not taken it.
func (e *Endpoint) unwait(st *Stream) {
	e.rmu.Lock()
	defer e.rmu.Unlock()
	if i := slices.Index(e.waitq, st); i >= 0 {
		e.waitq = slices.Delete(e.waitq, i, i+1)
	}
	if e.leadMode && !e.reading && len(e.waitq) > 0 {
		e.waitq[0].notifyRead()
	}
}

// leadBusy is how many packets a leader may take for others before it
// hands the link back to the read loop when it lets go: traffic that is not
// the leader's (a bulk transfer beside a chat) is better read by the read
// loop, which does not stop to return to an application.
const leadBusy = 4

// frameReader is implemented by links that hand out a frame where it lies
// in their own buffer, valid until their next read (ethnet's ReadFrame).
type frameReader interface {
	ReadFrame() ([]byte, net.Addr, error)
}

// readPacket reads the next packet: from the link's own buffer where it
// offers one, sparing a copy, or copied into rbuf. It is valid until the
// next read; the caller holds the read token, and dispatches it before
// giving the token up.
func (e *Endpoint) readPacket() ([]byte, net.Addr, error) {
	if fr, ok := e.l.(frameReader); ok {
		return fr.ReadFrame()
	}
	n, addr, err := e.l.ReadFrom(e.rbuf)
	if err != nil {
		return nil, addr, err
	}
	return e.rbuf[:n], addr, nil
}

// leadRead reads the link and dispatches what comes, holding the read
// token, until st has something for its reader (ready reports it) or the
// link fails; then it gives the token up.
func (e *Endpoint) leadRead(st *Stream) {
	pkts := 0
	defer func() { e.release(pkts > leadBusy) }()
	for {
		// Look first: a Close, deadline or session end that came between
		// the reader's own look and its taking the token found no leader
		// to interrupt, and the link may stay silent.
		if st.ready() {
			return
		}
		pkt, addr, err := e.readPacket()
		if err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				// interrupt's doing (or a stale deadline): clear it, and
				// see what the reader has.
				e.rmu.Lock()
				e.clearIntrLocked()
				e.rmu.Unlock()
			case errors.Is(err, io.ErrShortBuffer):
			default:
				// Closed or disconnected: the read loop handles the link.
				e.rmu.Lock()
				e.noLead, e.leadMode = true, false
				e.rmu.Unlock()
				select {
				case e.loopC <- struct{}{}:
				default:
				}
				return
			}
		} else if len(pkt) > 0 && addr != nil {
			pkts++
			e.leadSess = st.s
			e.dispatch(pkt, addr)
			e.leadSess = nil
		}
	}
}

// release gives the read token up and tells whoever should take it next:
// a waiting reader, or with busy the read loop, which then ends lead mode.
func (e *Endpoint) release(busy bool) {
	e.rmu.Lock()
	defer e.rmu.Unlock()
	e.reading, e.leader = false, false
	e.clearIntrLocked()
	if e.needRead {
		// A reader that does not lead, or a blocked writer, asked for
		// the read loop while we held the token.
		e.needRead, busy = false, true
	}
	if busy {
		e.leadMode = false
	}
	if len(e.waitq) > 0 {
		e.waitq[0].notifyRead()
	}
	if e.loopIdle || busy {
		e.loopIdle = false
		select {
		case e.loopC <- struct{}{}:
		default:
		}
	}
}

// needReader ends lead mode at once when nobody reads the link: a reader
// that does not lead or a blocked writer waits for what comes in.
func (e *Endpoint) needReader() {
	e.rmu.Lock()
	defer e.rmu.Unlock()
	if !e.leadMode {
		return
	}
	if e.reading && e.leader {
		e.needRead = true // release ends lead mode
		return
	}
	e.leadMode = false
	select {
	case e.loopC <- struct{}{}:
	default:
	}
}

// checkLazyAcks arms the timers of acks that readers left lazy and whose
// applications neither replied nor read again.
func (e *Endpoint) checkLazyAcks() {
	e.mu.Lock()
	e.lazy = e.lazy[:0]
	for _, s := range e.sessions {
		e.lazy = append(e.lazy, s)
	}
	e.mu.Unlock()
	for _, s := range e.lazy {
		s.mu.Lock()
		s.armLazyAck()
		s.mu.Unlock()
	}
	clear(e.lazy)
}

func (e *Endpoint) clearIntrLocked() {
	if e.intr {
		e.intr = false
		e.l.SetReadDeadline(time.Time{})
	}
}

// interrupt makes a stream reader that leads stop waiting for the link and
// look at its stream again: it was closed, its deadline changed, or its
// session ended.
func (e *Endpoint) interrupt() {
	e.rmu.Lock()
	defer e.rmu.Unlock()
	if e.reading && e.leader && !e.intr {
		e.intr = true
		e.l.SetReadDeadline(time.Unix(1, 0))
	}
}

// keyLocked returns addr.String(), remembered for the last address seen
// when it is a pointer (ethnet's *packet.Addr, one per peer): the same
// pointer names the same peer, and comparing pointers cannot panic, as ==
// can on a struct that holds a slice in an interface.
func (e *Endpoint) keyLocked(addr net.Addr) string {
	if addr == nil {
		return link.PeerAddr.String()
	}
	if e.lastAddr != nil && reflect.TypeOf(addr).Kind() == reflect.Pointer && addr == e.lastAddr {
		return e.lastKey
	}
	e.lastAddr, e.lastKey = addr, addr.String()
	return e.lastKey
}

func (e *Endpoint) dispatch(pkt []byte, addr net.Addr) {
	if pkt[0] == kindAnnounce {
		e.onAnnounce(pkt, addr)
		return
	}
	if e.cfg.Quiet {
		return
	}
	e.mu.Lock()
	key := e.keyLocked(addr)
	s := e.sessions[key]
	if s == nil && pkt[0] == kindHello && !e.closed && len(e.sessions) < maxSessions {
		s = newSession(e, addr)
		e.sessions[key] = s
	}
	e.mu.Unlock()
	if s == nil {
		return
	}
	if restart := s.handle(pkt); restart {
		// The peer restarted: the old session is over; start a new one
		// from this hello.
		e.mu.Lock()
		ns := e.sessions[key]
		if (ns == nil || ns == s) && !e.closed {
			ns = newSession(e, addr)
			e.sessions[key] = ns
		}
		e.mu.Unlock()
		if ns != nil && ns != s { // nil: the endpoint closed meanwhile
			ns.handle(pkt)
		}
	}
}
