package main

import (
	"context"
	"io"

	"github.com/p2plink/p2plink/peer"
	"github.com/p2plink/p2plink/peer/chat"
	"github.com/p2plink/p2plink/peer/progress"
	"github.com/p2plink/p2plink/peer/xfer"
)

// reporter feeds xfer's progress callbacks to a progress.Reporter.
type reporter struct{ r *progress.Reporter }

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

func (r *reporter) update(p xfer.Progress) { r.r.Update(p.Name, p.Done, p.Total) }
func (r *reporter) finish()                { r.r.Finish() }

// chat joins stdin lines to the stream and the peer's lines to stdout.
func (e *env) chat(ctx context.Context, name string, st *peer.Stream) error {
	return chat.Run(ctx, st, e.stdin, e.stdout, chat.Options{Name: name})
}
