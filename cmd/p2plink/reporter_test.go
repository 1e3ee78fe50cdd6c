package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/p2plink/p2plink/peer/xfer"
)

// TestReporterQuietWhenNothingMoved: a transfer refused before any data
// (a peer of another version) shows no "100 % of 0 B" line; one that
// moved data shows its final line.
func TestReporterQuietWhenNothingMoved(t *testing.T) {
	var b bytes.Buffer
	r := newReporter(&b, true, "send")
	r.finish()
	if b.Len() != 0 {
		t.Errorf("a transfer that moved nothing printed %q", b.String())
	}
	r = newReporter(&b, true, "send")
	r.update(xfer.Progress{Name: "f", Done: 10, Total: 10, FileDone: 10, FileSize: 10})
	r.finish()
	if !strings.Contains(b.String(), `"final":true`) {
		t.Errorf("a transfer that moved data printed %q, want a final progress line", b.String())
	}
}
