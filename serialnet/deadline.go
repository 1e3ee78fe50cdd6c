package serialnet

import (
	"sync"
	"time"
)

// deadline is a settable deadline that blocked calls wait on through a
// channel, closed when the deadline passes. It may be set while calls wait.
// Setting it allocates (a timer, a channel); waiting on it does not.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	gen   uint64        // bumped by every set, so a stale timer does nothing
	c     chan struct{} // closed once the deadline passed
	fired bool          // c is closed
}

func newDeadline() *deadline { return &deadline{c: make(chan struct{})} }

// set moves the deadline to t; the zero t clears it.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if t.IsZero() {
		d.rearm()
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		if !d.fired {
			close(d.c)
			d.fired = true
		}
		return
	}
	d.rearm()
	gen := d.gen
	d.timer = time.AfterFunc(dur, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen && !d.fired {
			close(d.c)
			d.fired = true
		}
	})
}

// rearm makes c open again. Called with mu held.
func (d *deadline) rearm() {
	if d.fired {
		d.c = make(chan struct{})
		d.fired = false
	}
}

// wait returns a channel closed when the deadline passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.c
}

// passed reports whether the deadline has passed.
func (d *deadline) passed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fired
}
