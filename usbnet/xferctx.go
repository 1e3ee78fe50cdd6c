package usbnet

import (
	"context"
	"sync"
	"time"
)

// xferCtx is a reusable context for the transfers of one goroutine, so that
// giving every transfer a deadline allocates nothing per frame. It ends when
// its parent (the session) ends, when the timeout of the current transfer
// passes, or on cancel. begin starts a transfer, finish ends it.
type xferCtx struct {
	parent context.Context
	timer  *time.Timer
	cancel func() // ends the current transfer; allocated once

	mu   sync.Mutex
	done chan struct{}
	err  error
	at   time.Time // deadline of the current transfer
}

func newXferCtx(parent context.Context) *xferCtx {
	x := &xferCtx{parent: parent, done: make(chan struct{})}
	x.cancel = func() { x.end(context.Canceled) }
	x.timer = time.AfterFunc(time.Hour, x.expire)
	x.timer.Stop()
	context.AfterFunc(parent, func() { x.end(parent.Err()) })
	return x
}

func (x *xferCtx) end(err error) {
	x.mu.Lock()
	if x.err == nil {
		x.err = err
		close(x.done)
	}
	x.mu.Unlock()
}

// expire is the timer's callback. A late callback of an earlier transfer
// finds the deadline not yet reached and does nothing.
func (x *xferCtx) expire() {
	x.mu.Lock()
	late := x.at.IsZero() || time.Now().Before(x.at)
	x.mu.Unlock()
	if !late {
		x.end(context.DeadlineExceeded)
	}
}

// begin starts a transfer that may last d.
func (x *xferCtx) begin(d time.Duration) {
	x.mu.Lock()
	if x.err != nil && x.parent.Err() == nil {
		x.err = nil
		x.done = make(chan struct{})
	}
	x.at = time.Now().Add(d)
	x.mu.Unlock()
	x.timer.Reset(d)
}

// finish ends the current transfer and returns the error its context ended
// with, or nil.
func (x *xferCtx) finish() error {
	x.timer.Stop()
	x.mu.Lock()
	defer x.mu.Unlock()
	x.at = time.Time{}
	return x.err
}

func (x *xferCtx) Deadline() (time.Time, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.at, !x.at.IsZero()
}

func (x *xferCtx) Done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.done
}

func (x *xferCtx) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

func (x *xferCtx) Value(key any) any { return x.parent.Value(key) }
