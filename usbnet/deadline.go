package usbnet

import (
	"sync"
	"time"
)

// deadline is a settable deadline as package net has them: wait returns a
// channel closed once the deadline has passed, and a hook (the cancel
// function of a transfer in flight) runs when it passes.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{}
	hook  func()
}

func newDeadline() *deadline { return &deadline{ch: make(chan struct{})} }

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// set arms the deadline at t; the zero time clears it.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.ch // the timer fired: its callback closes ch without the lock
	}
	d.timer = nil
	closed := isClosed(d.ch)
	if t.IsZero() {
		if closed {
			d.ch = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.ch = make(chan struct{})
		}
		c := d.ch
		d.timer = time.AfterFunc(dur, func() {
			close(c)
			d.mu.Lock()
			h := d.hook
			current := d.ch == c
			d.mu.Unlock()
			if current && h != nil {
				h()
			}
		})
		return
	}
	if !closed {
		close(d.ch)
	}
	if d.hook != nil {
		d.hook()
	}
}

// wait returns a channel closed when the deadline passes.
func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

// expired reports whether the deadline has passed.
func (d *deadline) expired() bool { return isClosed(d.wait()) }

// arm installs f to run when the deadline passes, and reports whether it
// has passed already (then f is not installed).
func (d *deadline) arm(f func()) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if isClosed(d.ch) {
		return true
	}
	d.hook = f
	return false
}

// disarm removes the hook.
func (d *deadline) disarm() {
	d.mu.Lock()
	d.hook = nil
	d.mu.Unlock()
}

// stop disarms the timer for good.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.hook = nil
}
