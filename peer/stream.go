package peer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// Priority orders streams that have data to send: a packet is filled from
// the highest priority first, so a chat line never waits behind a bulk
// transfer for more than the packets already on the line.
type Priority uint8

// Priorities for streams.
const (
	PrioBulk        Priority = 0 // file transfers, pipes
	PrioNormal      Priority = 1 // requests and listings
	PrioInteractive Priority = 2 // chat, control: may exceed the congestion window a little
)

// initialCredit is the credit each direction of a stream starts with, as
// the protocol fixes it: how many bytes one side may send before the other
// grants more.
const initialCredit = 256 << 10

// streamWindow is how much a reader lets the peer have outstanding: the
// stream grants the difference to initialCredit as soon as it exists, and
// more as the application reads. A megabyte covers a fast link's
// bandwidth-delay product through the scheduling pauses of a busy machine.
const streamWindow = 1 << 20

// maxStreamWindow is as far as a reader's window grows: while the
// application reads faster than its window covers in two round trips (a
// fast link with a long queue), each credit return doubles the window, up
// to this. A reader that does not keep up never grows it, so what a peer
// can make us buffer stays streamWindow per stream.
const maxStreamWindow = 4 << 20

// maxCredit bounds a stream's send credit, far above any window a peer
// grants.
const maxCredit = 1 << 40

// maxServiceName bounds a service name: its OPEN frame must fit the
// smallest segment a damaged line shrinks to (128 bytes).
const maxServiceName = 64

// A peer may have at most maxAcceptQ streams waiting to be accepted and
// maxStreams open in all; a stream beyond is reset at once.
const (
	maxAcceptQ = 256
	maxStreams = 4096
)

// maxSendBuf caps the bytes a stream buffers on the sending side.
const maxSendBuf = 1 << 20

// ErrStreamReset reports that the peer abandoned the stream.
var ErrStreamReset = errors.New("peer: stream reset by the peer")

// Stream is a reliable, ordered, full-duplex byte stream to the peer, opened
// for a named service. Read and Write may be called concurrently; Close and
// CloseWrite from any goroutine.
type Stream struct {
	s       *Session
	id      uint64
	service string
	prio    Priority
	readC   chan struct{} // wakes a blocked Read
	writeC  chan struct{} // wakes a blocked Write

	// guarded by s.mu
	send        byteRing // written, not yet sent
	credit      int64
	finQueued   bool
	finSent     bool
	sendWaiting bool
	recv        byteRing // received, not yet read
	recvFin     bool
	recvWindow  int64     // bytes the peer may still send
	consumed    int64     // read since the last grant
	window      int64     // the window the reader keeps open (streamWindow..maxStreamWindow)
	grantedAt   time.Time // when credit was last returned
	reset       error
	closedRead  bool
	closedWrite bool
	// resetAfterFin asks the peer to stop sending once our FIN is out.
	resetAfterFin bool
	rdl, wdl      time.Time
}

func (s *Session) newStream(id uint64, service string, prio Priority) *Stream {
	st := &Stream{s: s, id: id, service: service, prio: prio,
		readC: make(chan struct{}, 1), writeC: make(chan struct{}, 1),
		credit: initialCredit, recvWindow: initialCredit, window: streamWindow, grantedAt: time.Now()}
	s.streams[id] = st
	s.live = append(s.live, st)
	return st
}

// dropStream forgets the stream id. Called with s.mu held.
func (s *Session) dropStream(id uint64) {
	delete(s.streams, id)
	for i, st := range s.live {
		if st.id == id {
			last := len(s.live) - 1
			s.live[i], s.live[last] = s.live[last], nil
			s.live = s.live[:last]
			return
		}
	}
}

// OpenStream opens a stream to the peer's service. It does not wait for the
// peer: data written now travels right behind the request.
func (s *Session) OpenStream(ctx context.Context, service string, prio Priority) (*Stream, error) {
	if len(service) == 0 || len(service) > maxServiceName {
		return nil, fmt.Errorf("peer: service name must be 1 to %d bytes", maxServiceName)
	}
	select {
	case <-s.ready:
	case <-s.done:
		return nil, s.Err()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	id := s.nextStream
	s.nextStream += 2
	st := s.newStream(id, service, prio)
	v := binary.AppendUvarint(nil, id)
	v = append(v, byte(prio))
	v = append(v, service...)
	s.ctrlQ = append(s.ctrlQ, appendFrame(nil, frOpen, v))
	st.grantLocked(streamWindow - initialCredit)
	return st, nil
}

// AcceptStream returns the next stream the peer opened.
func (s *Session) AcceptStream(ctx context.Context) (*Stream, error) {
	for {
		s.mu.Lock()
		if len(s.acceptQ) > 0 {
			st := s.acceptQ[0]
			s.acceptQ = s.acceptQ[1:]
			s.mu.Unlock()
			return st, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-s.acceptWake:
		case <-s.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Service returns the name of the service the stream was opened for.
func (st *Stream) Service() string { return st.service }

// Priority returns the stream's priority.
func (st *Stream) Priority() Priority { return st.prio }

// Session returns the session that carries the stream.
func (st *Stream) Session() *Session { return st.s }

func (st *Stream) notify() {
	select {
	case st.readC <- struct{}{}:
	default:
	}
	select {
	case st.writeC <- struct{}{}:
	default:
	}
}

// wait blocks until c is signalled, the deadline passes, or the session
// ends.
func (st *Stream) wait(c chan struct{}, dl time.Time) error {
	var tc <-chan time.Time
	if !dl.IsZero() {
		d := time.Until(dl)
		if d <= 0 {
			return os.ErrDeadlineExceeded
		}
		t := time.NewTimer(d)
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-c:
	case <-st.s.done:
	case <-tc:
		return os.ErrDeadlineExceeded
	}
	return nil
}

// Read reads data the peer wrote. It returns io.EOF after the peer's
// CloseWrite and all its data. A Read that waits with no deadline on a
// stream that is not PrioBulk reads the link itself, sparing the hand-off
// of each packet from the endpoint's read loop.
func (st *Stream) Read(p []byte) (int, error) {
	s := st.s
	for {
		s.mu.Lock()
		if st.recv.Len() > 0 {
			n := st.recv.read(p)
			st.consumed += int64(n)
			if st.consumed >= st.window/4 && !st.recvFin {
				st.grantLocked(st.consumed + st.growWindowLocked())
				st.consumed = 0
			}
			s.mu.Unlock()
			return n, nil
		}
		switch {
		case st.recvFin:
			s.mu.Unlock()
			return 0, io.EOF
		case st.reset != nil:
			err := st.reset
			s.mu.Unlock()
			return 0, err
		case st.closedRead:
			s.mu.Unlock()
			return 0, ErrClosed
		case s.err != nil:
			err := s.err
			s.mu.Unlock()
			return 0, err
		}
		dl := st.rdl
		s.armLazyAck() // we did not reply
		s.mu.Unlock()
		if !dl.IsZero() || st.prio == PrioBulk {
			s.e.needReader()
			if err := st.wait(st.readC, dl); err != nil {
				return 0, err
			}
			continue
		}
		// Read the link ourselves when stream readers lead: the packet
		// then reaches us with no hand-off from the endpoint's read loop.
		// Bulk streams leave it to the read loop, which then takes and
		// decrypts packets while the reader works on what it read.
		if s.e.lead(st) {
			s.e.leadRead(st)
			continue
		}
		st.wait(st.readC, dl)
		s.e.unwait(st)
	}
}

// ready reports whether Read has something to return (data, the end, an
// error) or must look again (a deadline was set). While it has not, an ack
// the leader left lazy is given its timer; once it has, the ack stays lazy:
// the application's reply carries it, or its next Read arms the timer, or
// the read loop's next check does.
func (st *Stream) ready() bool {
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	r := st.recv.Len() > 0 || st.recvFin || st.reset != nil || st.closedRead || s.err != nil || !st.rdl.IsZero()
	if !r {
		s.armLazyAck()
	}
	return r
}

func (st *Stream) notifyRead() {
	select {
	case st.readC <- struct{}{}:
	default:
	}
}

// growWindowLocked doubles the stream's window, and returns by how much,
// when the application read the last quarter of it so fast that the window
// covers less than two round trips at that rate: the peer is waiting for
// credit, not the reader for data.
func (st *Stream) growWindowLocked() int64 {
	now := time.Now()
	el := now.Sub(st.grantedAt)
	st.grantedAt = now
	srtt := st.s.srtt
	if st.window >= maxStreamWindow || srtt <= 0 || el <= 0 {
		return 0
	}
	if rate := float64(st.consumed) / el.Seconds(); rate*2*srtt.Seconds() <= float64(st.window) {
		return 0
	}
	grow := min(st.window, maxStreamWindow-st.window)
	st.window += grow
	return grow
}

// grantLocked lets the peer send n more bytes.
func (st *Stream) grantLocked(n int64) {
	v := binary.AppendUvarint(nil, st.id)
	v = binary.AppendUvarint(v, uint64(n))
	st.recvWindow += n
	st.s.ctrlQ = append(st.s.ctrlQ, appendFrame(nil, frWindow, v))
	st.s.kick()
}

// sendLimit is how much a stream buffers for sending: about two windows of
// the line, enough to keep it busy, little enough that a writer's progress
// tracks the line. Called with s.mu held.
func (s *Session) sendLimit() int {
	return min(max(2*s.cwnd, 16<<10), maxSendBuf)
}

// wakeWriterLocked wakes st's blocked Write once the line has taken half of
// what the stream buffers: a writer woken for every packet sent would
// queue one packet's worth and block again, and its wake-ups would cost
// more than its copies (with an idle CPU, each one starts another thread).
// Called with s.mu held.
func (s *Session) wakeWriterLocked(st *Stream) {
	if st.sendWaiting && st.send.Len() <= s.sendLimit()/2 {
		st.sendWaiting = false
		st.notify()
	}
}

// Write queues p for the peer. It blocks while the stream's send buffer is
// full, and returns once all of p is queued.
func (st *Stream) Write(p []byte) (int, error) {
	one := [1][]byte{p}
	return st.WriteBuffers(one[:]...)
}

// WriteBuffers queues the buffers one after the other, as Write would
// queue them joined, without joining them first: a message's header and
// its payload leave in the same packets, and the payload is copied once.
// It returns how many bytes of them all were queued.
func (st *Stream) WriteBuffers(bufs ...[]byte) (int, error) {
	s := st.s
	done := 0
	i, off := 0, 0 // the next byte to queue: bufs[i][off]
	for {
		s.mu.Lock()
		switch {
		case st.closedWrite:
			s.mu.Unlock()
			return done, ErrClosed
		case st.reset != nil:
			err := st.reset
			s.mu.Unlock()
			return done, err
		case s.err != nil:
			err := s.err
			s.mu.Unlock()
			return done, err
		}
		room := s.sendLimit() - st.send.Len()
		queued := 0
		for i < len(bufs) {
			if off == len(bufs[i]) {
				i, off = i+1, 0 // done with it, or empty: no room needed
				continue
			}
			if room <= 0 {
				break
			}
			n := min(room, len(bufs[i])-off)
			st.send.write(bufs[i][off : off+n])
			queued += n
			room -= n
			off += n
		}
		done += queued
		if queued > 0 {
			s.trySendInline()
		}
		if i == len(bufs) {
			s.mu.Unlock()
			return done, nil
		}
		st.sendWaiting = true
		dl := st.wdl
		s.mu.Unlock()
		s.e.needReader() // the acks and window grants that free room
		if err := st.wait(st.writeC, dl); err != nil {
			return done, err
		}
	}
}

// CloseWrite tells the peer that no more data follows: its Read returns
// io.EOF after the data already written.
func (st *Stream) CloseWrite() error {
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.closedWrite {
		return nil
	}
	st.closedWrite = true
	st.finQueued = true
	s.kick()
	return nil
}

// Close closes both directions. Data already written is still delivered;
// data from the peer not yet read is discarded, and if the peer has not
// finished sending it is told to stop.
func (st *Stream) Close() error {
	st.CloseWrite()
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.closedRead {
		return nil
	}
	st.closedRead = true
	st.recv = byteRing{}
	if !st.recvFin && st.reset == nil && s.err == nil {
		// Tell the peer to stop sending, after the data and FIN already
		// queued: fillStreams sends it right behind them.
		st.resetAfterFin = true
		s.kick()
	}
	st.notify()
	s.e.interrupt()
	return nil
}

// SetReadDeadline sets the deadline for Read.
func (st *Stream) SetReadDeadline(t time.Time) error {
	st.s.mu.Lock()
	st.rdl = t
	st.s.mu.Unlock()
	st.notify()
	st.s.e.interrupt()
	return nil
}

// SetWriteDeadline sets the deadline for Write.
func (st *Stream) SetWriteDeadline(t time.Time) error {
	st.s.mu.Lock()
	st.wdl = t
	st.s.mu.Unlock()
	st.notify()
	return nil
}

// SetDeadline sets both deadlines.
func (st *Stream) SetDeadline(t time.Time) error {
	st.SetReadDeadline(t)
	return st.SetWriteDeadline(t)
}

func (st *Stream) hasOutput() bool {
	pending := st.send.Len()
	return (pending > 0 && st.credit > 0) || (st.finQueued && !st.finSent && pending == 0)
}

func (s *Session) hasWork() bool {
	return len(s.ctrlQ) > 0 || s.pendingStreamData()
}

func (s *Session) urgentWaiting() bool {
	if len(s.ctrlQ) > 0 {
		return true
	}
	for _, st := range s.live {
		if st.prio >= PrioInteractive && st.hasOutput() {
			return true
		}
	}
	return false
}

// fillStreams appends stream frames to body, highest priority first and
// round robin within a priority, until limit.
func (s *Session) fillStreams(body []byte, limit int) []byte {
	ready := s.readyBuf[:0]
	for _, st := range s.live {
		if st.hasOutput() {
			ready = append(ready, st)
		}
	}
	s.readyBuf = ready[:0]
	if len(ready) == 0 {
		return body
	}
	if len(ready) > 1 {
		s.rr++
		rr := uint64(s.rr)
		slices.SortFunc(ready, func(a, b *Stream) int {
			if a.prio != b.prio {
				return int(b.prio) - int(a.prio)
			}
			return int((a.id+rr)%97) - int((b.id+rr)%97)
		})
	}
	for _, st := range ready {
		idLen := uvarintLen(st.id)
		room := limit - len(body) - 1 - idLen
		if room < 4 {
			break
		}
		pending := st.send.Len()
		n := min(pending, int(min(st.credit, int64(room))))
		// The length prefix itself takes room.
		for n > 0 && 1+uvarintLen(uint64(idLen+n))+idLen+n > limit-len(body) {
			n--
		}
		fin := st.finQueued && n == pending
		if n == 0 && !fin {
			continue
		}
		typ := byte(frStream)
		if fin {
			typ = frFin
			st.finSent = true
		}
		body = append(body, typ)
		body = binary.AppendUvarint(body, uint64(idLen+n))
		body = binary.AppendUvarint(body, st.id)
		a, b := st.send.peek(n)
		body = append(append(body, a...), b...)
		st.send.discard(n)
		st.credit -= int64(n)
		s.stats.BytesSent += uint64(n)
		s.wakeWriterLocked(st)
		if st.finSent && st.resetAfterFin {
			v := binary.AppendUvarint(nil, st.id)
			v = append(v, "closed by the reader"...)
			s.ctrlQ = append(s.ctrlQ, appendFrame(nil, frReset, v))
			st.resetAfterFin = false
		}
		if st.finSent && (st.recvFin || st.closedRead || st.reset != nil) {
			s.dropStream(st.id)
		}
	}
	return body
}

func (s *Session) onStreamData(v []byte, fin bool) {
	id, k := binary.Uvarint(v)
	if k <= 0 {
		s.stats.Rejected++
		return
	}
	data := v[k:]
	st := s.streams[id]
	if st == nil {
		return // a stream we already closed
	}
	s.stats.BytesRecv += uint64(len(data))
	if !st.closedRead {
		if int64(len(data)) > st.recvWindow {
			// The peer sent past its credit (a broken peer): what came is
			// no longer whole, so the stream ends with an error on both
			// sides, never with a clean end over a gap, and what the peer
			// sends on it later is ignored.
			st.reset = fmt.Errorf("%w: the peer overran the stream window", ErrStreamReset)
			st.recv = byteRing{}
			st.send = byteRing{}
			st.finQueued = false
			r := binary.AppendUvarint(nil, id)
			r = append(r, "window overrun"...)
			s.ctrlQ = append(s.ctrlQ, appendFrame(nil, frReset, r))
			s.dropStream(id)
			s.kick()
			st.notify()
			return
		}
		st.recvWindow -= int64(len(data))
		st.recv.write(data)
	}
	if fin {
		st.recvFin = true
		if st.finSent || st.closedRead {
			s.dropStream(id)
		}
	}
	if st.reset != nil {
		st.notify() // a blocked Write must see it too
	} else {
		st.notifyRead() // data and FIN concern readers only: writers are not woken per packet
	}
}

func (s *Session) onOpen(v []byte) {
	id, k := binary.Uvarint(v)
	if k <= 0 || len(v) < k+2 {
		s.stats.Rejected++
		return
	}
	mine := (id%2 == 1) == s.initiator
	if mine || s.streams[id] != nil {
		s.stats.Rejected++
		return
	}
	if len(s.acceptQ) >= maxAcceptQ || len(s.streams) >= maxStreams {
		// A peer opening streams faster than they are accepted, or
		// without end: each would hold a window of memory.
		s.stats.Rejected++
		r := binary.AppendUvarint(nil, id)
		r = append(r, "too many streams"...)
		s.ctrlQ = append(s.ctrlQ, appendFrame(nil, frReset, r))
		s.kick()
		return
	}
	st := s.newStream(id, string(v[k+1:]), Priority(v[k]))
	st.grantLocked(streamWindow - initialCredit)
	s.acceptQ = append(s.acceptQ, st)
	select {
	case s.acceptWake <- struct{}{}:
	default:
	}
}

func (s *Session) onWindow(v []byte) {
	id, k := binary.Uvarint(v)
	if k <= 0 {
		return
	}
	inc, k2 := binary.Uvarint(v[k:])
	if k2 <= 0 {
		return
	}
	if st := s.streams[id]; st != nil {
		// Saturated: a broken peer's huge increment must not wrap the
		// credit negative (which would stop the stream for good).
		st.credit = min(st.credit+int64(min(inc, maxCredit)), maxCredit)
		s.kick()
	}
}

func (s *Session) onReset(v []byte) {
	id, k := binary.Uvarint(v)
	if k <= 0 {
		return
	}
	if st := s.streams[id]; st != nil {
		st.reset = fmt.Errorf("%w: %s", ErrStreamReset, printable(v[k:]))
		st.send = byteRing{}
		st.finQueued = false
		s.dropStream(id)
		st.notify()
	}
}
