// Package deadline provides a settable deadline with the semantics of
// package net's SetDeadline: a blocked call waits on a channel that is
// closed once the deadline passes; the zero time clears the deadline; a time
// in the past expires it at once; and it may be moved while calls wait on it.
//
// It uses only time.Now, time.Until and time.AfterFunc, so it runs on the
// fake clock inside a testing/synctest bubble.
package deadline

import (
	"sync"
	"time"
)

// Deadline is a settable deadline. Create it with New; its methods are safe
// for concurrent use. Setting it allocates (a timer, and a channel when it
// reopens); waiting on it does not.
type Deadline struct {
	hookMu sync.Mutex // held while the hook may run; taken before mu

	mu    sync.Mutex
	timer *time.Timer
	gen   uint64        // bumped by every Set, so a replaced timer does nothing
	c     chan struct{} // closed once the deadline passed
	fired bool          // c is closed
	hook  func()        // run on expiry; see Arm
}

// New returns a Deadline that is not set.
func New() *Deadline { return &Deadline{c: make(chan struct{})} }

// Set moves the deadline to t. The zero t clears it; a t in the past expires
// it at once. A deadline moved into the future after it passed reopens: calls
// that wait from then on get a fresh channel, while those already released
// stay released. Callers waiting on the channel of a deadline that has not
// passed keep waiting on it until the new time.
func (d *Deadline) Set(t time.Time) {
	d.hookMu.Lock()
	defer d.hookMu.Unlock()
	d.mu.Lock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if t.IsZero() {
		d.reopen()
		d.mu.Unlock()
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		h := d.expire()
		d.mu.Unlock()
		if h != nil {
			h()
		}
		return
	}
	d.reopen()
	gen := d.gen
	d.timer = time.AfterFunc(dur, func() { d.fire(gen) })
	d.mu.Unlock()
}

// fire is the timer's callback for the Set that bumped gen to gen.
func (d *Deadline) fire(gen uint64) {
	d.hookMu.Lock()
	defer d.hookMu.Unlock()
	d.mu.Lock()
	if d.gen != gen {
		d.mu.Unlock()
		return // replaced by a later Set
	}
	d.timer = nil
	h := d.expire()
	d.mu.Unlock()
	if h != nil {
		h()
	}
}

// expire closes c if it is open and returns the hook to run, or nil when the
// deadline had passed already. Called with mu held.
func (d *Deadline) expire() func() {
	if d.fired {
		return nil
	}
	close(d.c)
	d.fired = true
	return d.hook
}

// reopen gives the deadline an open channel again. Called with mu held.
func (d *Deadline) reopen() {
	if d.fired {
		d.c = make(chan struct{})
		d.fired = false
	}
}

// Wait returns a channel that is closed when the deadline passes. Fetch it
// again after every wake-up: a Set that reopens the deadline replaces it.
func (d *Deadline) Wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.c
}

// Passed reports whether the deadline has passed (and has not been moved
// into the future or cleared since).
func (d *Deadline) Passed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fired
}

// Arm installs f to run each time the deadline passes, once per expiry,
// until Disarm or Stop (typically the cancel function of an I/O operation in
// flight); it replaces any hook installed before. If the deadline has passed already, Arm installs nothing
// and returns true: the caller should fail at once. f runs on the timer's
// goroutine or on the one calling Set, and must not call Set, Arm, Disarm or
// Stop on d.
func (d *Deadline) Arm(f func()) (passed bool) {
	d.hookMu.Lock()
	defer d.hookMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fired {
		return true
	}
	d.hook = f
	return false
}

// Disarm removes the hook installed by Arm. Once Disarm returns, the hook is
// not running and will not run.
func (d *Deadline) Disarm() {
	d.hookMu.Lock()
	defer d.hookMu.Unlock()
	d.mu.Lock()
	d.hook = nil
	d.mu.Unlock()
}

// Stop stops the pending timer and removes the hook; call it when the owner
// closes. It does not change whether the deadline has passed. A later Set
// arms the deadline again.
func (d *Deadline) Stop() {
	d.hookMu.Lock()
	defer d.hookMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.hook = nil
}
