package usbnet

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestXferCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent, cancelParent := context.WithCancel(context.Background())
		x := newXferCtx(parent)

		// A transfer that finishes in time sees no error, and the
		// timer it armed does not end the next one.
		x.begin(time.Second)
		time.Sleep(900 * time.Millisecond)
		if err := x.finish(); err != nil {
			t.Fatalf("finished in time: %v", err)
		}
		x.begin(time.Second)
		time.Sleep(500 * time.Millisecond) // past the first transfer's deadline
		if err := x.Err(); err != nil {
			t.Fatalf("second transfer ended by the first one's timer: %v", err)
		}
		// It expires at its own deadline.
		start := time.Now()
		<-x.Done()
		if d := time.Since(start); d != 500*time.Millisecond || !errors.Is(x.finish(), context.DeadlineExceeded) {
			t.Fatalf("expired after %v with %v", d, x.Err())
		}
		// After an expiry the context is fresh for the next transfer.
		x.begin(time.Second)
		select {
		case <-x.Done():
			t.Fatal("a new transfer starts ended")
		default:
		}
		x.cancel()
		<-x.Done()
		if !errors.Is(x.finish(), context.Canceled) {
			t.Fatalf("cancel: %v", x.Err())
		}
		// The parent's end ends the transfer and every later one.
		x.begin(time.Hour)
		cancelParent()
		<-x.Done()
		x.finish()
		x.begin(time.Hour)
		if !errors.Is(x.finish(), context.Canceled) {
			t.Fatalf("transfer after the parent ended: %v", x.Err())
		}
	})
}
