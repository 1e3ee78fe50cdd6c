package main

import (
	"context"
	"io"
	"sync/atomic"

	"github.com/p2plink/p2plink/peer"
	"github.com/p2plink/p2plink/peer/chat"
	"github.com/p2plink/p2plink/peer/progress"
	"github.com/p2plink/p2plink/peer/xfer"
)

// reporter feeds xfer's progress callbacks to a progress.Reporter. A
// transfer that ends before any data moved (refused at the hello, every
// file already there) shows no progress line: a "100 % of 0 B" above an
// error would mislead.
type reporter struct {
	r       *progress.Reporter
	started atomic.Bool
}

func newReporter(w io.Writer, asJSON bool, labels ...string) *reporter {
	label := ""
	if len(labels) > 0 {
		label = labels[0]
	}
	mode := progress.Auto
	if asJSON {
		mode = progress.JSON
	}
	return &reporter{r: progress.New(w, progress.Options{Mode: mode, Label: label})}
}

func (r *reporter) update(p xfer.Progress) {
	r.started.Store(true)
	r.r.Kept(p.Kept)
	r.r.Update(p.Name, p.Done, p.Total)
}

func (r *reporter) finish() {
	if r.started.Load() {
		r.r.Finish()
	}
}

// chat joins stdin lines to the stream and the peer's lines to stdout.
func (e *env) chat(ctx context.Context, name string, st *peer.Stream) error {
	return chat.Run(ctx, st, e.stdin, e.stdout, chat.Options{Name: name})
}
