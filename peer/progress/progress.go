// Package progress reports the progress of a transfer: a bar with bytes, rate
// and ETA on a terminal, plain periodic lines otherwise, or one JSON object
// per update for scripts.
//
// The rate is smoothed with an exponentially weighted moving average (time
// constant RateWindow), so it neither jumps with every chunk nor lags for
// long after the line speed changes. No ETA is shown until the rate has been
// measured over at least a second.
//
// A Reporter is fed by the transfer (Update, e.g. from an xfer progress
// callback) and writes at most once per Interval, plus once at Finish. Time
// comes from Options.Now, so tests run on a fake clock.
package progress

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// Mode selects the output format.
type Mode int

// Output modes.
const (
	Auto  Mode = iota // Bar if the writer is a terminal, Lines otherwise
	Bar               // one line redrawn in place with a bar
	Lines             // one plain line per update
	JSON              // one JSON object per line per update
)

// RateWindow is the time constant of the rate's moving average.
const RateWindow = 3 * time.Second

const (
	minSample  = 100 * time.Millisecond // shortest interval a rate is measured over
	etaWarmup  = time.Second            // rate measured this long before an ETA is shown
	maxETA     = 100 * time.Hour        // longer ETAs are shown as unknown
	defaultBar = 80
)

// Options configure a Reporter. The zero value is valid.
type Options struct {
	Mode Mode
	// Label starts every line (e.g. "send", "receive"); may be empty.
	Label string
	// Interval is the least time between two outputs; 0 means 100 ms for
	// Bar and 1 s for Lines and JSON.
	Interval time.Duration
	// Width is the line width for Bar; 0 means the terminal's width, or 80.
	Width int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Reporter turns updates into output. Its methods are safe for concurrent
// use.
type Reporter struct {
	mu   sync.Mutex
	w    io.Writer
	opts Options
	mode Mode

	start      time.Time
	startDone  int64 // moved (done less kept) at start
	kept       int64 // of done, not moved by this transfer (see Kept)
	name       string
	done       int64
	total      int64
	sampleT    time.Time // start of the current rate sample
	sampleDone int64
	rate       float64 // bytes per second, smoothed
	rated      time.Duration
	lastOut    time.Time
	outDone    int64 // done at the last output
	outputs    int
	finished   bool
	lastLen    int
}

// New returns a Reporter writing to w.
func New(w io.Writer, opts Options) *Reporter {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Reporter{w: w, opts: opts, mode: opts.Mode}
	if r.mode == Auto {
		r.mode = Lines
		if f, ok := w.(interface{ Fd() uintptr }); ok && term.IsTerminal(int(f.Fd())) {
			r.mode = Bar
			if opts.Width == 0 {
				if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 20 {
					r.opts.Width = cols
				}
			}
		}
	}
	if r.opts.Width <= 0 {
		r.opts.Width = defaultBar
	}
	if r.opts.Interval <= 0 {
		r.opts.Interval = time.Second
		if r.mode == Bar {
			r.opts.Interval = 100 * time.Millisecond
		}
	}
	return r
}

// Mode returns the output mode in use (Auto resolved).
func (r *Reporter) Mode() Mode { return r.mode }

// Update records that done of total bytes are through, the current file being
// name, and writes a report if Interval has passed since the last one (or the
// file changed, or it is complete).
func (r *Reporter) Update(name string, done, total int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.opts.Now()
	moved := done - r.kept // rates count what this transfer moves
	if r.start.IsZero() || done < r.done {
		r.start, r.sampleT, r.sampleDone, r.rate, r.rated = now, now, moved, 0, 0
		r.startDone = moved // a resumed transfer starts with what it kept
	}
	if dt := now.Sub(r.sampleT); dt >= minSample {
		inst := float64(moved-r.sampleDone) / dt.Seconds()
		if r.rated == 0 {
			r.rate = inst
		} else {
			alpha := 1 - math.Exp(-dt.Seconds()/RateWindow.Seconds())
			r.rate += alpha * (inst - r.rate)
		}
		r.rated += dt
		r.sampleT, r.sampleDone = now, moved
	}
	changed := name != r.name
	r.name, r.done, r.total = name, done, total
	if r.outputs == 0 || changed || now.Sub(r.lastOut) >= r.opts.Interval || (done == total && r.outDone != done) {
		r.emit(now, false)
	}
}

// Kept says how much of the done of the following updates this transfer
// did not move (a resumed file's kept prefix, a file already there), so
// that rates count only what it moves; a transfer that resumes a second
// file would otherwise show the kept part as a burst of speed. Zero by
// default.
func (r *Reporter) Kept(n int64) {
	r.mu.Lock()
	r.kept = n
	r.mu.Unlock()
}

// Finish writes the final report (and ends the bar's line). Later updates
// are ignored.
func (r *Reporter) Finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return
	}
	r.emit(r.opts.Now(), true)
	r.finished = true
}

// Rate returns the smoothed rate in bytes per second (0 before the first
// measurement).
func (r *Reporter) Rate() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rate
}

// ETA returns the estimated time to completion, and false while it is not
// known (at the start, or with no progress).
func (r *Reporter) ETA() (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.eta()
}

func (r *Reporter) eta() (time.Duration, bool) {
	if r.done >= r.total && r.total > 0 {
		return 0, true
	}
	if r.rated < etaWarmup || r.rate <= 0 {
		return 0, false
	}
	s := float64(r.total-r.done) / r.rate
	if s > maxETA.Seconds() {
		return 0, false
	}
	return time.Duration(s * float64(time.Second)).Round(time.Second), true
}

// jsonReport is one JSON output.
type jsonReport struct {
	Label    string   `json:"label,omitempty"`
	Name     string   `json:"name"`
	Done     int64    `json:"done"`
	Total    int64    `json:"total"`
	Percent  float64  `json:"percent"`
	Rate     float64  `json:"rate"`
	ETA      *float64 `json:"eta_s"`
	Elapsed  float64  `json:"elapsed_s"`
	Finished bool     `json:"final"`
}

func (r *Reporter) emit(now time.Time, final bool) {
	if r.finished {
		return
	}
	r.lastOut, r.outDone = now, r.done
	r.outputs++
	pct := 100.0
	if r.total > 0 {
		pct = 100 * float64(r.done) / float64(r.total)
	}
	eta, etaOK := r.eta()
	elapsed := now.Sub(r.start)
	if r.start.IsZero() {
		elapsed = 0
	}
	rate := r.rate
	if final && elapsed > 0 {
		// The last line gives the whole transfer's average (a fast one
		// ends before the running rate has a first sample).
		rate = float64(r.done-r.kept-r.startDone) / elapsed.Seconds()
	}
	done := "done in"
	if final && r.total > 0 && r.done < r.total {
		done = "stopped after" // it failed or was cut
	}
	switch r.mode {
	case JSON:
		j := jsonReport{Label: r.opts.Label, Name: r.name, Done: r.done, Total: r.total,
			Percent: math.Round(pct*10) / 10, Rate: math.Round(rate), Elapsed: elapsed.Seconds(), Finished: final}
		if etaOK {
			s := eta.Seconds()
			j.ETA = &s
		}
		b, _ := json.Marshal(j)
		r.w.Write(append(b, '\n'))
	case Lines:
		var b strings.Builder
		if r.opts.Label != "" {
			b.WriteString(r.opts.Label + ": ")
		}
		if r.name != "" {
			b.WriteString(r.name + ": ")
		}
		fmt.Fprintf(&b, "%3.0f%% %s of %s, %s", math.Floor(pct), Bytes(r.done), Bytes(r.total), Rate(rate))
		if final {
			fmt.Fprintf(&b, ", %s %s\n", done, Duration(elapsed))
		} else {
			fmt.Fprintf(&b, ", ETA %s\n", etaString(eta, etaOK))
		}
		io.WriteString(r.w, b.String())
	default:
		io.WriteString(r.w, r.barLine(pct, rate, done, eta, etaOK, elapsed, final))
	}
}

func etaString(d time.Duration, ok bool) string {
	if !ok {
		return "--:--"
	}
	return Duration(d)
}

// barLine renders "\rlabel name [=====>    ]  45% 1.2 MiB/2.6 MiB 11.2 KiB/s ETA 2:03".
// The last one gives the average rate and "in 0:06", or "stopped after
// 0:06" for a transfer that did not finish.
func (r *Reporter) barLine(pct, rate float64, done string, eta time.Duration, etaOK bool, elapsed time.Duration, final bool) string {
	tail := fmt.Sprintf(" %3.0f%% %s/%s %s ETA %s", math.Floor(pct), Bytes(r.done), Bytes(r.total), Rate(rate), etaString(eta, etaOK))
	if final {
		in := "in"
		if done != "done in" {
			in = done
		}
		tail = fmt.Sprintf(" %3.0f%% %s/%s %s %s %s", math.Floor(pct), Bytes(r.done), Bytes(r.total), Rate(rate), in, Duration(elapsed))
	}
	head := r.name
	if r.opts.Label != "" {
		head = r.opts.Label + " " + head
	}
	width := r.opts.Width - 1 // never write the last column: some terminals wrap
	const minBar = 10
	room := width - utf8.RuneCountInString(tail) - minBar - 3 // " [" + "]"
	head = clip(head, max(room, 0))
	barW := width - utf8.RuneCountInString(head) - utf8.RuneCountInString(tail) - 3
	var b strings.Builder
	b.WriteString("\r")
	b.WriteString(head)
	if barW >= 3 {
		fill := int(math.Floor(float64(barW) * pct / 100))
		fill = min(max(fill, 0), barW)
		b.WriteString(" [")
		b.WriteString(strings.Repeat("=", fill))
		if fill < barW {
			b.WriteString(">")
			b.WriteString(strings.Repeat(" ", barW-fill-1))
		}
		b.WriteString("]")
	}
	b.WriteString(tail)
	line := b.String()
	// Blank what a longer previous line left behind.
	n := utf8.RuneCountInString(line) - 1
	if n < r.lastLen {
		line += strings.Repeat(" ", r.lastLen-n)
	}
	r.lastLen = n
	if final {
		line += "\n"
	}
	return line
}

// clip shortens s to at most n runes, eliding its middle.
func clip(s string, n int) string {
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	if n < 4 {
		return string(rs[:n])
	}
	left := (n - 1) / 2
	return string(rs[:left]) + "…" + string(rs[len(rs)-(n-1-left):])
}

// Bytes formats a byte count with binary units: "512 B", "1.5 KiB", "12.3 MiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		v /= unit
		if math.Abs(v) < unit || u == "PiB" {
			if math.Abs(v) < 10 {
				return fmt.Sprintf("%.2f %s", v, u)
			}
			if math.Abs(v) < 100 {
				return fmt.Sprintf("%.1f %s", v, u)
			}
			return fmt.Sprintf("%.0f %s", v, u)
		}
	}
	return ""
}

// Rate formats bytes per second: "11.2 KiB/s".
func Rate(bps float64) string {
	if bps < 0 || math.IsNaN(bps) || math.IsInf(bps, 0) {
		bps = 0
	}
	return Bytes(int64(bps)) + "/s"
}

// Duration formats a duration as m:ss or h:mm:ss.
func Duration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s < 0 {
		s = 0
	}
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
