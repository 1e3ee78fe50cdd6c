package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/p2plink/p2plink/peer"
	"github.com/p2plink/p2plink/peer/xfer"
)

// reporter prints transfer progress.
type reporter struct {
	w     io.Writer
	json  bool
	mu    sync.Mutex
	last  time.Time
	start time.Time
	p     xfer.Progress
}

func newReporter(w io.Writer, asJSON bool) *reporter {
	return &reporter{w: w, json: asJSON, start: time.Now()}
}

func (r *reporter) update(p xfer.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.p = p
	now := time.Now()
	if now.Sub(r.last) < 500*time.Millisecond && p.Done != p.Total {
		return
	}
	r.last = now
	r.print(now)
}

func (r *reporter) print(now time.Time) {
	p := r.p
	el := now.Sub(r.start).Seconds()
	rate := float64(p.Done) / max(el, 1e-9)
	eta := 0.0
	if rate > 0 {
		eta = float64(p.Total-p.Done) / rate
	}
	if r.json {
		b, _ := json.Marshal(map[string]any{"file": p.Name, "done": p.Done, "total": p.Total, "rate": int64(rate), "eta_s": int64(eta)})
		fmt.Fprintln(r.w, string(b))
		return
	}
	pct := 100.0
	if p.Total > 0 {
		pct = 100 * float64(p.Done) / float64(p.Total)
	}
	fmt.Fprintf(r.w, "%5.1f%% %s of %s  %s/s  ETA %ds  %s\n", pct, human(p.Done), human(p.Total), human(int64(rate)), int64(eta), p.Name)
}

func (r *reporter) finish() {}

// chat joins stdin lines to the stream and the peer's lines to stdout.
func (e *env) chat(ctx context.Context, st *peer.Stream) error {
	name := st.Session().Peer().Name
	errc := make(chan error, 2)
	go func() {
		sc := bufio.NewScanner(e.stdin)
		for sc.Scan() {
			if _, err := fmt.Fprintln(st, sc.Text()); err != nil {
				errc <- err
				return
			}
		}
		st.CloseWrite()
		errc <- sc.Err()
	}()
	sc := bufio.NewScanner(st)
	for sc.Scan() {
		fmt.Fprintf(e.stdout, "%s: %s\n", name, sc.Text())
	}
	return sc.Err()
}
