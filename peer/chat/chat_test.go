package chat

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// memStream is one end of an in-memory full-duplex stream with CloseWrite.
type memStream struct {
	r       *io.PipeReader
	w       *io.PipeWriter
	oneByte bool // Read returns at most one byte: frames arrive split
}

func streamPair() (a, b *memStream) {
	ar, bw := io.Pipe()
	br, aw := io.Pipe()
	return &memStream{r: ar, w: aw}, &memStream{r: br, w: bw}
}

func (s *memStream) Read(p []byte) (int, error) {
	if s.oneByte && len(p) > 1 {
		p = p[:1]
	}
	return s.r.Read(p)
}
func (s *memStream) Write(p []byte) (int, error) { return s.w.Write(p) }
func (s *memStream) CloseWrite() error           { return s.w.Close() }
func (s *memStream) Close() error {
	s.w.CloseWithError(net.ErrClosed)
	s.r.CloseWithError(net.ErrClosed)
	return nil
}

// fakeClock starts at 12:34:56 and moves 1 ms each time it is read.
type fakeClock struct{ n atomic.Int64 }

func (c *fakeClock) now() time.Time {
	return time.Date(2026, 5, 1, 12, 34, 56, 0, time.UTC).Add(time.Duration(c.n.Add(1)) * time.Millisecond)
}

type side struct {
	in   *io.PipeWriter
	out  bytes.Buffer
	msgs chan Message
	err  chan error
}

// start runs one side of a chat on s.
func start(s Stream, name string, clock *fakeClock) *side {
	inR, inW := io.Pipe()
	sd := &side{in: inW, msgs: make(chan Message, 100), err: make(chan error, 1)}
	go func() {
		sd.err <- Run(context.Background(), s, inR, &sd.out, Options{Name: name, Now: clock.now,
			OnMessage: func(m Message) { sd.msgs <- m }})
		inR.Close()
	}()
	return sd
}

func TestChat(t *testing.T) {
	a, b := streamPair()
	clock := &fakeClock{}
	alice, bob := start(a, "alice", clock), start(b, "bob", clock)
	io.WriteString(alice.in, "hello\nhow are you?\r\n")
	for _, want := range []string{"hello", "how are you?"} {
		m := <-bob.msgs
		if m.Text != want || m.From != "alice" {
			t.Errorf("bob got %+v, want %q from alice", m, want)
		}
		if m.Delay() <= 0 || m.Delay() > time.Second {
			t.Errorf("delay %v on the fake clock", m.Delay())
		}
	}
	io.WriteString(bob.in, "fine\n")
	if m := <-alice.msgs; m.Text != "fine" || m.From != "bob" {
		t.Errorf("alice got %+v", m)
	}
	alice.in.Close() // alice leaves: both Runs end
	for _, sd := range []*side{alice, bob} {
		if err := <-sd.err; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	bob.in.Close()
	for _, c := range []struct {
		out  string
		want []string
	}{
		{bob.out.String(), []string{"* alice joined", "alice: hello", "alice: how are you?", "* alice left"}},
		{alice.out.String(), []string{"* bob joined", "bob: fine", "* bob left"}},
	} {
		lines := strings.Split(strings.TrimSuffix(c.out, "\n"), "\n")
		if len(lines) != len(c.want) {
			t.Fatalf("output %q, want %q", c.out, c.want)
		}
		for i, l := range lines {
			if !strings.HasPrefix(l, "[12:34:56] ") || strings.TrimPrefix(l, "[12:34:56] ") != c.want[i] {
				t.Errorf("line %q, want [12:34:56] %s", l, c.want[i])
			}
		}
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, ünïcode ✓": "plain text, ünïcode ✓",
		"tab\tkept":             "tab\tkept",
		"\x1b[2Jclear":          `\x1b[2Jclear`,
		"bell\a":                `bell\x07`,
		"rtl \u202eevil":        `rtl \u202eevil`,
		"bad \xff utf8":         `bad \xff utf8`,
		"del\x7f":               `del\x7f`,
		"c1 \u009b":             `c1 \u009b`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPeerCannotDriveTerminal(t *testing.T) {
	a, b := streamPair()
	clock := &fakeClock{}
	alice, bob := start(a, "ev\x1bil", clock), start(b, "bob", clock)
	io.WriteString(alice.in, "\x1b]0;owned\x07 \x1b[2J\n")
	<-bob.msgs
	alice.in.Close()
	<-alice.err
	<-bob.err
	bob.in.Close()
	if strings.ContainsAny(bob.out.String(), "\x1b\x07") {
		t.Errorf("control characters printed: %q", bob.out.String())
	}
}

func TestLongLinesSplitOnRunes(t *testing.T) {
	a, b := streamPair()
	clock := &fakeClock{}
	alice, bob := start(a, "alice", clock), start(b, "bob", clock)
	long := strings.Repeat("é", 10000) + "!" // 20001 bytes
	go func() {
		io.WriteString(alice.in, long+"\n\nshort\n")
		alice.in.Close()
	}()
	var got []string
	for m := range bob.msgs {
		got = append(got, m.Text)
		if m.Text == "short" {
			break
		}
	}
	<-alice.err
	<-bob.err
	bob.in.Close()
	if len(got) < 3 || got[len(got)-1] != "short" || got[len(got)-2] != "" {
		t.Fatalf("messages %d: last %q", len(got), got[len(got)-min(len(got), 2):])
	}
	parts := got[:len(got)-2]
	if strings.Join(parts, "") != long {
		t.Error("long line not delivered whole")
	}
	for _, p := range parts {
		if len(p) > MaxMessage || !utf8.ValidString(p) {
			t.Errorf("piece of %d bytes, valid UTF-8: %v", len(p), utf8.ValidString(p))
		}
	}
	if len(parts) != 5 {
		t.Errorf("%d pieces for 20001 bytes, want 5", len(parts))
	}
}

func TestFramesSplitByTheStream(t *testing.T) {
	a, b := streamPair()
	b.oneByte = true
	clock := &fakeClock{}
	alice, bob := start(a, "alice", clock), start(b, "bob", clock)
	io.WriteString(alice.in, "one\ntwo\n")
	if m1, m2 := <-bob.msgs, <-bob.msgs; m1.Text != "one" || m2.Text != "two" {
		t.Errorf("got %q %q", m1.Text, m2.Text)
	}
	alice.in.Close()
	<-alice.err
	<-bob.err
	bob.in.Close()
}

// rawPeer writes bytes as the peer and drains what Run sends.
func rawPeer(t *testing.T, raw []byte) error {
	a, b := streamPair()
	go io.Copy(io.Discard, b)
	go func() { b.Write(raw); b.CloseWrite() }()
	return Run(context.Background(), a, strings.NewReader(""), io.Discard, Options{})
}

func TestBadPeer(t *testing.T) {
	hello := appendFrame(nil, typeHello, time.Time{}, "x")
	if err := rawPeer(t, []byte{0x7f, 0, 0, 0, 'T'}); !errors.Is(err, ErrProtocol) {
		t.Errorf("huge frame: %v, want ErrProtocol", err)
	}
	if err := rawPeer(t, append(hello, 0, 0, 0, 1, 'Z')); !errors.Is(err, ErrProtocol) {
		t.Errorf("unknown type: %v, want ErrProtocol", err)
	}
	if err := rawPeer(t, []byte{0, 0, 0, 2, 'H', 9}); !errors.Is(err, ErrVersion) {
		t.Errorf("version 9: %v, want ErrVersion", err)
	}
	if err := rawPeer(t, append(hello, 0, 0, 0, 20, 'T', 1)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut inside a frame: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestCancel(t *testing.T) {
	a, b := streamPair()
	go io.Copy(io.Discard, b) // a peer that never says anything
	ctx, cancel := context.WithCancel(context.Background())
	inR, inW := io.Pipe()
	defer inW.Close()
	errc := make(chan error)
	go func() { errc <- Run(ctx, a, inR, io.Discard, Options{}) }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v, want context.Canceled", err)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(appendFrame(nil, typeText, time.Unix(1, 2), "hello"))
	f.Add(appendFrame(nil, typeHello, time.Time{}, "bob"))
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		buf := make([]byte, maxFrame)
		r := bytes.NewReader(in)
		for {
			typ, sent, body, err := readFrame(r, buf)
			if err != nil {
				return
			}
			if typ == typeText {
				again := appendFrame(nil, typ, sent, string(body))
				typ2, sent2, body2, err := readFrame(bytes.NewReader(again), make([]byte, maxFrame))
				if err != nil || typ2 != typ || !sent2.Equal(sent) || !bytes.Equal(body2, body) {
					t.Fatalf("round trip of %q: %v", body, err)
				}
			}
			_ = Escape(string(body))
		}
	})
}

// BenchmarkLine measures a line's trip through Run on both sides over the
// in-memory stream; the anchor is a bare write and read of the same bytes.
func BenchmarkLine(b *testing.B) {
	line := strings.Repeat("x", 60) + "\n"
	b.Run("chat", func(b *testing.B) {
		a, c := streamPair()
		inR, inW := io.Pipe()
		in2R, in2W := io.Pipe() // the receiving side stays until the end
		got := make(chan Message, 1)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); Run(context.Background(), a, inR, io.Discard, Options{}) }()
		go func() {
			defer wg.Done()
			Run(context.Background(), c, in2R, io.Discard, Options{OnMessage: func(m Message) { got <- m }})
			in2R.Close()
		}()
		b.SetBytes(int64(len(line)))
		b.ReportAllocs()
		var delay time.Duration
		for b.Loop() {
			io.WriteString(inW, line)
			delay += (<-got).Delay()
		}
		b.ReportMetric(float64(delay.Nanoseconds())/float64(b.N), "ns-delay/line")
		inW.Close()
		wg.Wait()
		in2W.Close()
	})
	b.Run("anchor", func(b *testing.B) {
		a, c := streamPair()
		buf := make([]byte, len(line))
		b.SetBytes(int64(len(line)))
		b.ReportAllocs()
		go func() {
			for {
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				c.Write(buf[:1])
			}
		}()
		one := make([]byte, 1)
		for b.Loop() {
			a.Write([]byte(line))
			a.Read(one)
		}
		a.Close()
		c.Close()
	})
}
