package peer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/flynn/noise"
	"github.com/p2plink/p2plink/link"
)

var cipherSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)

// minRTO is the shortest retransmission timeout. Losses inside a window
// are found by later acks long before it; it matters for the last packets of
// a burst and keeps queueing delay on slow lines (which grows the round trip
// faster than the estimate follows) from causing spurious resends.
const minRTO = 200 * time.Millisecond

// reorderThreshold is how many later transmissions must be acked before a
// packet counts as lost.
const reorderThreshold = 1

// ackDelay is how long the ack of a lone packet may wait for a packet going
// back to carry it. It is far below any retransmission timeout, and only a
// lone packet's round-trip sample includes it.
const ackDelay = time.Millisecond

type sessState int

const (
	stHello       sessState = iota // saying hello, waiting for the peer's
	stInitiator                    // sent message 1, waiting for message 2
	stResponder                    // waiting for message 1, or sent message 2 and waiting for 3
	stEstablished                  // transport keys in place
)

// PeerInfo describes the peer at the other end of a session.
type PeerInfo struct {
	Name        string
	Fingerprint string
	PublicKey   []byte
	Addr        net.Addr
	// Pinned is true when this session pinned the peer's key for the first
	// time.
	Pinned bool
	// KnownAs is the name the peer's key is pinned under, when the peer,
	// chosen by its fingerprint, now uses another name (see
	// Endpoint.ConnectNeighbor and Config.RequireFingerprint); "" otherwise.
	KnownAs string
}

type helloPayload struct {
	Name string `json:"name"`
	Soft string `json:"soft,omitempty"`
	// Ciphers lists the transport ciphers the end offers, best first.
	Ciphers []string `json:"ciphers,omitempty"`
	// MTU is the largest packet the end's link carries: each end sends
	// packets no larger than the smaller of the two (a serial port set to
	// another --mtu, a jumbo-frame NIC talking to one without).
	MTU int `json:"mtu,omitempty"`
}

// sendSlot is one reliable packet between sending and its acknowledgement.
type sendSlot struct {
	buf         []byte // the whole encrypted packet, resent verbatim
	n           int
	seq         uint64
	sentAt      time.Time // the last transmission
	prevSentAt  time.Time // the one before it, if it was resent
	order       uint64    // transmission count at the last send
	delivered   uint64    // bytes delivered when it was sent
	deliveredAt time.Time // when the last of those was acked
	firstSentAt time.Time // when the last of those was sent
	retrans     int
	timeout     time.Duration // retransmission timeout set when sent
	inFlight    bool          // sent and neither acked nor declared lost
	lost        bool          // waiting to be sent again
	acked       bool
}

// hsAttempt is a handshake with one incarnation of the peer (one peer
// nonce), set aside while the session follows another.
type hsAttempt struct {
	peerNonce uint64
	initiator bool
	state     sessState
	hs        *noise.HandshakeState
	hsOut     []byte
}

// maxAttempts bounds the handshakes a session sets aside: a forger must
// put more distinct initiations than this on the line between two of the
// real peer's messages to lose its handshake (then taken up again from
// its next message 1, or its hello).
const maxAttempts = 16

type recvSlot struct {
	buf     []byte
	n       int
	present bool
}

// Session is an encrypted, reliable session with one peer, carrying any
// number of streams. It is safe for concurrent use.
type Session struct {
	e       *Endpoint
	addr    net.Addr
	key     string
	cfg     *Config
	claimed bool // guarded by e.mu

	// wantKey, if set, is the only key the peer may prove; byKey: the
	// user chose the peer by that key, so its pin, not its name's, is
	// checked. Both are set before the session is shared.
	wantKey []byte
	byKey   bool

	ready chan struct{} // closed when established
	done  chan struct{} // closed when the session ended
	wake  chan struct{}
	wg    sync.WaitGroup

	mu    sync.Mutex
	err   error
	state sessState
	info  PeerInfo

	// handshake
	nonce, peerNonce uint64
	hs               *noise.HandshakeState
	hsOut            []byte    // handshake message to (re)send
	hsDue            bool      // send hsOut (or hello) now
	hsNext           time.Time // next resend
	hsBackoff        time.Duration
	sendCipher       transportCipher
	recvCipher       transportCipher
	peerCiphers      []string // what the peer offered in the handshake
	cipher           string   // the transport cipher in use
	initiator        bool
	// Handshakes with other incarnations of the peer (other peer
	// nonces), set aside for the current one: a message of one of them
	// takes it up again (see switchAttempt).
	attempts []hsAttempt

	// reliable sending
	slots         []sendSlot
	sndUna        uint64    // oldest unacked
	sndNxt        uint64    // next sequence number
	order         uint64    // transmissions so far
	maxAcked      uint64    // highest order acked
	maxAckedFirst uint64    // highest order acked of a first transmission
	ambOrder      uint64    // order of a resent packet acked that may answer an earlier copy (0: none)
	ambAt         time.Time // when, with no original acked meanwhile, it counts (see detectGaps)
	lastTimeout   time.Time // when the retransmission timer last fired
	inflight      int       // bytes in flight
	delivered     uint64    // bytes acked so far
	deliveredAt   time.Time // when the last of them was acked
	firstSentAt   time.Time // when the last of them was sent
	lostQ         []uint64
	ctrlCtr       uint64
	lastSent      time.Time

	// path estimates
	srtt, rttvar time.Duration
	minRTT       time.Duration
	rto          time.Duration
	bw           [8]float64 // bytes/s, per round
	bwRound      int
	bwPeak       float64 // the largest of bw, kept as bw changes (read per packet)
	roundEnd     uint64  // round ends when this seq is acked
	cwnd         int
	seg          int     // current segment (payload) size
	maxSeg       int     // largest segment the link allows
	lossEWMA     float64 // share of packets lost to damage
	dmgBytes     float64 // wire bytes of first transmissions, decaying
	dmgLosses    float64 // of those, lost to damage, decaying
	dmgN         int     // the packet size whose decay dmgDecay holds
	dmgDecay     float64 // the decay of a sample of dmgN bytes
	lossEvents   int

	// receiving
	rslots   []recvSlot
	rcvNext  uint64
	rcvMax   uint64 // highest seq received + 1
	ctrlSeen uint64
	ackDue   bool      // acknowledge now
	ackWait  int       // packets received since the last ack, whose ack may wait
	ackAt    time.Time // when a waiting ack must go
	// lazyAck: the writer's timer is not armed for the waiting ack,
	// because the reader that took the packet returns to the application,
	// whose reply is likely to carry it (see Stream.ready).
	lazyAck  bool
	lastRecv time.Time

	// sending
	sending    bool        // a goroutine holds the send token
	writerIdle bool        // the writer waits for work or its timer
	wtimer     *time.Timer // the writer's timer
	writerWake time.Time   // when it fires, while the writer is idle
	sd         *sender     // used by whoever holds the send token
	inlineErr  error       // the last inline send failed: the writer handles it

	// streams
	streams    map[uint64]*Stream
	live       []*Stream // the streams of the map, for the scans made per packet (no map iteration)
	nextStream uint64
	acceptQ    []*Stream
	acceptWake chan struct{}
	ctrlQ      [][]byte // reliable frames waiting to be sent (open, window, reset, close)
	rr         int
	readyBuf   []*Stream // scratch for fillStreams
	closing    bool      // Close sent
	peerClosed bool      // the peer sent CLOSE: ack it, then end
	fec        fecState
	stats      Stats
}

// Stats counts what a session did.
type Stats struct {
	PacketsSent, PacketsRecv uint64
	Retransmits              uint64
	BytesSent, BytesRecv     uint64 // stream payload bytes
	Rejected                 uint64 // packets that failed authentication or were malformed
	SRTT, MinRTT             time.Duration
	RTO                      time.Duration // retransmission timeout now (backed off after timeouts)
	Inflight                 int           // bytes sent and not yet acknowledged or taken as lost
	Segment                  int           // current segment size
	LossRate                 float64       // estimated share of packets damaged
	Cwnd                     int
	Rate                     float64 // bottleneck delivery rate estimate, bytes/s
	Cipher                   string  // transport cipher: "aes256gcm" or "chacha20poly1305"
	// Correction is the damaged bytes per 255-byte block the frames sent
	// can repair (0: none; links that offer correction only).
	Correction int
}

func newSession(e *Endpoint, addr net.Addr) *Session {
	var nb [8]byte
	rand.Read(nb[:])
	s := &Session{
		e: e, addr: addr, key: addr.String(), cfg: &e.cfg,
		ready:      make(chan struct{}),
		done:       make(chan struct{}),
		wake:       make(chan struct{}, 1),
		acceptWake: make(chan struct{}, 1),
		nonce:      binary.BigEndian.Uint64(nb[:]),
		hsDue:      true,
		hsBackoff:  200 * time.Millisecond,
		streams:    make(map[uint64]*Stream),
		rto:        time.Second,
		lastRecv:   time.Now(),
	}
	s.maxSeg = e.mtu - pktOverhed
	if e.cfg.MaxSegment > 0 && e.cfg.MaxSegment < s.maxSeg {
		s.maxSeg = e.cfg.MaxSegment
	}
	// Start with modest segments and grow them while the line is clean: a
	// segment already sent is resent whole, so starting at the MTU on a
	// noisy line would strand large packets that rarely get through.
	s.seg = min(s.maxSeg, 1024)
	s.cwnd = 4 * s.seg
	s.slots = make([]sendSlot, e.cfg.Window)
	s.rslots = make([]recvSlot, e.cfg.Window)
	s.wtimer = time.NewTimer(time.Hour)
	s.sd = s.newSender()
	if c, ok := e.l.(link.Corrector); ok {
		// A new session starts plain: the peer may not read protected
		// frames (older versions), and the line is measured anew.
		s.fec.corr, s.fec.base = c, c.LineDamage()
		c.SetCorrection(0)
	}
	s.wg.Add(1)
	go s.writeLoop()
	return s
}

// Peer describes the peer.
func (s *Session) Peer() PeerInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info
}

// Initiator reports whether this end led the handshake. Services that need
// exactly one side to open a stream (a chat, a pipe) let the initiator open
// it.
func (s *Session) Initiator() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.initiator
}

// Stats returns the session's counters and estimates.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.SRTT, st.MinRTT, st.Segment, st.LossRate, st.Cwnd = s.srtt, s.minRTT, s.seg, s.lossEWMA, s.cwnd
	st.Rate = s.bwMax()
	st.RTO, st.Inflight = s.rto, s.inflight
	st.Cipher = s.cipher
	return st
}

// Done is closed when the session has ended; Err then says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the session ended, or nil while it runs.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the session gracefully: data already written to streams is
// delivered first, also what waits for the peer's reader to grant credit
// (Close gives up once the peer has taken nothing for the dead-peer
// timeout), then the peer is told and Close returns once it acknowledged
// (or after a few seconds).
func (s *Session) Close() error {
	drained := func() bool {
		return s.sndUna == s.sndNxt && len(s.ctrlQ) == 0 && !s.unsentStreamData()
	}
	// Wait while the peer takes what was written (a slow line, or a peer
	// whose reader lags and grants credit as it reads); give up once it
	// has taken nothing for the dead-peer timeout.
	s.waitLocked(s.cfg.DeadPeerTimeout, drained, func() uint64 { return s.sndUna })
	s.mu.Lock()
	if s.err == nil && s.state == stEstablished && !s.closing {
		s.closing = true
		s.ctrlQ = append(s.ctrlQ, appendFrame(nil, frClose, []byte("closed")))
		s.kick()
	}
	s.mu.Unlock()
	s.waitLocked(3*time.Second, drained, nil)
	s.fail(ErrClosed)
	s.wg.Wait()
	return nil
}

// waitLocked polls cond under the session lock until it holds, the session
// ends or d passes; d starts again whenever progress (nil: none), also
// read under the lock, changes.
func (s *Session) waitLocked(d time.Duration, cond func() bool, progress func() uint64) {
	deadline := time.Now().Add(d)
	var last uint64
	if progress != nil {
		s.mu.Lock()
		last = progress()
		s.mu.Unlock()
	}
	for {
		s.mu.Lock()
		ok := s.err != nil || s.state != stEstablished || cond()
		moved := false
		if progress != nil {
			if p := progress(); p != last {
				last, moved = p, true
			}
		}
		s.mu.Unlock()
		if moved {
			deadline = time.Now().Add(d)
		}
		if ok || !time.Now().Before(deadline) {
			return
		}
		select {
		case <-s.done:
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (s *Session) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// fail ends the session with err (the first error wins).
func (s *Session) fail(err error) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	streams := make([]*Stream, 0, len(s.streams))
	for _, st := range s.streams {
		streams = append(streams, st)
	}
	s.mu.Unlock()
	close(s.done)
	for _, st := range streams {
		st.notify()
	}
	s.e.interrupt() // a reader of ours may be reading the link
	s.e.forget(s, err)
	if !errors.Is(err, ErrClosed) {
		s.cfg.Logger.Info("session ended", "peer", s.key, "err", err)
	}
}

// handle processes one packet from the peer. It reports whether the packet
// shows that the peer restarted.
func (s *Session) handle(pkt []byte) (restarted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return pkt[0] == kindHello
	}
	switch pkt[0] {
	case kindHello:
		return s.onHello(pkt)
	case kindReject:
		// An initiator is established once it sent message 3, before the
		// responder checked its key: the responder's refusal is heard
		// until the first authenticated packet from it.
		if s.state != stEstablished || (s.initiator && s.stats.PacketsRecv == 0 && refusesKey(pkt)) {
			s.onReject(pkt)
		}
	case kindHS1, kindHS2, kindHS3:
		s.onHandshake(pkt)
	case kindData, kindCtrl:
		if s.state != stEstablished {
			if s.state == stResponder && s.hs != nil && s.hs.MessageIndex() == 2 {
				// The initiator may be ahead of us (it sent message 3,
				// which was lost): resend message 2. The packet proves
				// nothing (it is not decrypted), so the handshake's clock
				// is left alone.
				s.hsDue = true
				s.kick()
			}
			return false
		}
		s.onTransport(pkt)
	default:
		s.stats.Rejected++
	}
	return false
}

func (s *Session) failLocked(err error) {
	s.mu.Unlock()
	s.fail(err)
	s.mu.Lock()
}

func (s *Session) onHello(pkt []byte) bool {
	if len(pkt) < helloLen || !bytes.Equal(pkt[1:5], helloMagic[:]) {
		s.stats.Rejected++
		return false
	}
	ver := pkt[5]
	nonce := binary.BigEndian.Uint64(pkt[6:14])
	if s.state == stEstablished && time.Since(s.lastRecv) < 2*s.cfg.KeepAlive+time.Second {
		// The peer we have a session with spoke a moment ago, so it has
		// not restarted: this hello is stale or forged. A restarted peer
		// falls silent on the old keys, and its next hello is heard.
		if nonce != s.peerNonce {
			s.stats.Rejected++
		}
		return false
	}
	if ver != ProtocolVersion {
		s.sendReject(fmt.Sprintf("this peer speaks p2plink protocol version %d", ProtocolVersion))
		s.failLocked(fmt.Errorf("%w: the peer speaks protocol version %d, this build speaks %d: run the same p2plink release on both ends", ErrVersion, ver, ProtocolVersion))
		return false
	}
	switch {
	case s.state == stEstablished:
		if nonce != s.peerNonce {
			s.failLocked(ErrPeerRestarted)
			return true
		}
		return false
	case nonce == s.nonce:
		return false // our own hello echoed back
	case nonce == s.peerNonce:
		if s.hs == nil {
			// The peer, which leads, has not heard us yet: say hello
			// again now.
			s.hsDue = true
			s.hsBackoff = 200 * time.Millisecond
			s.kick()
		}
		return false
	}
	// Nothing was established: a hello from another incarnation of the
	// peer (the first may have given up, its hellos left in a buffer on
	// the line) replaces the handshake, which is set aside in case its
	// peer is the live one after all.
	resumed := s.switchAttempt(nonce)
	s.hsDue = true
	s.hsBackoff = 200 * time.Millisecond
	s.kick()
	if resumed {
		return false
	}
	if s.nonce < nonce {
		s.initiator = true
		s.state = stInitiator
		hs, err := s.newHandshake(true)
		if err != nil {
			s.failLocked(err)
			return false
		}
		s.hs = hs
		msg, _, _, err := hs.WriteMessage(nil, nil)
		if err != nil {
			s.failLocked(err)
			return false
		}
		s.hsOut = s.hsPacket(kindHS1, msg)
	} else {
		s.state = stResponder
	}
	return false
}

// switchAttempt sets the current handshake aside and takes up the one
// with the peer's incarnation of nonce n: one set aside before (it reports
// true), or a new one, which the caller starts. The newest maxAttempts are
// kept, so that an old initiation replayed on the line, which takes the
// current handshake's place, cannot lose it: the live peer's next message
// takes it up again.
func (s *Session) switchAttempt(n uint64) (resumed bool) {
	var next hsAttempt
	for i, a := range s.attempts {
		if a.peerNonce == n {
			next, resumed = a, true
			s.attempts = append(s.attempts[:i], s.attempts[i+1:]...)
			break
		}
	}
	if s.peerNonce != 0 {
		if len(s.attempts) == maxAttempts {
			s.attempts = append(s.attempts[:0], s.attempts[1:]...)
		}
		s.attempts = append(s.attempts, hsAttempt{s.peerNonce, s.initiator, s.state, s.hs, s.hsOut})
	}
	if !resumed {
		next = hsAttempt{peerNonce: n, state: stHello}
	}
	s.peerNonce, s.initiator, s.state, s.hs, s.hsOut = next.peerNonce, next.initiator, next.state, next.hs, next.hsOut
	// The handshake's clock (the dead-peer timeout) starts now.
	s.lastRecv = time.Now()
	return resumed
}

func (s *Session) prologue() []byte {
	i, r := s.nonce, s.peerNonce
	if !s.initiator {
		i, r = r, i
	}
	p := []byte("p2plink/1")
	p = binary.BigEndian.AppendUint64(p, i)
	return binary.BigEndian.AppendUint64(p, r)
}

func (s *Session) hsPacket(kind byte, msg []byte) []byte {
	i, r := s.nonce, s.peerNonce
	if !s.initiator {
		i, r = r, i
	}
	p := []byte{kind, ProtocolVersion}
	p = binary.BigEndian.AppendUint64(p, i)
	p = binary.BigEndian.AppendUint64(p, r)
	return append(p, msg...)
}

func (s *Session) sendReject(reason string) {
	p := append([]byte{kindReject, ProtocolVersion}, reason...)
	s.e.l.WriteTo(p, s.addr)
}

// refusesKey reports whether pkt is a REJECT of our version refusing the
// key we showed in message 3: the only refusal an established initiator
// can still get (the versions were settled by the hellos), so that other
// plaintext packets, forged or damaged, cannot end its session.
func refusesKey(pkt []byte) bool {
	if len(pkt) < 2 || pkt[1] != ProtocolVersion {
		return false
	}
	r := pkt[2:]
	return bytes.HasPrefix(r, []byte("key refused")) || bytes.HasPrefix(r, []byte("malformed peer description"))
}

func (s *Session) onReject(pkt []byte) {
	if len(pkt) < 2 {
		return
	}
	if pkt[1] != ProtocolVersion {
		s.failLocked(fmt.Errorf("%w: the peer speaks protocol version %d, this build speaks %d: run the same p2plink release on both ends", ErrVersion, pkt[1], ProtocolVersion))
		return
	}
	reason := printable(pkt[2:])
	if strings.HasPrefix(reason, "key refused") {
		s.failLocked(fmt.Errorf("%w: it refused this peer's key, fingerprint %s (%s): it requires another fingerprint (--peer), or has another key pinned under the name %q; read this fingerprint to its user",
			ErrRefused, s.cfg.Identity.Fingerprint(), reason, s.cfg.Name))
		return
	}
	s.failLocked(fmt.Errorf("%w: %q", ErrRefused, reason))
}

func printable(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return string(bytes.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r <= 0x9f) { // C0, DEL, C1
			return '?'
		}
		return r
	}, b))
}

func (s *Session) onHandshake(pkt []byte) {
	if len(pkt) < hsHdrLen {
		s.stats.Rejected++
		return
	}
	if pkt[1] != ProtocolVersion {
		s.stats.Rejected++ // versions are settled by the hellos
		return
	}
	if s.state == stEstablished && pkt[0] != kindHS2 {
		// A replayed message 1 or 3: the handshake is over, and only
		// authenticated packets may change an established session.
		s.stats.Rejected++
		return
	}
	in, rn := binary.BigEndian.Uint64(pkt[2:10]), binary.BigEndian.Uint64(pkt[10:18])
	msg := pkt[hsHdrLen:]
	if s.state != stEstablished {
		s.followHandshake(pkt[0], in, rn)
	}
	payload := s.myPayload()
	switch pkt[0] {
	case kindHS1:
		if rn != s.nonce || s.initiator {
			return // stale, or for an earlier incarnation
		}
		if s.hs != nil {
			if in == s.peerNonce && s.hsOut != nil {
				s.hsDue = true // our message 2 was lost: resend it
				s.kick()
			}
			return
		}
		s.peerNonce = in
		s.state = stResponder
		hs, err := s.newHandshake(false)
		if err != nil {
			s.failLocked(err)
			return
		}
		if _, _, _, err := hs.ReadMessage(nil, msg); err != nil {
			s.stats.Rejected++
			return
		}
		out, _, _, err := hs.WriteMessage(nil, payload)
		if err != nil {
			s.failLocked(err)
			return
		}
		s.hs = hs
		s.hsOut = s.hsPacket(kindHS2, out)
		s.hsDue = true
		s.hsBackoff = 200 * time.Millisecond
		s.kick()
	case kindHS2:
		if !s.initiator || in != s.nonce || rn != s.peerNonce {
			return
		}
		if s.state == stEstablished {
			s.hsDue = true // our message 3 was lost: resend it
			s.kick()
			return
		}
		if s.hs == nil || s.hs.MessageIndex() != 1 {
			return
		}
		if _, _, ok := s.readPeerMessage(msg); !ok {
			return
		}
		out, cs1, cs2, err := s.hs.WriteMessage(nil, payload)
		if err != nil {
			s.failLocked(err)
			return
		}
		s.hsOut = s.hsPacket(kindHS3, out)
		s.hsDue = true
		s.establish(cs1, cs2)
	case kindHS3:
		if s.initiator || in != s.peerNonce || rn != s.nonce || s.hs == nil || s.state == stEstablished {
			return
		}
		cs1, cs2, ok := s.readPeerMessage(msg)
		if !ok {
			return
		}
		s.hsOut = nil
		s.establish(cs2, cs1)
	}
}

// followHandshake takes up, before anything was established, the
// handshake that a message of kind with nonces in and rn belongs to. A
// message that names our nonce comes from a peer that heard this session's
// hello, so it is no replay of an older initiation; one from another
// incarnation of the peer than the current handshake's takes up that
// incarnation's handshake, set aside before (or, message 1, starts it),
// unless the current one is live.
func (s *Session) followHandshake(kind byte, in, rn uint64) {
	pn, ours := in, rn // the peer's nonce, and the one it names as ours
	if kind == kindHS2 {
		pn, ours = rn, in
	}
	if ours != s.nonce || pn == s.peerNonce || pn == s.nonce {
		return
	}
	known := kind == kindHS1
	for _, a := range s.attempts {
		known = known || a.peerNonce == pn
	}
	if known {
		s.switchAttempt(pn)
	}
}

// readPeerMessage reads a handshake message that carries the peer's
// description and checks the peer; a refused peer is told and the session
// ends.
func (s *Session) readPeerMessage(msg []byte) (cs1, cs2 *noise.CipherState, ok bool) {
	pl, cs1, cs2, err := s.hs.ReadMessage(nil, msg)
	if err != nil {
		s.stats.Rejected++
		return nil, nil, false
	}
	if err := s.verifyPeer(pl); err != nil {
		why := "key refused"
		if errors.Is(err, errMalformedPeer) {
			why = "malformed peer description"
		}
		s.sendReject(why)
		s.failLocked(err)
		return nil, nil, false
	}
	return cs1, cs2, true
}

func (s *Session) newHandshake(initiator bool) (*noise.HandshakeState, error) {
	return noise.NewHandshakeState(noise.Config{
		CipherSuite: cipherSuite, Pattern: noise.HandshakeXX, Initiator: initiator,
		Prologue: s.prologue(), StaticKeypair: s.cfg.Identity.key,
	})
}

func (s *Session) myPayload() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "<" as is, not 6 bytes: the description must fit a small MTU
	enc.Encode(helloPayload{Name: s.cfg.Name, Soft: "p2plink", Ciphers: s.cfg.offeredCiphers(), MTU: s.e.mtu})
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// minSegment is the smallest segment a session sends.
const minSegment = 128

// errMalformedPeer means the peer's description in the handshake was not
// valid: we refused the session.
var errMalformedPeer = errors.New("peer: the peer's description is malformed")

func (s *Session) verifyPeer(payload []byte) error {
	var hp helloPayload
	if err := json.Unmarshal(payload, &hp); err != nil {
		return fmt.Errorf("%w (%v): this end refused the session", errMalformedPeer, err)
	}
	s.peerCiphers = hp.Ciphers
	if hp.MTU > 0 && hp.MTU-pktOverhed < s.maxSeg {
		s.maxSeg = max(hp.MTU-pktOverhed, minSegment)
		s.seg = min(s.seg, s.maxSeg)
	}
	pub := s.hs.PeerStatic()
	s.info = PeerInfo{Name: cleanName(hp.Name), Fingerprint: Fingerprint(pub), PublicKey: append([]byte(nil), pub...), Addr: s.addr}
	if s.wantKey != nil && !bytes.Equal(pub, s.wantKey) {
		return fmt.Errorf("%w: the peer at %s announced %s but proved %s", ErrRefused, s.addr, Fingerprint(s.wantKey), s.info.Fingerprint)
	}
	byKey := s.byKey
	if want := s.cfg.RequireFingerprint; want != "" {
		if NormalizeFingerprint(want) != NormalizeFingerprint(s.info.Fingerprint) {
			return fmt.Errorf("%w: peer %q has fingerprint %s, required %s", ErrFingerprintMismatch, s.info.Name, s.info.Fingerprint, want)
		}
		byKey = true // the user named this key
	}
	pinned, knownAs, err := s.cfg.KnownPeers.check(s.info.Name, pub, byKey)
	if err != nil {
		return err
	}
	s.info.Pinned, s.info.KnownAs = pinned, knownAs
	return nil
}

func (s *Session) establish(send, recv *noise.CipherState) {
	s.cipher = chooseCipher(s.cfg.offeredCiphers(), s.peerCiphers)
	s.sendCipher, s.recvCipher = newTransportCipher(send, s.cipher), newTransportCipher(recv, s.cipher)
	s.state = stEstablished
	s.hs = nil
	s.attempts = nil
	if s.initiator {
		s.nextStream = 1
	} else {
		s.nextStream = 2
	}
	s.lastRecv = time.Now()
	close(s.ready)
	s.kick()
	s.cfg.Logger.Info("session established", "peer", s.info.Name, "fingerprint", s.info.Fingerprint, "addr", s.key, "cipher", s.cipher)
	claimed := false
	s.e.mu.Lock()
	claimed = s.claimed
	s.e.mu.Unlock()
	if !claimed {
		select {
		case s.e.accepted <- s:
		default:
		}
	}
}

// onTransport decrypts and processes a data or control packet.
func (s *Session) onTransport(pkt []byte) {
	if len(pkt) < pktOverhed {
		s.stats.Rejected++
		return
	}
	low := binary.BigEndian.Uint32(pkt[1:5])
	now := time.Now()
	if pkt[0] == kindCtrl {
		ctr := expand(low, s.ctrlSeen)
		if ctr < s.ctrlSeen || ctr >= ctrlNonce {
			return
		}
		pt, err := s.recvCipher.open(pkt[pktHdrLen:pktHdrLen], ctrlNonce|ctr, pkt[:pktHdrLen], pkt[pktHdrLen:])
		if err != nil {
			s.stats.Rejected++
			return
		}
		s.ctrlSeen = ctr + 1
		s.lastRecv = now
		s.stats.PacketsRecv++
		s.onFrames(pt, now)
		return
	}
	seq := expand(low, s.rcvNext)
	w := uint64(len(s.rslots))
	if seq < s.rcvNext || seq >= s.rcvNext+w {
		s.ackDue = true // a duplicate: the peer missed our ack
		s.kick()
		return
	}
	slot := &s.rslots[seq%w]
	if slot.present {
		s.ackDue = true
		s.kick()
		return
	}
	pt, err := s.recvCipher.open(pkt[pktHdrLen:pktHdrLen], seq, pkt[:pktHdrLen], pkt[pktHdrLen:])
	if err != nil {
		s.stats.Rejected++
		return
	}
	s.lastRecv = now
	s.stats.PacketsRecv++
	if seq+1 > s.rcvMax {
		s.rcvMax = seq + 1
	}
	if seq == s.rcvNext {
		// In order, as nearly always: its frames are taken where they
		// were decrypted; only a packet that came early waits in a slot.
		s.rcvNext++
		s.onFrames(pt, now)
		if s.err != nil {
			return
		}
	} else {
		if slot.buf == nil {
			slot.buf = make([]byte, s.e.mtu)
		}
		slot.n = copy(slot.buf, pt)
		slot.present = true
	}
	for {
		sl := &s.rslots[s.rcvNext%w]
		if !sl.present {
			break
		}
		sl.present = false
		s.rcvNext++
		s.onFrames(sl.buf[:sl.n], now)
		if s.err != nil {
			return
		}
	}
	// A lone packet's ack may wait a little for data going back (a reply)
	// to carry it; a second packet, or one after a gap, is acked at once,
	// so the sender's loss detection and rate estimate do not wait.
	s.ackWait++
	if s.ackWait >= 2 || s.rcvMax > s.rcvNext {
		s.ackDue, s.lazyAck = true, false
		s.kick()
	} else {
		s.ackAt = now.Add(ackDelay)
		s.lazyAck = false
		if s.e.leadSess == s {
			// A reader of ours took it from the link: arming the timer
			// for each message of a ping-pong costs more than the round
			// trip gains; see Stream.ready.
			s.lazyAck = true
		} else {
			s.wakeWriterBy(s.ackAt)
		}
	}
}

// armLazyAck arms the writer's timer for an ack left lazy: no reply is
// coming at once.
func (s *Session) armLazyAck() {
	if s.lazyAck {
		s.lazyAck = false
		if s.ackWait > 0 {
			s.wakeWriterBy(s.ackAt)
		}
	}
}

func (s *Session) onFrames(b []byte, now time.Time) {
	for len(b) > 0 {
		typ, val, rest, err := nextFrame(b)
		if err != nil {
			s.stats.Rejected++
			return
		}
		b = rest
		switch typ {
		case frAck:
			s.onAck(val, now)
		case frPing:
			s.ackDue = true
			s.kick() // answered now, not at the writer's next timer
		case frLinkQ:
			s.onLinkQ(val)
		case frStream, frFin:
			s.onStreamData(val, typ == frFin)
		case frOpen:
			s.onOpen(val)
		case frWindow:
			s.onWindow(val)
		case frReset:
			s.onReset(val)
		case frClose:
			// Acknowledge it, then end: the writer ends the session once
			// the ack is out, so the peer's Close need not wait.
			s.peerClosed = true
			s.ackDue = true
			s.kick()
			return
		}
	}
}

func (s *Session) onAck(v []byte, now time.Time) {
	if len(v) < 4 {
		return
	}
	cum := expand(binary.BigEndian.Uint32(v[:4]), s.sndUna)
	if cum > s.sndNxt || cum < s.sndUna {
		return
	}
	w := uint64(len(s.slots))
	for q := s.sndUna; q < cum; q++ {
		s.ackSlot(&s.slots[q%w], now)
	}
	for i, b := range v[4:] {
		for bit := 0; bit < 8; bit++ {
			if b&(1<<bit) == 0 {
				continue
			}
			q := cum + 1 + uint64(i*8+bit)
			if q >= s.sndNxt {
				break
			}
			s.ackSlot(&s.slots[q%w], now)
		}
	}
	for s.sndUna < s.sndNxt && s.slots[s.sndUna%w].acked {
		s.sndUna++
	}
	// The timer's backoff is undone by the next RTT sample (rttSample),
	// not by any progress: an ack of a resent packet may answer either
	// copy (Karn), and undoing the backoff on it keeps a timer that is
	// too short for a line that slowed down.
	s.detectGaps(now)
	if s.hasWork() || len(s.lostQ) > 0 || s.closing {
		// Room to send more, or something to resend. Otherwise the
		// writer's timer is at worst early: it recomputes when it fires.
		s.kick()
	}
	for _, st := range s.live {
		s.wakeWriterLocked(st) // the window may have grown, and sendLimit with it
	}
}

func (s *Session) ackSlot(sl *sendSlot, now time.Time) {
	if sl.acked || sl.buf == nil {
		return
	}
	sl.acked = true
	if sl.inFlight {
		s.inflight -= sl.n
		sl.inFlight = false
	}
	sl.lost = false
	switch {
	case sl.retrans == 0:
		s.maxAcked = max(s.maxAcked, sl.order)
		s.maxAckedFirst = max(s.maxAckedFirst, sl.order)
		if sl.order < s.ambOrder {
			// A packet sent before that resend arrived: the originals
			// are still coming (the timeout was a stall, not a loss).
			s.ambOrder = 0
		}
	case sl.order > s.maxAcked && sl.order > s.ambOrder:
		// The ack may answer the copy sent before the timeout, which a
		// stall held up; then the packets sent after that copy are on
		// their way too, not lost. See detectGaps.
		s.ambOrder, s.ambAt = sl.order, now.Add(s.reorderWindow())
	}
	s.delivered += uint64(sl.n)
	s.deliveredAt, s.firstSentAt = now, sl.sentAt
	if sl.retrans == 0 {
		s.rttSample(now.Sub(sl.sentAt), now)
		s.lossSample(false, sl.n)
	} else if s.minRTT > 0 && now.Sub(sl.sentAt) < s.minRTT && !sl.prevSentAt.IsZero() {
		// Acked sooner after the resend than any round trip ever took:
		// the ack answers an earlier copy, and the timeout was spurious
		// (the line or the peer stalled). The time since that copy is a
		// round trip (at least), and it is the sample the timer needs:
		// without it the estimate keeps the line's pace from before the
		// stall, and the next stall times out just as early.
		s.rttSample(now.Sub(sl.prevSentAt), now)
	}
	// A delivery rate sample, as BBR takes it: the bytes acked since this
	// packet was sent, over the longer of the time they took to be acked
	// and the time they took to be sent — acks that arrive in a burst do
	// not make a link look faster than it sent.
	if el := max(now.Sub(sl.deliveredAt), sl.sentAt.Sub(sl.firstSentAt)); el > 0 && sl.retrans == 0 {
		rate := float64(s.delivered-sl.delivered) / el.Seconds()
		if rate > s.bw[s.bwRound] {
			s.bw[s.bwRound] = rate
			s.bwPeak = max(s.bwPeak, rate)
		}
	}
	if sl.seq >= s.roundEnd {
		s.bwRound = (s.bwRound + 1) % len(s.bw)
		if s.bw[s.bwRound] == s.bwPeak {
			// The round that held the peak leaves the window.
			s.bw[s.bwRound] = 0
			s.bwPeak = 0
			for _, b := range s.bw {
				s.bwPeak = max(s.bwPeak, b)
			}
		}
		s.bw[s.bwRound] = 0
		s.roundEnd = s.sndNxt
	}
	s.updateCwnd()
}

func (s *Session) rttSample(r time.Duration, now time.Time) {
	if r <= 0 {
		r = time.Microsecond
	}
	if s.srtt == 0 {
		s.srtt, s.rttvar = r, r/2
	} else {
		d := s.srtt - r
		if d < 0 {
			d = -d
		}
		s.rttvar = (3*s.rttvar + d) / 4
		s.srtt = (7*s.srtt + r) / 8
	}
	// The minimum is kept for the whole session. Letting it expire would
	// let it ratchet up: on a FIFO line every sample carries the queue that
	// the window (sized from the minimum) keeps, so a fresh minimum is
	// always a little larger than the last.
	if s.minRTT == 0 || r < s.minRTT {
		s.minRTT = r
	}
	s.rto = s.srtt + 4*s.rttvar
	if s.rto < minRTO {
		s.rto = minRTO
	}
	if s.rto > 10*time.Second {
		s.rto = 10 * time.Second
	}
}

// bwMax is the bottleneck delivery rate estimate in bytes/s, 0 if unknown.
func (s *Session) bwMax() float64 { return s.bwPeak }

func (s *Session) updateCwnd() {
	bw := s.bwMax()
	if bw == 0 || s.minRTT == 0 {
		return
	}
	// One bandwidth-delay product and a segment keep the line busy; the
	// headroom on top absorbs acks that arrive in bursts. On a slow line
	// it is kept to what the line sends in 20 ms, because everything in
	// flight queues in the driver ahead of urgent streams (a chat line).
	// The allowance is time, not a multiple of the BDP: on a fast link the
	// round trip under load (the peer's processing, scheduling, acks in
	// bursts) dwarfs the idle minimum, and a window of 2·BDP would shrink
	// round after round; 20 ms of the line is ample there and tiny on a
	// serial line.
	c := int(bw*(s.minRTT.Seconds()+0.020)) + s.seg
	// Enough packets in flight that a loss shows as a gap in the acks
	// (not only by timeout), without queueing much on a slow line.
	lo := max(2*(s.seg+pktOverhed), min(8*s.seg, 4096))
	if c < lo {
		c = lo
	}
	s.cwnd = c
}

// lossSample feeds the damage-rate estimate that sizes segments: one
// sample per first transmission, lost or not.
func (s *Session) lossSample(lost bool, n int) {
	// Per-byte damage rate: losses over bytes, both decaying with a window
	// of about 128 KiB sent, plus a prior of a tenth of a loss so that a
	// short clean record does not pass for a perfect line. Each sample
	// weighs the packet's own size (n, plus the link's framing): samples
	// arrive a round trip late, when the segment size may have changed.
	const window = 128 << 10
	w := float64(n + 19)
	if n != s.dmgN || s.dmgDecay == 0 {
		// Packets mostly have one size: one exp per change of it.
		s.dmgN, s.dmgDecay = n, math.Exp(-w/window)
	}
	d := s.dmgDecay
	s.dmgBytes = s.dmgBytes*d + w
	s.dmgLosses *= d
	if lost {
		s.dmgLosses++
	}
	s.lossEWMA += (b2f(lost) - s.lossEWMA) / 16
	s.lossEvents++
	if s.cfg.FixedSegment || s.lossEvents%8 != 0 {
		return
	}
	// Packets of w wire bytes survive a per-byte damage rate e with
	// probability (1-e)^w. Goodput per wire byte, seg/(seg+h)·(1-e)^(seg+h),
	// peaks near seg+h = sqrt(h/e) for small e.
	const h = 40.0
	e := (s.dmgLosses + 0.1) / s.dmgBytes
	opt := int(math.Sqrt(h/e) - h)
	if s.dmgLosses < 0.05 && s.dmgBytes > 64<<10 {
		// No damage in a good stretch of the line: the prior would
		// otherwise cap segments near 7 KB and keep jumbo frames unused.
		opt = s.maxSeg
	}
	opt = max(minSegment, min(s.segCap(), opt))
	// Shrink at once (damaged packets are expensive: they are resent
	// whole), grow at most twofold per step.
	s.seg = min(opt, 2*s.seg)
}

// segCap is the largest segment worth sending now: the link's, and on a
// slow line what it sends in a quarter second, so that an urgent packet
// queued behind two segments (the least window) waits at most half a
// second. 115200 baud gives about 2.9 KB.
func (s *Session) segCap() int {
	c := s.maxSeg
	if bw := s.bwMax(); bw > 0 {
		c = min(c, max(1024, int(bw/4)))
	}
	return c
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (s *Session) markLost(sl *sendSlot, damage bool) {
	if !sl.inFlight {
		return
	}
	sl.inFlight = false
	sl.lost = true
	s.inflight -= sl.n
	s.lostQ = append(s.lostQ, sl.seq)
	if damage {
		s.lossSample(true, sl.n)
	}
}

// sendable is how many stream bytes could be sent now: queued and within
// the streams' credit.
func (s *Session) sendable() int {
	n := 0
	for _, st := range s.live {
		n += min(st.send.Len(), max(int(st.credit), 0))
		if st.finQueued && !st.finSent {
			n++
		}
	}
	return n
}

// unsentStreamData reports whether a stream still holds data, or a FIN,
// it has not sent, whether or not it has the credit to send it now.
func (s *Session) unsentStreamData() bool {
	for _, st := range s.live {
		if st.reset == nil && (st.send.Len() > 0 || (st.finQueued && !st.finSent)) {
			return true
		}
	}
	return false
}

func (s *Session) pendingStreamData() bool {
	for _, st := range s.live {
		if st.hasOutput() {
			return true
		}
	}
	return false
}

// batchWriter is implemented by links that send several frames in one system
// call (ethnet's sendmmsg).
type batchWriter interface {
	WriteBatch(ps [][]byte, addr net.Addr) (int, error)
}

// maxBatch is the most packets the writer hands a batchWriter at once.
const maxBatch = 32

// sender is the state of one goroutine that sends: the session's writer,
// or an application goroutine that sends inline (see trySendInline). Only
// the holder of the session's send token (Session.sending) uses one, so
// packets leave in the order they were built.
type sender struct {
	s        *Session
	bw       batchWriter // nil: one WriteTo per packet
	scratch  [][]byte    // buffers for packets that live in no send slot
	batch    [][]byte
	maxBatch int
}

func (s *Session) newSender() *sender {
	bw, _ := s.e.l.(batchWriter)
	n := 1
	if bw != nil {
		n = maxBatch
	}
	sd := &sender{s: s, bw: bw, scratch: make([][]byte, n), batch: make([][]byte, 0, n), maxBatch: n}
	for i := range sd.scratch {
		sd.scratch[i] = make([]byte, s.e.mtu)
	}
	return sd
}

// fillLocked builds up to one batch of packets. It returns how long to wait
// before there may be one when it built none.
func (sd *sender) fillLocked(now time.Time) time.Duration {
	var wait time.Duration
	sd.batch = sd.batch[:0]
	for len(sd.batch) < sd.maxBatch {
		var pkt []byte
		pkt, wait = sd.s.nextPacketLocked(sd.scratch[len(sd.batch)], now)
		if pkt == nil {
			break
		}
		sd.batch = append(sd.batch, pkt)
	}
	return wait
}

// flush sends the batch built; called without the session lock.
func (sd *sender) flush() error {
	if sd.bw != nil && len(sd.batch) > 1 {
		_, err := sd.bw.WriteBatch(sd.batch, sd.s.addr)
		return err
	}
	for _, p := range sd.batch {
		if _, err := sd.s.e.l.WriteTo(p, sd.s.addr); err != nil {
			return err
		}
	}
	return nil
}

// trySendInline sends what is ready from the calling goroutine when the
// writer is idle, saving the hand-off to the writer on the way out (a
// message then leaves with the Write that queued it). It sends one batch
// at most and leaves the rest, and every timer, to the writer. Called with
// s.mu held; returns with it held.
func (s *Session) trySendInline() {
	if s.sending || !s.writerIdle || s.err != nil || s.state != stEstablished {
		s.kick()
		return
	}
	s.sending = true
	sd := s.sd
	now := time.Now()
	sd.fillLocked(now)
	s.mu.Unlock()
	err := sd.flush()
	s.mu.Lock()
	s.sending = false
	if err != nil || s.hasWork() || len(s.lostQ) > 0 {
		// The writer sends what is left, or handles err.
		if err != nil && s.inlineErr == nil {
			s.inlineErr = err
		}
		s.kick()
		return
	}
	if !s.writerIdle {
		// The writer ran while we sent and waits for us: have it
		// recompute its timers (retransmission, acks, keepalive).
		s.kick()
		return
	}
	// The packets just sent time out no sooner than this.
	s.wakeWriterBy(now.Add(s.rto))
}

// wakeWriterBy makes sure an idle writer wakes by t; a busy one computes
// its next wake when it is done. Called with s.mu held.
func (s *Session) wakeWriterBy(t time.Time) {
	if s.writerIdle && t.Before(s.writerWake) {
		s.writerWake = t
		s.wtimer.Reset(max(time.Until(t), 0))
	}
}

// writeLoop is the session's sender of last resort: it sends whatever
// application goroutines did not send inline, acknowledgements,
// retransmissions and keepalives, and owns every timer.
func (s *Session) writeLoop() {
	defer s.wg.Done()
	sd := s.sd
	defer s.wtimer.Stop()
	for {
		s.mu.Lock()
		var wait time.Duration
		err := s.inlineErr // an inline send failed: handle it before sending more
		s.inlineErr = nil
		busy := s.sending && err == nil // an inline sender holds the token: it kicks us when done
		built := 0
		if !s.sending && err == nil {
			wait = sd.fillLocked(time.Now())
			if built = len(sd.batch); built > 0 {
				s.sending = true
			}
		}
		ended := s.err != nil
		idle := !busy && built == 0 && err == nil
		s.writerIdle = idle
		if busy {
			wait = time.Hour
		}
		if idle || busy {
			// Reset under the lock: wakeWriterBy may move it earlier.
			s.writerWake = time.Now().Add(wait)
			s.wtimer.Reset(wait)
		}
		s.mu.Unlock()
		if ended {
			return
		}
		if idle || busy {
			if idle && s.peerClosedAcked() {
				s.fail(ErrPeerClosed)
				return
			}
			select {
			case <-s.wake:
			case <-s.wtimer.C:
			case <-s.done:
				return
			}
			continue
		}
		if err == nil {
			err = sd.flush()
			s.mu.Lock()
			s.sending = false
			s.mu.Unlock()
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				s.fail(ErrClosed)
				return
			}
			// Disconnected or a deadline: the packets are lost; the
			// protocol resends what matters. Do not spin.
			select {
			case <-s.done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}

func (s *Session) peerClosedAcked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peerClosed && !s.ackDue
}

// nextPacketLocked returns the next packet to send, or nil and how long to
// wait before there may be one.
func (s *Session) nextPacketLocked(scratch []byte, now time.Time) ([]byte, time.Duration) {
	if s.err != nil {
		return nil, 0
	}
	wait := time.Hour
	if s.state != stEstablished {
		if now.Sub(s.lastRecv) > s.cfg.DeadPeerTimeout && s.peerNonce != 0 {
			s.failLocked(fmt.Errorf("%w: the handshake did not finish", ErrPeerGone))
			return nil, 0
		}
		if !s.hsDue && now.Before(s.hsNext) {
			return nil, s.hsNext.Sub(now)
		}
		s.hsDue = false
		s.hsNext = now.Add(s.hsBackoff)
		s.hsBackoff = min(s.hsBackoff*2, 2*time.Second)
		if s.hsOut != nil {
			return s.hsOut, 0
		}
		p := scratch[:helloLen]
		p[0] = kindHello
		copy(p[1:5], helloMagic[:])
		p[5] = ProtocolVersion
		binary.BigEndian.PutUint64(p[6:], s.nonce)
		return p, 0
	}
	if s.hsDue {
		s.hsDue = false
		if s.hsOut != nil {
			return s.hsOut, 0 // the initiator's message 3, again
		}
	}
	if now.Sub(s.lastRecv) > s.cfg.DeadPeerTimeout {
		s.failLocked(fmt.Errorf("%w (%v): check the cable and that the other end still runs", ErrPeerGone, s.cfg.DeadPeerTimeout))
		return nil, 0
	}
	if s.ackDue || (s.ackWait > 0 && !now.Before(s.ackAt)) {
		fr := s.ackFrame(scratch[pktHdrLen:pktHdrLen])
		if len(fr)+linkqMax <= s.e.mtu-pktOverhed {
			fr = s.appendLinkQ(fr, now)
		}
		return s.ctrlPacket(scratch, fr), 0
	}
	if s.ackWait > 0 && !s.lazyAck {
		// (A lazy ack is timed by armLazyAck.)
		wait = min(wait, s.ackAt.Sub(now))
	}
	if s.peerClosed {
		return nil, 0
	}
	w := uint64(len(s.slots))
	// Retransmit what was lost, oldest first.
	for len(s.lostQ) > 0 {
		q := s.lostQ[0]
		sl := &s.slots[q%w]
		if q < s.sndUna || sl.seq != q || sl.acked || !sl.lost {
			s.lostQ = s.lostQ[1:]
			continue
		}
		if s.inflight+sl.n > s.cwnd+2*s.seg && s.inflight > 0 {
			break
		}
		s.lostQ = s.lostQ[1:]
		s.transmit(sl, now)
		sl.retrans++
		s.stats.Retransmits++
		return sl.buf[:sl.n], 0
	}
	// New data.
	if s.sndNxt-s.sndUna < w && s.hasWork() {
		urgent := s.urgentWaiting()
		room := s.cwnd - s.inflight
		if urgent {
			room += 2 * s.seg
		}
		// A packet shorter than a segment costs the same overhead on the
		// wire (header, tag, framing, an ack back): while packets are in
		// flight, whose acks free room soon, bulk data waits for room for a
		// whole segment — unless what is waiting fits already.
		if room > 0 && (room >= s.seg || s.inflight == 0 || urgent || s.sendable() <= room) {
			if pkt := s.buildData(now, min(s.seg, max(room, 256))); pkt != nil {
				return pkt, 0
			}
		}
	}
	// Retransmission timeout.
	if d, expired := s.checkTimeout(now); expired {
		s.kick()
		return nil, 0
	} else {
		wait = min(wait, d)
	}
	// Keepalive.
	if ka := s.lastSent.Add(s.cfg.KeepAlive); !now.Before(ka) {
		fr := appendFrame(scratch[pktHdrLen:pktHdrLen], frPing, nil)
		return s.ctrlPacket(scratch, fr), 0
	} else {
		wait = min(wait, ka.Sub(now))
	}
	wait = min(wait, s.lastRecv.Add(s.cfg.DeadPeerTimeout).Sub(now)+time.Millisecond)
	return nil, max(wait, 0)
}

// detectGaps takes as lost every packet in flight that was sent before one
// that was acked: p2plink's links deliver in order (a serial line, a USB
// pipe, one Ethernet segment), so a gap in the acks is a loss, not a packet
// still on its way. An ack of a resent packet counts only once no original
// sent before it was acked within reorderWindow: it may answer the earlier
// copy. It reports how long until such an ack counts (time.Hour: none).
func (s *Session) detectGaps(now time.Time) time.Duration {
	wait := time.Hour
	if s.ambOrder > s.maxAcked {
		if now.Before(s.ambAt) {
			wait = s.ambAt.Sub(now)
		} else {
			s.maxAcked, s.ambOrder = s.ambOrder, 0
		}
	}
	w := uint64(len(s.slots))
	for q := s.sndUna; q < s.sndNxt; q++ {
		sl := &s.slots[q%w]
		if sl.order+reorderThreshold > s.maxAcked {
			if sl.retrans == 0 {
				// Every packet after this one was first sent after it,
				// and resent, if at all, later still: none was overtaken
				// either. (Without this, every call scanned the window.)
				break
			}
			continue
		}
		if sl.inFlight {
			// Count it as damage only when both it and the packet that
			// overtook it were first transmissions: after a timeout,
			// retransmissions overtake packets still on their way.
			s.markLost(sl, sl.retrans == 0 && sl.order+reorderThreshold <= s.maxAckedFirst)
		}
	}
	return wait
}

// reorderWindow is how long after the ack of a resent packet the acks of
// packets sent before it may still come, if that ack answered an earlier
// copy: about two packets' time on the line, or a quarter round trip.
func (s *Session) reorderWindow() time.Duration {
	d := s.srtt / 4
	if bw := s.bwMax(); bw > 0 {
		d = max(d, time.Duration(2*float64(s.seg+pktOverhed)/bw*float64(time.Second)))
	}
	return max(d, time.Millisecond)
}

// checkTimeout takes the oldest packet whose retransmission timer expired
// as lost and backs the timer off; otherwise it says how long until the
// next one expires.
//
// Only that one packet is resent. After a stall (a starved CPU, a driver
// that held its queue) every packet in flight has outlived its timer, yet
// most are still on their way: resending them all would put a second copy
// of the whole window on the line, and on a slow FIFO line the copies
// delay what follows past the timer again, round after round — a collapse
// into duplicates. One packet resent is enough to learn which case it is:
// if the others were lost too, the ack of the resent copy overtakes them
// and the gap in the acks marks them lost at once (see onAck).
func (s *Session) checkTimeout(now time.Time) (wait time.Duration, expired bool) {
	lost := len(s.lostQ)
	wait = s.detectGaps(now)
	if len(s.lostQ) > lost {
		return 0, true
	}
	w := uint64(len(s.slots))
	for q := s.sndUna; q < s.sndNxt; q++ {
		sl := &s.slots[q%w]
		if !sl.inFlight {
			continue
		}
		// The timer restarts when it fires: after a stall, the packets
		// behind the one resent get a full timeout of their own, or a
		// writer that runs late would resend them one after another.
		start := sl.sentAt
		if s.lastTimeout.After(start) {
			start = s.lastTimeout
		}
		due := start.Add(max(sl.timeout, s.rto))
		if now.Before(due) {
			wait = min(wait, due.Sub(now))
			if sl.retrans == 0 && !start.Add(s.rto).Before(now.Add(wait)) {
				// Every packet after this one was sent (or resent) after
				// it and times out no sooner than the timer after that:
				// none is due before wait. (Without this, every call
				// scanned the window.)
				break
			}
			continue
		}
		// A timeout while the peer's packets still arrive means this one
		// was damaged; silence means the line is down, which says nothing
		// about packet size.
		s.markLost(sl, sl.retrans == 0 && now.Sub(s.lastRecv) < s.rto/2)
		s.rto = max(s.rto, min(s.rto*2, 2*time.Second))
		s.lastTimeout = now
		return 0, true
	}
	return wait, false
}

func (s *Session) transmit(sl *sendSlot, now time.Time) {
	s.order++
	sl.order = s.order
	sl.prevSentAt, sl.sentAt = sl.sentAt, now
	if s.inflight == 0 {
		// Nothing in flight: a delivery rate sample starts now, not at an
		// ack long ago (or never).
		s.deliveredAt, s.firstSentAt = now, now
	}
	sl.delivered = s.delivered
	sl.deliveredAt, sl.firstSentAt = s.deliveredAt, s.firstSentAt
	sl.inFlight = true
	sl.lost = false
	// On a slow line a packet waits behind everything in flight before it:
	// its timeout counts that time too, or a queue that builds faster than
	// the RTT estimate follows would look like loss.
	sl.timeout = s.rto
	if bw := s.bwMax(); bw > 0 {
		q := 2 * (s.minRTT + time.Duration(float64(s.inflight+sl.n)/bw*float64(time.Second)))
		// A rate estimate that is stale or low after an outage must
		// not stretch the timeout without bound.
		sl.timeout = min(max(s.rto, q), s.rto+5*time.Second)
	}
	s.inflight += sl.n
	s.lastSent = now
	s.stats.PacketsSent++
}

// ctrlPacket seals frames (already written at scratch[pktHdrLen:]) as an
// unreliable packet.
func (s *Session) ctrlPacket(scratch, frames []byte) []byte {
	ctr := s.ctrlCtr
	s.ctrlCtr++
	scratch[0] = kindCtrl
	binary.BigEndian.PutUint32(scratch[1:5], uint32(ctr))
	out := s.sendCipher.seal(scratch[pktHdrLen:pktHdrLen], ctrlNonce|ctr, scratch[:pktHdrLen], frames)
	s.lastSent = time.Now()
	s.stats.PacketsSent++
	return scratch[:pktHdrLen+len(out)]
}

// maxPiggyAck is the largest ack frame that rides in a data packet; larger
// ones (a long bitmap after losses) go alone.
const maxPiggyAck = 24

// ackLen is the size of the ack frame ackFrame would write.
func (s *Session) ackLen() int {
	nbits := 0
	if s.rcvMax > s.rcvNext+1 {
		nbits = int(s.rcvMax - s.rcvNext - 1)
	}
	n := 4 + (nbits+7)/8
	return 1 + uvarintLen(uint64(n)) + n
}

// ackFrame appends an ack of everything received.
func (s *Session) ackFrame(b []byte) []byte {
	s.ackDue, s.ackWait, s.lazyAck = false, 0, false
	nbits := 0
	if s.rcvMax > s.rcvNext+1 {
		nbits = int(s.rcvMax - s.rcvNext - 1)
	}
	nbytes := (nbits + 7) / 8
	maxBytes := (s.e.mtu - pktOverhed - 8) - 4
	if nbytes > maxBytes {
		nbytes = maxBytes
	}
	b = append(b, frAck)
	b = binary.AppendUvarint(b, uint64(4+nbytes))
	b = binary.BigEndian.AppendUint32(b, uint32(s.rcvNext))
	w := uint64(len(s.rslots))
	for i := 0; i < nbytes; i++ {
		var x byte
		for bit := 0; bit < 8; bit++ {
			q := s.rcvNext + 1 + uint64(i*8+bit)
			if q < s.rcvMax && s.rslots[q%w].present {
				x |= 1 << bit
			}
		}
		b = append(b, x)
	}
	return b
}

func appendFrame(b []byte, typ byte, val []byte) []byte {
	b = append(b, typ)
	b = binary.AppendUvarint(b, uint64(len(val)))
	return append(b, val...)
}

// buildData fills a new reliable packet with queued frames and stream data,
// seals it into its send slot and returns it. limit caps its payload.
func (s *Session) buildData(now time.Time, limit int) []byte {
	w := uint64(len(s.slots))
	seq := s.sndNxt
	sl := &s.slots[seq%w]
	if sl.buf == nil {
		sl.buf = make([]byte, s.e.mtu)
	}
	body := sl.buf[pktHdrLen:pktHdrLen]
	limit = min(limit, s.maxSeg)
	acked := 0
	ackDue, ackWait, lazyAck := s.ackDue, s.ackWait, s.lazyAck
	lqAt, lqBytes := s.fec.sentAt, s.fec.sentBytes
	if (ackDue || ackWait > 0) && s.ackLen() <= maxPiggyAck {
		// The ack rides along. Should this packet be resent, the old ack
		// in it is harmless: acks only ever add to what the peer knows.
		body = s.ackFrame(body)
		if limit > len(body)+linkqMax+256 {
			body = s.appendLinkQ(body, now)
		}
		acked = len(body)
	}
	// Control frames go while they fit the segment; one that is larger
	// than a shrunk segment goes alone (it fits the link's), rather than
	// block every control frame behind it.
	for len(s.ctrlQ) > 0 && (len(body)+len(s.ctrlQ[0]) <= limit || (len(body) == acked && len(body)+len(s.ctrlQ[0]) <= s.maxSeg)) {
		body = append(body, s.ctrlQ[0]...)
		s.ctrlQ = s.ctrlQ[1:]
	}
	body = s.fillStreams(body, limit)
	if len(body) == acked {
		// Nothing to carry the ack (or the damage report) after all.
		s.ackDue, s.ackWait, s.lazyAck = ackDue, ackWait, lazyAck
		s.fec.sentAt, s.fec.sentBytes = lqAt, lqBytes
		return nil
	}
	sl.buf[0] = kindData
	binary.BigEndian.PutUint32(sl.buf[1:5], uint32(seq))
	out := s.sendCipher.seal(sl.buf[pktHdrLen:pktHdrLen], seq, sl.buf[:pktHdrLen], body)
	*sl = sendSlot{buf: sl.buf, n: pktHdrLen + len(out), seq: seq}
	s.sndNxt++
	if s.roundEnd == 0 {
		s.roundEnd = s.sndNxt
	}
	s.transmit(sl, now)
	return sl.buf[:sl.n]
}

// Context returns a context that is cancelled when the session ends.
func (s *Session) Context() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-s.done
		cancel()
	}()
	return ctx
}
