package linktest

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2plink/p2plink/link"
)

// signal wakes one waiter on c without blocking. Waiters re-check the state
// they wait for, so a stale signal costs one spurious wake-up, never a loss.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// closedChan reports whether c is closed, without blocking.
func closedChan(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// plug is the state of a cable: plugged in or pulled out.
type plug struct {
	out atomic.Bool // unplugged
	mu  sync.Mutex
	ch  chan struct{} // closed while unplugged
}

func newPlug() *plug { return &plug{ch: make(chan struct{})} }

func (p *plug) unplug() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out.Load() {
		return false
	}
	p.out.Store(true)
	close(p.ch)
	return true
}

func (p *plug) replug() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.out.Load() {
		return
	}
	p.out.Store(false)
	p.ch = make(chan struct{})
}

// gone returns a channel that is closed while the cable is out.
func (p *plug) gone() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ch
}

// counters backs link.Stats with atomics.
type counters struct {
	framesIn, framesOut, bytesIn, bytesOut, dropped atomic.Uint64
}

func (c *counters) stats() link.Stats {
	return link.Stats{
		FramesIn:  c.framesIn.Load(),
		FramesOut: c.framesOut.Load(),
		BytesIn:   c.bytesIn.Load(),
		BytesOut:  c.bytesOut.Load(),
		Dropped:   c.dropped.Load(),
	}
}

// FaultStats counts what the fault model did to frames in flight, summed over
// both directions of a pipe or every station of a hub.
type FaultStats struct {
	Lost       uint64 // frames lost to the Loss probability
	Duplicated uint64 // extra copies made by the Duplicate probability
	Unplugged  uint64 // frames lost because a cable was out
	Overflowed uint64 // frames dropped because the receiver's queue was full
}

type faultCounters struct {
	lost, duplicated, unplugged, overflowed atomic.Uint64
}

func (f *faultCounters) stats() FaultStats {
	return FaultStats{
		Lost:       f.lost.Load(),
		Duplicated: f.duplicated.Load(),
		Unplugged:  f.unplugged.Load(),
		Overflowed: f.overflowed.Load(),
	}
}

// slot is one frame buffer of a queue's ring.
type slot struct {
	buf  []byte
	at   time.Time // delivery time; zero means at once
	from net.Addr
}

// queue is a bounded ring of frames waiting for one receiver. Slot buffers
// are allocated once, on first use, and reused: the fast path allocates
// nothing.
type queue struct {
	mu       sync.Mutex
	slots    []slot
	head, n  int
	closed   bool          // the receiver closed: frames are discarded
	mtu      int           // capacity of a slot buffer
	readable chan struct{} // signalled when a frame is added
	writable chan struct{} // signalled when a slot is freed
}

func newQueue(n, mtu int) *queue {
	return &queue{
		slots:    make([]slot, n),
		mtu:      mtu,
		readable: make(chan struct{}, 1),
		writable: make(chan struct{}, 1),
	}
}

// pushResult says what push did.
type pushResult int

const (
	pushed     pushResult = iota // the frame is queued
	pushClosed                   // the receiver is closed: the frame is discarded
	pushFull                     // no room: nothing was done
)

// push adds a copy of p, due at the time m gives for it (m is asked only when
// there is room, so a full queue does not consume line time).
func (q *queue) push(p []byte, m *medium, from net.Addr) pushResult {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return pushClosed
	}
	if q.n == len(q.slots) {
		q.mu.Unlock()
		return pushFull
	}
	s := &q.slots[(q.head+q.n)%len(q.slots)]
	if s.buf == nil {
		s.buf = make([]byte, 0, q.mtu)
	}
	s.buf = append(s.buf[:0], p...)
	s.at, s.from = m.when(len(p)), from
	q.n++
	room := q.n < len(q.slots)
	q.mu.Unlock()
	signal(q.readable)
	if room {
		signal(q.writable) // pass the baton to another waiting writer
	}
	return pushed
}

// popResult says what pop found.
type popResult int

const (
	popEmpty  popResult = iota // nothing queued
	popLater                   // a frame is queued but not due yet
	popOK                      // a frame was copied out
	popShort                   // a frame was dropped: p too short
	popClosed                  // the queue is closed
)

// pop copies the head frame into p if it is due. For popLater it returns how
// long until it is.
func (q *queue) pop(p []byte) (n int, from net.Addr, wait time.Duration, r popResult) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, nil, 0, popClosed
	}
	if q.n == 0 {
		q.mu.Unlock()
		return 0, nil, 0, popEmpty
	}
	s := &q.slots[q.head]
	if !s.at.IsZero() {
		if d := time.Until(s.at); d > 0 {
			q.mu.Unlock()
			return 0, nil, d, popLater
		}
	}
	r = popOK
	if len(p) < len(s.buf) {
		r = popShort
	} else {
		n = copy(p, s.buf)
	}
	from = s.from
	s.from = nil
	q.head = (q.head + 1) % len(q.slots)
	q.n--
	more := q.n > 0
	q.mu.Unlock()
	signal(q.writable)
	if more {
		signal(q.readable)
	}
	return n, from, 0, r
}

// dropInFlight discards the frames not yet due (they were on the wire when
// the cable was pulled) and returns how many.
func (q *queue) dropInFlight() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	for i := 0; i < q.n; i++ {
		s := &q.slots[(q.head+i)%len(q.slots)]
		if !s.at.IsZero() && s.at.After(now) {
			dropped := q.n - i
			for j := i; j < q.n; j++ {
				q.slots[(q.head+j)%len(q.slots)].from = nil
			}
			q.n = i
			signal(q.writable)
			return dropped
		}
	}
	return 0
}

// close discards everything queued and makes later pushes no-ops.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.n = 0
	for i := range q.slots {
		q.slots[i] = slot{}
	}
	q.mu.Unlock()
	signal(q.writable)
	signal(q.readable)
}
