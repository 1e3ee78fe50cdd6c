package linktest

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/p2plink/p2plink/link"
)

// broken is a FrameEnd with one deliberate bug, for checking that TestLink
// catches it.
type broken struct {
	*FrameEnd
	bug string
}

func (l broken) ReadFrom(p []byte) (int, net.Addr, error) {
	switch l.bug {
	case "truncate":
		n, addr, err := l.FrameEnd.ReadFrom(p)
		if n > 300 {
			n--
		}
		return n, addr, err
	case "shortbuffer":
		if len(p) < l.MTU() {
			q := make([]byte, l.MTU())
			n, addr, err := l.FrameEnd.ReadFrom(q)
			return copy(p, q[:n]), addr, err
		}
	case "closederr":
		n, addr, err := l.FrameEnd.ReadFrom(p)
		if errors.Is(err, net.ErrClosed) {
			err = io.EOF
		}
		return n, addr, err
	case "addr":
		n, _, err := l.FrameEnd.ReadFrom(p)
		return n, l.LocalAddr(), err
	}
	return l.FrameEnd.ReadFrom(p)
}

func (l broken) WriteTo(p []byte, addr net.Addr) (int, error) {
	switch l.bug {
	case "toolarge":
		if len(p) > l.MTU() {
			p = p[:l.MTU()]
		}
	case "retain":
		if len(p) > 0 {
			go func() {
				time.Sleep(10 * time.Millisecond) // sends p after the caller reused it
				l.FrameEnd.WriteTo(p, addr)
			}()
			return len(p), nil
		}
	}
	return l.FrameEnd.WriteTo(p, addr)
}

func (l broken) SetReadDeadline(t time.Time) error {
	if l.bug == "deadline" && !t.IsZero() && time.Until(t) > 0 {
		return nil // ignores future deadlines
	}
	return l.FrameEnd.SetReadDeadline(t)
}

// TestBrokenLink runs the suite over a broken link; it only runs as the
// child process of TestSuiteCatchesBugs.
func TestBrokenLink(t *testing.T) {
	bug := os.Getenv("LINKTEST_BUG")
	if bug == "" {
		t.Skip("runs only under TestSuiteCatchesBugs")
	}
	TestLink(t, func(t *testing.T) (link.Link, link.Link, func()) {
		a, b := NewFramePipe(PipeConfig{})
		stop := func() {}
		if bug == "leak" {
			quit := make(chan struct{})
			go func() { <-quit }() // never joined
			stop = func() {}
		}
		return broken{a, bug}, broken{b, bug}, stop
	}, Options{Wait: time.Second})
}

// TestSuiteCatchesBugs checks that TestLink fails, in the right subtest,
// for each kind of broken link.
func TestSuiteCatchesBugs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the test binary again for each bug")
	}
	for bug, subtest := range map[string]string{
		"truncate":    "WholeFrames",
		"shortbuffer": "ShortBuffer",
		"closederr":   "CallsAfterClose",
		"addr":        "Addresses",
		"toolarge":    "TooLarge",
		"retain":      "WriteDoesNotRetain",
		"deadline":    "FutureDeadline",
		"leak":        "NoGoroutineLeak",
	} {
		t.Run(bug, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenLink$", "-test.v", "-test.timeout=60s")
			cmd.Env = append(os.Environ(), "LINKTEST_BUG="+bug)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("TestLink passed a link with bug %q:\n%s", bug, out)
			}
			if !regexp.MustCompile(`--- FAIL: TestBrokenLink/` + subtest + ` `).Match(out) {
				t.Fatalf("bug %q did not fail subtest %s:\n%s", bug, subtest, out)
			}
		})
	}
}
