//go:build unix

package main

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestCheckLocalFifo: checking the files to send does not open a named
// pipe, which would wait for a writer (it hung before any peer was looked
// for; found by review); xfer then skips it as a special file.
func TestCheckLocalFifo(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skip(err)
	}
	done := make(chan error, 1)
	go func() { done <- checkLocal([]string{p}) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("checkLocal of a named pipe: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("checkLocal blocked for 2 s opening a named pipe")
	}
}
