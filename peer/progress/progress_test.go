package progress

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/creack/pty"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func TestFormatters(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.00 KiB"}, {1536, "1.50 KiB"}, {11520, "11.2 KiB"},
		{150 << 10, "150 KiB"}, {5 << 20, "5.00 MiB"}, {1 << 30, "1.00 GiB"}} {
		if got := Bytes(c.n); got != c.want {
			t.Errorf("Bytes(%d) = %q, want %q", c.n, got, c.want)
		}
	}
	for _, c := range []struct {
		d    time.Duration
		want string
	}{{0, "0:00"}, {59 * time.Second, "0:59"}, {61500 * time.Millisecond, "1:02"}, {3723 * time.Second, "1:02:03"}, {-time.Second, "0:00"}} {
		if got := Duration(c.d); got != c.want {
			t.Errorf("Duration(%v) = %q, want %q", c.d, got, c.want)
		}
	}
	if got := Rate(11520); got != "11.2 KiB/s" {
		t.Errorf("Rate = %q", got)
	}
}

func TestLinesAtSteadyRate(t *testing.T) {
	c := newClock()
	var out bytes.Buffer
	r := New(&out, Options{Mode: Lines, Now: c.now, Label: "send"})
	const total = 115200
	r.Update("f.bin", 0, total)
	if got := out.String(); got != "send: f.bin:   0% 0 B of 112 KiB, 0 B/s, ETA --:--\n" {
		t.Errorf("first line %q", got)
	}
	// 11,520 B/s in steps of 100 ms: one line per second.
	for i := 1; i <= 50; i++ {
		c.advance(100 * time.Millisecond)
		r.Update("f.bin", int64(i)*1152, total)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6 (one per second):\n%s", len(lines), out.String())
	}
	if got, want := lines[5], "send: f.bin:  50% 56.2 KiB of 112 KiB, 11.2 KiB/s, ETA 0:05"; got != want {
		t.Errorf("line after 5 s:\n got %q\nwant %q", got, want)
	}
	if rate := r.Rate(); rate < 11519 || rate > 11521 {
		t.Errorf("rate %v, want 11520", rate)
	}
	for i := 51; i <= 100; i++ {
		c.advance(100 * time.Millisecond)
		r.Update("f.bin", int64(i)*1152, total)
	}
	r.Finish()
	r.Finish()
	lines = strings.Split(strings.TrimSpace(out.String()), "\n")
	if got, want := lines[len(lines)-1], "send: f.bin: 100% 112 KiB of 112 KiB, 11.2 KiB/s, done in 0:10"; got != want {
		t.Errorf("final line:\n got %q\nwant %q", got, want)
	}
}

func TestETAUnknownAtStart(t *testing.T) {
	c := newClock()
	r := New(&bytes.Buffer{}, Options{Mode: Lines, Now: c.now})
	r.Update("x", 0, 1<<20)
	if _, ok := r.ETA(); ok {
		t.Error("ETA known before any progress")
	}
	// A burst in the first 100 ms (a buffer filling) must not give an ETA.
	c.advance(100 * time.Millisecond)
	r.Update("x", 512<<10, 1<<20)
	if _, ok := r.ETA(); ok {
		t.Error("ETA known after 100 ms")
	}
	// A stall: no progress for a long time gives no ETA, not infinity.
	r2 := New(&bytes.Buffer{}, Options{Mode: Lines, Now: c.now})
	r2.Update("x", 0, 1<<20)
	for range 20 {
		c.advance(time.Second)
		r2.Update("x", 0, 1<<20)
	}
	if d, ok := r2.ETA(); ok {
		t.Errorf("ETA %v with no progress", d)
	}
}

func TestRateSmoothed(t *testing.T) {
	c := newClock()
	r := New(&bytes.Buffer{}, Options{Mode: Lines, Now: c.now})
	done := int64(0)
	r.Update("x", done, 1<<40)
	step := func(bps int64, secs int) {
		for range secs * 10 {
			c.advance(100 * time.Millisecond)
			done += bps / 10
			r.Update("x", done, 1<<40)
		}
	}
	step(10000, 10)
	if got := r.Rate(); got < 9999 || got > 10001 {
		t.Fatalf("steady rate %v", got)
	}
	step(20000, 1) // one second at double speed: moves part way
	if got := r.Rate(); got < 12000 || got > 15000 {
		t.Errorf("rate 1 s after doubling: %v, want between 12000 and 15000 (smoothed)", got)
	}
	step(20000, 15)
	if got := r.Rate(); got < 19900 {
		t.Errorf("rate 16 s after doubling: %v, want about 20000", got)
	}
	d, ok := r.ETA()
	if ok {
		t.Errorf("ETA of 1 TiB at 20 kB/s: %v %v, want unknown (over %v)", d, ok, maxETA)
	}
}

func TestJSON(t *testing.T) {
	c := newClock()
	var out bytes.Buffer
	r := New(&out, Options{Mode: JSON, Now: c.now, Label: "receive"})
	r.Update("a", 0, 2000)
	for range 20 {
		c.advance(100 * time.Millisecond)
		r.Update("a", r.done+50, 2000)
	}
	r.Finish()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d JSON lines, want 4:\n%s", len(lines), out.String())
	}
	var first, last map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[3]), &last); err != nil {
		t.Fatal(err)
	}
	if first["eta_s"] != nil || first["done"] != 0.0 || first["label"] != "receive" || first["final"] != false {
		t.Errorf("first: %v", first)
	}
	if last["done"] != 1000.0 || last["total"] != 2000.0 || last["percent"] != 50.0 || last["rate"] != 500.0 ||
		last["eta_s"] != 2.0 || last["elapsed_s"] != 2.0 || last["final"] != true || last["name"] != "a" {
		t.Errorf("last: %v", last)
	}
}

func TestBar(t *testing.T) {
	c := newClock()
	var out bytes.Buffer
	r := New(&out, Options{Mode: Bar, Now: c.now, Width: 60})
	r.Update("report.pdf", 0, 1000)
	for range 5 {
		c.advance(time.Second)
		r.Update("report.pdf", r.done+100, 1000)
	}
	parts := strings.Split(out.String(), "\r")[1:]
	if len(parts) != 6 {
		t.Fatalf("%d redraws, want 6: %q", len(parts), out.String())
	}
	want := "report.pdf [=====>     ]  50% 500 B/1000 B 100 B/s ETA 0:05"
	if parts[5] != want {
		t.Errorf("bar:\n got %q\nwant %q", parts[5], want)
	}
	for _, p := range parts {
		if n := utf8.RuneCountInString(p); n > 59 {
			t.Errorf("line of %d columns in a width of 60: %q", n, p)
		}
	}
	// A long name is elided, the line still fits.
	r.Update(strings.Repeat("very-long-name-", 10)+"end", 600, 1000)
	last := out.String()[strings.LastIndex(out.String(), "\r")+1:]
	if n := utf8.RuneCountInString(last); n > 59 || !strings.Contains(last, "…") || !strings.Contains(last, "[") {
		t.Errorf("long name: %q (%d columns)", last, n)
	}
	// A shorter line blanks what the longer one left.
	r.Update("b", 700, 1000)
	last = out.String()[strings.LastIndex(out.String(), "\r")+1:]
	if n := utf8.RuneCountInString(last); n < 59 {
		t.Errorf("shorter line not padded: %q", last)
	}
	c.advance(time.Second)
	r.Finish()
	// It stopped at 70 %: the last line says so, with the average rate.
	if !strings.HasSuffix(out.String(), "\n") || !strings.Contains(out.String(), "116 B/s stopped after 0:06") {
		t.Errorf("finish: %q", out.String()[strings.LastIndex(out.String(), "\r"):])
	}
}

func TestAutoNotTerminal(t *testing.T) {
	if m := New(&bytes.Buffer{}, Options{}).Mode(); m != Lines {
		t.Errorf("mode %v for a buffer, want Lines", m)
	}
}

func TestAutoTerminal(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 50}); err != nil {
		t.Fatal(err)
	}
	r := New(tty, Options{})
	if r.Mode() != Bar || r.opts.Width != 50 {
		t.Errorf("on a terminal of 50 columns: mode %v, width %d; want Bar, 50", r.Mode(), r.opts.Width)
	}
}

// TestFinalLine: the last line gives the whole transfer's average rate,
// also for a transfer over before the running rate had a sample ("100% …
// 0 B/s"), and "stopped after" for one that did not finish ("done in"
// beside a failure; both found by review).
func TestFinalLine(t *testing.T) {
	for _, tc := range []struct {
		done int64
		want string
	}{
		{1000, "100% 1000 B of 1000 B, 4.88 KiB/s, done in 0:00"},
		{400, "40% 400 B of 1000 B, 1.95 KiB/s, stopped after 0:00"},
	} {
		c := newClock()
		var out strings.Builder
		r := New(&out, Options{Mode: Lines, Now: c.now})
		r.Update("f", 0, 1000)
		c.advance(200 * time.Millisecond)
		r.Update("f", tc.done, 1000)
		r.Finish()
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if last := lines[len(lines)-1]; !strings.Contains(last, tc.want) {
			t.Errorf("last line %q, want %q", last, tc.want)
		}
	}
}

// TestFinalRateResumed: the final average of a resumed transfer counts
// only what this run moved, not what an earlier one kept (found by review).
func TestFinalRateResumed(t *testing.T) {
	c := newClock()
	var out strings.Builder
	r := New(&out, Options{Mode: Lines, Now: c.now})
	r.Update("f", 900<<20, 1000<<20)
	for i := 1; i <= 10; i++ {
		c.advance(time.Second)
		r.Update("f", int64(900+10*i)<<20, 1000<<20)
	}
	r.Finish()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "10.0 MiB/s, done in 0:10") {
		t.Errorf("final line %q; the transfer moved 10.0 MiB/s for 10 s", last)
	}
}

// TestKeptSecondFile: a transfer whose second file resumes (its kept
// prefix is added to done mid-way, and said with Kept) shows neither a
// burst of speed nor a final average that counts the kept bytes (found by
// review).
func TestKeptSecondFile(t *testing.T) {
	c := newClock()
	var out strings.Builder
	r := New(&out, Options{Mode: JSON, Now: c.now})
	r.Update("a", 0, 1100<<20)
	for i := 1; i <= 10; i++ { // a: 100 MiB in 10 s
		c.advance(time.Second)
		r.Update("a", int64(10*i)<<20, 1100<<20)
	}
	r.Kept(900 << 20) // b resumes with 900 MiB kept
	r.Update("b", 1000<<20, 1100<<20)
	for i := 1; i <= 10; i++ { // b: the last 100 MiB in 10 s
		c.advance(time.Second)
		r.Update("b", int64(1000+10*i)<<20, 1100<<20)
		if rate := r.Rate(); rate > 11<<20 {
			t.Fatalf("after b's kept prefix: rate %.0f B/s, want about 10 MiB/s", rate)
		}
	}
	r.Finish()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, `"rate":10485760`) {
		t.Errorf("final report %s; want the average of what moved, 10 MiB/s", last)
	}
}
