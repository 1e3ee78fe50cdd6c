// Package chat is p2plink's interactive line chat over one stream.
//
// Each line typed is sent as one message: a length-prefixed frame, so a line
// is delivered whole or not at all, never interleaved with another. A message
// carries the time it was sent, so the delay of a line can be measured (the
// benchmark measures it while a bulk transfer shares the link). Lines from the
// peer are printed with the time they arrived and the peer's name; control
// characters in them are shown escaped, so a peer cannot drive the terminal.
//
// Wire format (all integers big-endian):
//
//	frame   = length u32 (of the rest, at most MaxMessage + 9) , type u8 , body
//	hello   = type 'H', version u8 (= 1), name (UTF-8, up to 64 bytes)
//	text    = type 'T', sent i64 (Unix nanoseconds, sender's clock), line (UTF-8, no newline)
//
// Each side sends hello first, then text messages; half-closing the stream
// (CloseWrite) means "I left".
package chat

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Stream is a reliable, ordered, full-duplex byte stream, as the peer protocol
// provides for each service. CloseWrite half-closes it: the peer's Read
// returns io.EOF after all data written before. Close unblocks pending Read
// and Write calls; it may be called more than once, and concurrently with
// Read and Write.
type Stream interface {
	io.Reader
	io.Writer
	io.Closer
	CloseWrite() error
}

// Version is the chat protocol version.
const Version = 1

// MaxMessage is the longest line, in bytes, sent as one message; longer input
// lines are sent as several messages.
const MaxMessage = 4096

const (
	typeHello byte = 'H'
	typeText  byte = 'T'
	maxName        = 64
	maxFrame       = 1 + 8 + MaxMessage
)

// ErrProtocol means the peer sent something that is not a chat message.
var ErrProtocol = errors.New("chat: protocol violation by peer")

// ErrVersion means the peer speaks another chat version.
var ErrVersion = errors.New("chat: peer speaks another protocol version")

// Message is one line received from the peer.
type Message struct {
	From     string    // the peer's name, from its hello
	Text     string    // the line as sent (not escaped)
	Sent     time.Time // the peer's clock when it was sent
	Received time.Time // our clock when it arrived
}

// Delay is how long the message took, by the two clocks (meaningful when
// they agree, e.g. both peers in one process).
func (m Message) Delay() time.Duration { return m.Received.Sub(m.Sent) }

// Options configure Run. The zero value is valid.
type Options struct {
	// Name is sent to the peer, which shows it before our lines; empty
	// means "peer". Longer than 64 bytes is cut.
	Name string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// OnMessage, if set, is called for each line received, after it is
	// printed.
	OnMessage func(Message)
	// Quiet prints only the peer's lines, not the notes on joining and
	// leaving.
	Quiet bool
}

// Run chats over s: every line read from in is sent to the peer, and every
// line from the peer is written to out as "[15:04:05] name: text". When in
// ends, Run half-closes s, telling the peer we left. Run returns nil when the
// peer has left (its side of s ended) and everything it said is printed;
// s is closed before Run returns, and cancelling ctx closes it at once.
//
// If Run returns while in is still blocked in Read (a terminal), the
// goroutine reading it stays blocked until that Read returns, then exits
// without touching s or out.
func Run(ctx context.Context, s Stream, in io.Reader, out io.Writer, opts Options) error {
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	name := opts.Name
	if name == "" {
		name = "peer"
	}
	name = cut(name, maxName)

	var (
		wmu  sync.Mutex // serialises writes to s
		left bool       // we half-closed s
	)
	send := func(typ byte, t time.Time, text string) error {
		wmu.Lock()
		defer wmu.Unlock()
		if left {
			return net.ErrClosed
		}
		_, err := s.Write(appendFrame(nil, typ, t, text))
		return err
	}
	leave := func() error {
		wmu.Lock()
		defer wmu.Unlock()
		if left {
			return nil
		}
		left = true
		return s.CloseWrite()
	}
	// Our side (hello, then lines) is written by its own goroutine while
	// this one reads, so that neither peer blocks the other.
	upErr := make(chan error, 1)
	go func() {
		if err := send(typeHello, time.Time{}, name); err != nil {
			upErr <- fmt.Errorf("chat: sending hello: %w", err)
			return
		}
		upErr <- sendLines(in, func(line string) error { return send(typeText, opts.Now(), line) }, leave)
	}()

	err := receive(s, out, opts)
	if err == nil {
		// The peer left: we leave too, cleanly (the peer sees EOF).
		leave()
		return nil
	}
	select {
	case uerr := <-upErr:
		if uerr != nil && !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrVersion) {
			err = uerr
		}
	default:
	}
	return result(ctx, err)
}

func result(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// sendLines sends each line of in, cut into pieces of at most MaxMessage
// bytes (on UTF-8 boundaries), and half-closes s at the end of in.
func sendLines(in io.Reader, send func(string) error, leave func() error) error {
	br := bufio.NewReaderSize(in, MaxMessage)
	var pending []byte
	sentPart := false
	for {
		frag, isPrefix, err := br.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if cerr := leave(); cerr != nil {
					return fmt.Errorf("chat: leaving: %w", cerr)
				}
				return nil
			}
			return fmt.Errorf("chat: reading input: %w", err)
		}
		pending = append(pending, frag...)
		for len(pending) > MaxMessage {
			n := MaxMessage
			for !utf8.RuneStart(pending[n]) && n > MaxMessage-utf8.UTFMax {
				n--
			}
			if err := send(string(pending[:n])); err != nil {
				return fmt.Errorf("chat: sending: %w", err)
			}
			pending = append(pending[:0], pending[n:]...)
			sentPart = true
		}
		if isPrefix {
			continue
		}
		if len(pending) > 0 || !sentPart {
			if err := send(string(pending)); err != nil {
				return fmt.Errorf("chat: sending: %w", err)
			}
		}
		pending, sentPart = pending[:0], false
	}
}

// receive prints the peer's messages until it leaves.
func receive(s Stream, out io.Writer, opts Options) error {
	br := bufio.NewReaderSize(s, 4096)
	buf := make([]byte, maxFrame)
	typ, _, body, err := readFrame(br, buf)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("chat: reading the peer's hello: %w", err)
	}
	if typ != typeHello || len(body) < 1 {
		return fmt.Errorf("%w: expected hello", ErrProtocol)
	}
	if body[0] != Version {
		return fmt.Errorf("%w: the peer speaks chat version %d, this is %d; use the same p2plink release on both sides", ErrVersion, body[0], Version)
	}
	peer := Escape(cut(string(body[1:]), maxName))
	note := func(format string, args ...any) {
		if !opts.Quiet {
			fmt.Fprintf(out, "[%s] * "+format+"\n", append([]any{opts.Now().Format(time.TimeOnly)}, args...)...)
		}
	}
	note("%s joined", peer)
	for {
		typ, sent, body, err := readFrame(br, buf)
		if errors.Is(err, io.EOF) {
			note("%s left", peer)
			return nil
		}
		if err != nil {
			return fmt.Errorf("chat: receiving: %w", err)
		}
		if typ != typeText {
			return fmt.Errorf("%w: message type %q", ErrProtocol, typ)
		}
		m := Message{From: peer, Text: string(body), Sent: sent, Received: opts.Now()}
		if _, err := fmt.Fprintf(out, "[%s] %s: %s\n", m.Received.Format(time.TimeOnly), peer, Escape(m.Text)); err != nil {
			return fmt.Errorf("chat: printing: %w", err)
		}
		if opts.OnMessage != nil {
			opts.OnMessage(m)
		}
	}
}

// appendFrame appends one framed message to b.
func appendFrame(b []byte, typ byte, t time.Time, text string) []byte {
	switch typ {
	case typeHello:
		b = binary.BigEndian.AppendUint32(b, uint32(2+len(text)))
		b = append(b, typ, Version)
	default:
		b = binary.BigEndian.AppendUint32(b, uint32(9+len(text)))
		b = append(b, typ)
		b = binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
	}
	return append(b, text...)
}

// readFrame reads one message into buf. body aliases buf. A clean end of
// stream before a frame is io.EOF.
func readFrame(r io.Reader, buf []byte) (typ byte, sent time.Time, body []byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, sent, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 1 || n > uint32(len(buf)) {
		return 0, sent, nil, fmt.Errorf("%w: message of %d bytes", ErrProtocol, n)
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, sent, nil, err
	}
	typ, body = buf[0], buf[1:n]
	switch typ {
	case typeText:
		if len(body) < 8 {
			return 0, sent, nil, fmt.Errorf("%w: short text message", ErrProtocol)
		}
		sent = time.Unix(0, int64(binary.BigEndian.Uint64(body)))
		body = body[8:]
	case typeHello:
	default:
		return 0, sent, nil, fmt.Errorf("%w: message type %q", ErrProtocol, typ)
	}
	return typ, sent, body, nil
}

// Escape makes text safe to print on a terminal: control characters and
// invalid UTF-8 are shown as Go escapes (\x1b, \u202e), tabs are kept.
func Escape(text string) string {
	safe := true
	for _, r := range text {
		if r == utf8.RuneError || (r != '\t' && !unicode.IsPrint(r) && r != ' ') {
			safe = false
			break
		}
	}
	if safe {
		return text
	}
	var b strings.Builder
	for i, w := 0, 0; i < len(text); i += w {
		r, n := utf8.DecodeRuneInString(text[i:])
		w = n
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, text[i])
		case r == '\t' || r == ' ' || unicode.IsPrint(r):
			b.WriteRune(r)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
