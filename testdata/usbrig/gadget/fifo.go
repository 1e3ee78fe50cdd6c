package main

import "sync"

// fifo is one direction of the cable: packets read from one end's bulk OUT
// endpoint wait here for the other end's bulk IN endpoint. Its capacity
// counts bytes queued plus the buffer of the read in flight, so a host
// writing into a full FIFO sees its OUT transfer NAKed until the far host
// reads, as on the real chip.
type fifo struct {
	mu       sync.Mutex
	cond     *sync.Cond
	capacity int
	maxPkts  int
	pkts     [][]byte
	queued   int // bytes in pkts
	reserved int // bytes promised to reads in flight
	gen      uint64
	dropZLP  func() bool
}

func newFIFO(capacity int, dropZLP func() bool) *fifo {
	f := &fifo{capacity: capacity, maxPkts: 64, dropZLP: dropZLP}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// reserve blocks until n bytes are free and holds them for a read.
func (f *fifo) reserve(n int) {
	f.mu.Lock()
	for f.capacity-f.queued-f.reserved < n || len(f.pkts) >= f.maxPkts {
		f.cond.Wait()
	}
	f.reserved += n
	f.mu.Unlock()
}

// commit releases a reservation of n bytes and queues pkt (which may be
// empty: a zero-length packet), unless pkt is nil (the read failed).
func (f *fifo) commit(n int, pkt []byte) {
	f.mu.Lock()
	f.reserved -= n
	if pkt != nil && !(len(pkt) == 0 && f.dropZLP()) {
		f.pkts = append(f.pkts, pkt)
		f.queued += len(pkt)
	}
	f.cond.Broadcast()
	f.mu.Unlock()
}

// peek blocks until a packet is queued and returns it with the generation
// it belongs to.
func (f *fifo) peek() ([]byte, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.pkts) == 0 {
		f.cond.Wait()
	}
	return f.pkts[0], f.gen
}

// pop removes the packet peek returned, unless a flush came in between.
func (f *fifo) pop(gen uint64) {
	f.mu.Lock()
	if gen == f.gen && len(f.pkts) > 0 {
		f.queued -= len(f.pkts[0])
		f.pkts[0] = nil
		f.pkts = f.pkts[1:]
	}
	f.cond.Broadcast()
	f.mu.Unlock()
}

// flush drops everything queued: the receiving end went away.
func (f *fifo) flush() {
	f.mu.Lock()
	f.pkts = nil
	f.queued = 0
	f.gen++
	f.cond.Broadcast()
	f.mu.Unlock()
}
