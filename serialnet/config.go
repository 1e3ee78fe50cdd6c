package serialnet

import (
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"go.bug.st/serial"

	"github.com/p2plink/p2plink/framing"
)

// Defaults for the zero fields of Config.
const (
	DefaultBaud           = 115200
	DefaultDataBits       = 8
	DefaultMTU            = 4096
	DefaultReadTimeout    = 50 * time.Millisecond
	DefaultReopenInterval = time.Second
)

// Parity is the parity bit setting of the line. The zero value is ParityNone.
type Parity int

// Parity settings.
const (
	ParityNone  Parity = iota // no parity bit
	ParityOdd                 // odd parity
	ParityEven                // even parity
	ParityMark                // parity bit always 1
	ParitySpace               // parity bit always 0
)

// String returns the letter used in line settings such as "8N1".
func (p Parity) String() string {
	switch p {
	case ParityNone:
		return "N"
	case ParityOdd:
		return "O"
	case ParityEven:
		return "E"
	case ParityMark:
		return "M"
	case ParitySpace:
		return "S"
	}
	return fmt.Sprintf("Parity(%d)", int(p))
}

// StopBits is the number of stop bits. The zero value is StopBits1.
type StopBits int

// Stop bit settings.
const (
	StopBits1     StopBits = iota // one stop bit
	StopBits1Half                 // one and a half stop bits (not on Linux/BSD/macOS)
	StopBits2                     // two stop bits
)

// String returns "1", "1.5" or "2".
func (s StopBits) String() string {
	switch s {
	case StopBits1:
		return "1"
	case StopBits1Half:
		return "1.5"
	case StopBits2:
		return "2"
	}
	return fmt.Sprintf("StopBits(%d)", int(s))
}

// Config configures a serial Link. Every zero (or nil) field means its
// default, so Config{} is a 115200-baud 8N1 line with a 4096-byte MTU.
type Config struct {
	// Baud is the line rate in bits per second. Default 115200. Any positive
	// rate the driver accepts works; ptys accept any and do not enforce it.
	Baud int
	// DataBits is the character size, 5 to 8. Default 8. Frames carry
	// arbitrary bytes, so both ends need 8 in practice.
	DataBits int
	// Parity is the parity bit. Default ParityNone.
	Parity Parity
	// StopBits is the number of stop bits. Default StopBits1. StopBits1Half
	// is refused on Unix systems, whose termios cannot express it.
	StopBits StopBits
	// MTU is the largest frame payload in bytes. Default 4096; at most
	// framing.MaxPayload (65535). Both ends should use the same MTU: frames
	// longer than the receiver's MTU are dropped and counted.
	MTU int
	// ReadTimeout is the granularity of the reader goroutine: each read of
	// the port returns after at most this long without data, so the reader
	// notices Close within it. It bounds how long Close takes; it does not
	// limit ReadFrom (use SetReadDeadline). Default 50 ms.
	ReadTimeout time.Duration
	// ReopenInterval is how often the driver tries to reopen the port after
	// it went away (a USB adapter unplugged). Default 1 s.
	ReopenInterval time.Duration
	// ReopenPath is the path reopened after the port went away. Default:
	// the path given to Open. A stable name such as
	// /dev/serial/by-id/usb-FTDI_..., whether given to Open or here, finds
	// the adapter again even if the kernel names it ttyUSB1 the next time.
	ReopenPath string
	// Logger receives a line when the port goes away and when it comes back.
	// Default: discard.
	Logger *slog.Logger
}

// MinBaud is the slowest rate Open takes, the slowest termios names: a
// slower one is a typing mistake (a field test's --baud 1 went through,
// and no handshake could finish at 10 s per character). There is no
// highest: a pseudo-terminal takes any rate, and a serial driver refuses
// one its chip cannot make, which Open reports.
const MinBaud = 50

// settings is a Config with defaults applied and values checked.
type settings struct {
	Config
	mode     serial.Mode
	charTime time.Duration // one character on the line, start and stop bits included
}

// resolve applies the defaults and checks the values. Its errors say which
// value to change; Open wraps them in an OpenError with ErrInvalidConfig.
func (c Config) resolve() (settings, error) {
	bad := func(format string, args ...any) (settings, error) {
		return settings{}, fmt.Errorf(format, args...)
	}
	if c.Baud == 0 {
		c.Baud = DefaultBaud
	}
	if c.Baud < MinBaud {
		return bad("baud rate %d: use %d or more, such as 9600, 115200 or 1000000 (0 means %d)", c.Baud, MinBaud, DefaultBaud)
	}
	if c.DataBits == 0 {
		c.DataBits = DefaultDataBits
	}
	if c.DataBits < 5 || c.DataBits > 8 {
		return bad("%d data bits: use 5, 6, 7 or 8 (0 means %d)", c.DataBits, DefaultDataBits)
	}
	var par serial.Parity
	switch c.Parity {
	case ParityNone:
		par = serial.NoParity
	case ParityOdd:
		par = serial.OddParity
	case ParityEven:
		par = serial.EvenParity
	case ParityMark:
		par = serial.MarkParity
	case ParitySpace:
		par = serial.SpaceParity
	default:
		return bad("parity %d: use ParityNone, ParityOdd, ParityEven, ParityMark or ParitySpace", int(c.Parity))
	}
	var stop serial.StopBits
	switch c.StopBits {
	case StopBits1:
		stop = serial.OneStopBit
	case StopBits1Half:
		if runtime.GOOS != "windows" {
			return bad("1.5 stop bits cannot be set through termios on %s: use StopBits1 or StopBits2", runtime.GOOS)
		}
		stop = serial.OnePointFiveStopBits
	case StopBits2:
		stop = serial.TwoStopBits
	default:
		return bad("stop bits %d: use StopBits1, StopBits1Half or StopBits2", int(c.StopBits))
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.MTU < 0 || c.MTU > framing.MaxPayload {
		return bad("MTU %d: use 1 to %d bytes (0 means %d)", c.MTU, framing.MaxPayload, DefaultMTU)
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.ReadTimeout < 0 {
		return bad("read timeout %v: use a positive duration (0 means %v)", c.ReadTimeout, DefaultReadTimeout)
	}
	if c.ReopenInterval == 0 {
		c.ReopenInterval = DefaultReopenInterval
	}
	if c.ReopenInterval < 0 {
		return bad("reopen interval %v: use a positive duration (0 means %v)", c.ReopenInterval, DefaultReopenInterval)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	// Start bit, data bits, parity bit, stop bits; 1.5 rounds up.
	bits := 1 + c.DataBits + 1
	if c.Parity != ParityNone {
		bits++
	}
	if c.StopBits != StopBits1 {
		bits++
	}
	return settings{
		Config:   c,
		mode:     serial.Mode{BaudRate: c.Baud, DataBits: c.DataBits, Parity: par, StopBits: stop},
		charTime: time.Duration(int64(bits) * int64(time.Second) / int64(c.Baud)),
	}, nil
}

// lineSettings describes the line as in "115200 8N1".
func (s *settings) lineSettings() string {
	return fmt.Sprintf("%d %d%s%s", s.Baud, s.DataBits, s.Parity, s.StopBits)
}
