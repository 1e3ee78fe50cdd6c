package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/p2plink/p2plink/serialnet"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2plink/p2plink/link/linktest"
)

// TestMain keeps the tests' hash stores (send's, in the user's cache
// folder) out of the real one.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "p2plink-cache")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func runCmd(ctx context.Context, stdin string, args ...string) result {
	var out, errb bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// line is a virtual serial line for two p2plink commands, each end with its
// own config directory under dir.
type line struct {
	nm  *linktest.NullModem
	dir string
}

func newLine(t *testing.T) *line {
	t.Helper()
	nm, err := linktest.NewNullModem(linktest.NullModemConfig{Baud: 2_000_000})
	if err != nil {
		t.Skipf("no ptys here: %v", err)
	}
	t.Cleanup(func() { nm.Close() })
	return &line{nm: nm, dir: t.TempDir()}
}

// args returns `serial PORT --baud … --config DIR` for end "a" or "b",
// followed by more.
func (l *line) args(end string, more ...string) []string {
	port := l.nm.PortA()
	if end == "b" {
		port = l.nm.PortB()
	}
	return append([]string{"serial", port, "--baud", "2000000", "--config", filepath.Join(l.dir, "cfg"+end)}, more...)
}

// both runs a command on each end at once and returns their results.
func (l *line) both(ctx context.Context, stdinA string, a []string, stdinB string, b []string) (ra, rb result) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ra = runCmd(ctx, stdinA, l.args("a", a...)...) }()
	go func() { defer wg.Done(); rb = runCmd(ctx, stdinB, l.args("b", b...)...) }()
	wg.Wait()
	return ra, rb
}

// Two p2plink commands on the two ends of a virtual serial line: one sends
// a folder, the other receives it, and every file arrives intact.
func TestSendReceiveOverSerial(t *testing.T) {
	l := newLine(t)
	dir := l.dir
	src := filepath.Join(dir, "src", "docs")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	files := map[string][]byte{"a.bin": make([]byte, 100_000), "sub/b.txt": []byte("hello\n")}
	rand.Read(files["a.bin"])
	for name, data := range files {
		os.WriteFile(filepath.Join(src, name), data, 0o644)
	}
	inbox := filepath.Join(dir, "inbox")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rs, rr := l.both(ctx, "", []string{"--name", "alice", "send", src}, "", []string{"--name", "bob", "--dir", inbox, "receive"})
	if rs.code != 0 || rr.code != 0 {
		t.Fatalf("send exit %d: %s\nreceive exit %d: %s", rs.code, rs.stderr, rr.code, rr.stderr)
	}
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(inbox, "docs", name))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: differs after transfer (%v)", name, err)
		}
	}
	if !strings.Contains(rs.stderr, "connected to bob") || !strings.Contains(rs.stderr, "new peer: key pinned") {
		t.Errorf("sender did not report the peer:\n%s", rs.stderr)
	}
	// The identity is kept private.
	fi, err := os.Stat(filepath.Join(dir, "cfga", "identity"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("identity file: %v %v", fi, err)
	}
}

func TestErrorsSayWhatToDo(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "say what to do"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"serial"}, 2, "name the serial port"},
		{[]string{"serial", "/dev/ttyNOPE9", "--config", dir, "chat"}, 1, "/dev/ttyNOPE9"},
		{[]string{"serial", "/dev/null", "--config", dir, "dance"}, 2, "unknown verb"},
		{[]string{"serial", "/dev/null", "--config", dir, "--parity", "weird", "chat"}, 2, "--parity"},
		{[]string{"serial", "/dev/null", "--config", dir, "send"}, 2, "send what"},
		// A missing file is said before any peer is looked for.
		{[]string{"serial", "/dev/null", "--config", dir, "--wait", "1m", "send", "/nonexistent/f"}, 1, "/nonexistent/f: no such file"},
		{[]string{"serial", "/dev/null", "--config", dir, "--wait", "1m", "put", "/nonexistent/f", "docs/"}, 1, "/nonexistent/f: no such file"},
		{[]string{"usb", "--device", "zz", "--config", dir, "chat"}, 2, "VID:PID"},
		{[]string{"demo", "--ber", "2"}, 2, "--ber 2: give a bit error rate from 0 to 0.001"},
		{[]string{"id", "--config", dir, "extra"}, 2, "id takes no arguments"},
		{[]string{"ports", "extra"}, 2, "ports takes no arguments"},
		{[]string{"serial", "/dev/null", "--config", dir, "--mtu", "10", "chat"}, 2, "--mtu 10: give 512 to 65535"},
		{[]string{"demo", "--baud", "0"}, 2, "--baud 0: give a line rate"},
		{[]string{"demo", "extra"}, 2, "demo takes no arguments"},
	} {
		r := runCmd(ctx, "", tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("p2plink %v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
}

func TestID(t *testing.T) {
	dir := t.TempDir()
	r1 := runCmd(context.Background(), "", "id", "--config", dir, "--name", "zed")
	r2 := runCmd(context.Background(), "", "id", "--config", dir)
	if r1.code != 0 || !strings.Contains(r1.stdout, "zed") {
		t.Fatalf("id: %+v", r1)
	}
	fp := func(s string) string {
		_, after, _ := strings.Cut(s, "fingerprint: ")
		return strings.TrimSpace(after)
	}
	if fp(r1.stdout) == "" || fp(r1.stdout) != fp(r2.stdout) {
		t.Fatalf("fingerprint not stable across runs: %q vs %q", r1.stdout, r2.stdout)
	}
}

func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("demo takes a few seconds")
	}
	r := runCmd(context.Background(), "", "demo", "--size", "65536")
	if r.code != 0 || !strings.Contains(r.stdout, "demo OK") || !strings.Contains(r.stdout, "verified") {
		t.Fatalf("demo exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// pipe joins the two commands' standard streams, like netcat.
func TestPipeOverSerial(t *testing.T) {
	l := newLine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	payload := strings.Repeat("tar stream bytes\n", 5000)
	ra, rb := l.both(ctx, payload, []string{"pipe"}, "back", []string{"pipe"})
	if ra.code != 0 || rb.code != 0 {
		t.Fatalf("exits %d %d: %s / %s", ra.code, rb.code, ra.stderr, rb.stderr)
	}
	if rb.stdout != payload || ra.stdout != "back" {
		t.Fatalf("pipe carried %d and %q bytes, want %d and %q", len(rb.stdout), ra.stdout, len(payload), "back")
	}
}

// ping measures round trips against a peer that serves.
func TestPingAgainstServe(t *testing.T) {
	l := newLine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sctx, stop := context.WithCancel(ctx)
	done := make(chan result, 1)
	go func() { done <- runCmd(sctx, "", l.args("b", "--dir", l.dir, "serve")...) }()
	r := runCmd(ctx, "", l.args("a", "--count", "5", "ping")...)
	stop()
	<-done
	if r.code != 0 || !strings.Contains(r.stdout, "5 round trips of 32 bytes") {
		t.Fatalf("ping exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
}

// TestWaitGivesUp: with --wait, a command whose peer never answers gives up
// after that long and says what to check; without it, it waits on (until
// its context ends here).
func TestWaitGivesUp(t *testing.T) {
	l := newLine(t)
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCmd(context.Background(), "", l.args("a", "--wait", "300ms", "send", file)...)
	if r.code != 1 || !strings.Contains(r.stderr, "no peer answered") || !strings.Contains(r.stderr, "within 300ms (--wait)") {
		t.Fatalf("exit %d, stderr %q; want exit 1 saying no peer answered within 300ms", r.code, r.stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r = runCmd(ctx, "", l.args("a", "send", file)...)
	if strings.Contains(r.stderr, "--wait") || !strings.Contains(r.stderr, "Ctrl-C to stop") {
		t.Fatalf("without --wait: exit %d, stderr %q; want it to wait until stopped", r.code, r.stderr)
	}
}

// TestServeWaitBoundsFirstClientOnly: serve --wait gives up when no first
// client comes, but once it served one it waits for the next without limit.
func TestServeWaitBoundsFirstClientOnly(t *testing.T) {
	l := newLine(t)
	r := runCmd(context.Background(), "", l.args("b", "--dir", l.dir, "--wait", "300ms", "serve")...)
	if r.code != 1 || !strings.Contains(r.stderr, "within 300ms (--wait)") {
		t.Fatalf("serve with no client: exit %d, stderr %q; want exit 1 after --wait", r.code, r.stderr)
	}

	l = newLine(t) // a fresh line: nothing left on it from the serve that gave up
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan result, 1)
	go func() { done <- runCmd(ctx, "", l.args("b", "--dir", l.dir, "--wait", "2s", "serve")...) }()
	if p := runCmd(context.Background(), "", l.args("a", "--count", "2", "ping")...); p.code != 0 {
		t.Fatalf("ping: exit %d, stderr %q", p.code, p.stderr)
	}
	select {
	case rs := <-done:
		t.Fatalf("serve stopped after its client: exit %d, stderr %q", rs.code, rs.stderr)
	case <-time.After(3500 * time.Millisecond):
		// Past --wait after the client left, and still serving.
	}
	cancel()
	if rs := <-done; strings.Contains(rs.stderr, "--wait") {
		t.Fatalf("serve: stderr %q; --wait should not apply after the first client", rs.stderr)
	}
}

// TestNoSpinFlag: --no-spin, wherever it stands among the arguments,
// reaches the Ethernet link's configuration (ethnet's TestSpinMissesStop
// checks that Config.NoSpin stops the spinning), and the help lists it.
func TestNoSpinFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"send", "f"}, false},
		{[]string{"send", "f", "--no-spin"}, true},
		{[]string{"--no-spin", "serve"}, true},
	} {
		var o options
		fs := flag.NewFlagSet("eth", flag.ContinueOnError)
		o.register(fs)
		if _, err := parseInterleaved(fs, tc.args); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if got := o.ethConfig(true); got.NoSpin != tc.want || !got.Exclusive {
			t.Errorf("%q: %+v, want NoSpin %v and Exclusive", tc.args, got, tc.want)
		}
	}
	if !strings.Contains(usage, "--no-spin") {
		t.Error("the help does not list --no-spin")
	}
}

// TestHashFirstFlag: --hash-first reaches the send options of send and
// put, and the help lists it.
func TestHashFirstFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"send", "f"}, false},
		{[]string{"send", "f", "--hash-first"}, true},
		{[]string{"--hash-first", "put", "docs", "f"}, true},
	} {
		var o options
		fs := flag.NewFlagSet("eth", flag.ContinueOnError)
		o.register(fs)
		if _, err := parseInterleaved(fs, tc.args); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if got := o.sendOptions(nil, nil); got.HashFirst != tc.want || !got.Compress {
			t.Errorf("%q: %+v, want HashFirst %v and Compress", tc.args, got, tc.want)
		}
	}
	if !strings.Contains(usage, "--hash-first") {
		t.Error("the help does not list --hash-first")
	}
}

// TestStopIsQuiet: stopped by the user (the context ends, as on Ctrl-C or
// SIGTERM), serve ends with status 0 and a waiting command with 130, and
// neither prints an error ("context canceled"; found by review).
func TestStopIsQuiet(t *testing.T) {
	l := newLine(t)
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{l.args("b", "--dir", l.dir, "serve"), 0},
		{l.args("a", "send", file), 130},
	} {
		ctx, cancel := context.WithCancel(context.Background()) // as signal.NotifyContext does
		stop := time.AfterFunc(500*time.Millisecond, cancel)
		r := runCmd(ctx, "", tc.args...)
		stop.Stop()
		cancel()
		if r.code != tc.code || strings.Contains(r.stderr, "p2plink:") || strings.Contains(r.stderr, "canceled") {
			t.Errorf("%v stopped: exit %d, stderr %q; want exit %d and no error", tc.args, r.code, r.stderr, tc.code)
		}
	}
}

// TestServeChecksSharesFirst: serve checks its shares before it waits for
// a peer: a share folder that does not exist is said at once (it was said
// only when a client asked, which then hung; found by review).
func TestServeChecksSharesFirst(t *testing.T) {
	l := newLine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := runCmd(ctx, "", l.args("b", "--share", "docs=/nonexistent/docs", "serve")...)
	if r.code != 1 || !strings.Contains(r.stderr, "/nonexistent/docs") || strings.Contains(r.stderr, "waiting for the peer") {
		t.Errorf("exit %d, stderr %q; want exit 1 naming the missing folder before waiting", r.code, r.stderr)
	}
}

// TestResumeHint: a transfer cut with its session says why once (the
// dead-peer error was printed twice, inside itself; found by review), and
// that a rerun resumes.
func TestResumeHint(t *testing.T) {
	gone := errors.New("peer: no word from the peer within the dead-peer timeout")
	for _, tc := range []struct {
		err, se error
		want    string
	}{
		{fmt.Errorf("xfer: sending: %w", gone), gone, "xfer: sending: " + gone.Error() + "; run the same command again to resume"},
		{errors.New("xfer: sending: stream reset"), gone, "xfer: sending: stream reset (" + gone.Error() + "); run the same command again to resume"},
		{errors.New("xfer: refused"), nil, "xfer: refused"},
	} {
		if got := resumeHint(tc.err, tc.se).Error(); got != tc.want {
			t.Errorf("resumeHint(%v, %v) = %q, want %q", tc.err, tc.se, got, tc.want)
		}
	}
}

// TestListPorts: ports says which serial ports this user may not open and
// which built-in ones it could not check, rather than "none found" (a
// user outside the dialout group saw nothing at all). What to do is
// serialnet's hint, tested there as user nobody.
func TestListPorts(t *testing.T) {
	for _, tc := range []struct {
		ps        []serialnet.PortInfo
		unchecked []string
		want      []string
	}{
		{nil, nil, []string{"serial ports: none found\n"}},
		{nil, []string{"/dev/ttyS0", "/dev/ttyS1"}, []string{"none found that you may open", "/dev/ttyS0 and 1 more: built-in ports not checked"}},
		{[]serialnet.PortInfo{{Path: "/dev/ttyUSB0"}}, []string{"/dev/ttyS0"}, []string{"serial ports:\n  /dev/ttyUSB0\n", "/dev/ttyS0: built-in ports not checked"}},
	} {
		var out bytes.Buffer
		e := &env{stdout: &out, stderr: &out}
		e.listPorts(tc.ps, tc.unchecked)
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v, %v: printed %q, want it to say %q", tc.ps, tc.unchecked, out.String(), w)
			}
		}
	}
}

// TestTransferThreads: a command that moves files one way (send, put,
// receive, get) runs on one thread on a machine of two CPUs or fewer,
// unless GOMAXPROCS is set; other verbs, and bigger machines, keep every
// thread.
func TestTransferThreads(t *testing.T) {
	l := newLine(t)
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	oldCPU := numCPU
	t.Cleanup(func() { oneThread, numCPU = nil, oldCPU })
	for _, tc := range []struct {
		cpus int
		env  string
		args []string
		want bool
	}{
		{2, "", []string{"receive"}, true},
		{1, "", []string{"get", "docs/f"}, true},
		{2, "", []string{"send", file}, true},
		{2, "", []string{"put", file, "docs/"}, true},
		{2, "", []string{"serve"}, false},
		{2, "", []string{"pipe"}, false},
		{4, "", []string{"send", file}, false},
		{4, "", []string{"receive"}, false},
		{2, "2", []string{"receive"}, false},
	} {
		called := false
		oneThread = func() { called = true }
		numCPU = func() int { return tc.cpus }
		t.Setenv("GOMAXPROCS", tc.env)
		if tc.env == "" {
			os.Unsetenv("GOMAXPROCS")
		}
		runCmd(context.Background(), "", l.args("a", append([]string{"--wait", "50ms"}, tc.args...)...)...)
		if called != tc.want {
			t.Errorf("%d CPUs, GOMAXPROCS=%q, %v: one thread %v, want %v", tc.cpus, tc.env, tc.args, called, tc.want)
		}
	}
}

// TestDirCheckedAtStart: a --dir that names a file, or has one in its
// path, is said at once, before any peer is awaited (a field test waited
// for a sender to learn it); a folder that does not exist yet is fine.
func TestDirCheckedAtStart(t *testing.T) {
	l := newLine(t)
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir, verb, want string
	}{
		{file, "receive", "is a file, not a folder"},
		{filepath.Join(file, "sub"), "receive", "part of that path is a file"},
		{file, "serve", "is a file, not a folder"},
		{file, "get", "is a file, not a folder"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		// With no peer at the other end, a command that waited for one
		// would end only with ctx, saying nothing of --dir.
		args := []string{"--dir", tc.dir, tc.verb}
		if tc.verb == "get" {
			args = append(args, "docs/x")
		}
		r := runCmd(ctx, "", l.args("a", args...)...)
		cancel()
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s --dir %s: exit %d, stderr %q; want it refused at once saying %q", tc.verb, tc.dir, r.code, r.stderr, tc.want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := runCmd(ctx, "", l.args("a", "--dir", filepath.Join(t.TempDir(), "new"), "--wait", "100ms", "receive")...)
	if strings.Contains(r.stderr, "--dir") {
		t.Errorf("a --dir that does not exist yet was refused: %q", r.stderr)
	}
}

// TestJSONOnly: under --json every line on stderr is one JSON object (a
// field test's `2>&1 | jq` broke on the human lines beside the progress):
// progress, a "file" event per file, a "summary", notes, and the error.
func TestJSONOnly(t *testing.T) {
	l := newLine(t)
	src := filepath.Join(t.TempDir(), "f.bin")
	data := make([]byte, 300_000)
	rand.Read(data)
	os.WriteFile(src, data, 0o644)
	inbox := filepath.Join(t.TempDir(), "in")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rs, rr := l.both(ctx, "", []string{"--json", "--name", "alice", "send", src}, "", []string{"--json", "--name", "bob", "--dir", inbox, "receive"})
	if rs.code != 0 || rr.code != 0 {
		t.Fatalf("send exit %d: %s\nreceive exit %d: %s", rs.code, rs.stderr, rr.code, rr.stderr)
	}
	for who, r := range map[string]result{"send": rs, "receive": rr} {
		events := map[string]int{}
		for _, line := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("%s: stderr line %q is not a JSON object: %v", who, line, err)
			}
			ev, _ := m["event"].(string)
			if ev == "" {
				ev = "progress"
			}
			events[ev]++
			if ev == "file" && (m["name"] != "f.bin" || m["status"] != "done" || m["size"] != float64(len(data))) {
				t.Errorf("%s: file event %v, want f.bin done with its size", who, m)
			}
		}
		if events["file"] != 1 || events["summary"] != 1 || events["note"] == 0 || events["progress"] == 0 {
			t.Errorf("%s: events %v; want progress, notes, one file and one summary", who, events)
		}
	}
	r := runCmd(ctx, "", l.args("a", "--json", "send", filepath.Join(t.TempDir(), "missing"))...)
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stderr)), &m); r.code == 0 || err != nil || m["event"] != "error" || !strings.Contains(m["text"].(string), "missing") {
		t.Errorf("a failed --json command: exit %d, stderr %q; want one error event naming the file", r.code, r.stderr)
	}
}
