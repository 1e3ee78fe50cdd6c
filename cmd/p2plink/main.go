// Command p2plink makes computers peers over a direct physical link — a
// serial line, a USB bridge cable, an Ethernet segment — with no server and no
// IP set-up, and moves messages, files and byte streams between them over
// encrypted, authenticated sessions.
//
//	p2plink demo                               two peers over a built-in virtual line
//	p2plink serial /dev/ttyUSB0 chat           talk over a serial cable
//	p2plink serial /dev/ttyUSB0 send FILE…     send files and folders
//	p2plink serial /dev/ttyUSB0 receive        receive them (into --dir)
//	p2plink usb send FILE…                     the same over a USB bridge cable
//	p2plink eth eth0 …                         the same on an Ethernet segment
//	p2plink ports                              serial ports and bridge cables here
//	p2plink id                                 this peer's name and fingerprint
//
// Run `p2plink help` for every flag.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

func main() {
	oneThread = func() { runtime.GOMAXPROCS(1) }
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // the first Ctrl-C stops the command gracefully; a second ends it at once
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError carries an exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// run is the whole program, testable: it reads only args and the given
// streams, and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	jl := &jsonLines{w: stderr}
	defer jl.flush()
	err := dispatch(ctx, args, stdin, stdout, jl)
	if err == nil {
		return 0
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// Stopped by the user (Ctrl-C, SIGTERM): nothing went wrong to
		// report; 130 is what shells give an interrupted command.
		return 130
	}
	if jl.json() {
		jl.event(map[string]any{"event": "error", "text": err.Error()})
	} else {
		fmt.Fprintf(stderr, "p2plink: %v\n", err)
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError("say what to do: p2plink demo, p2plink serial PORT chat, … (p2plink help)")
	}
	env := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	switch args[0] {
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	case "version", "--version":
		fmt.Fprintln(stdout, "p2plink", version)
		return nil
	case "demo":
		return env.demo(ctx, args[1:])
	case "ports":
		return env.ports(ctx, args[1:])
	case "id":
		return env.id(args[1:])
	case "serial", "usb", "eth":
		return env.linkCommand(ctx, args[0], args[1:])
	default:
		return usageError("unknown command %q (p2plink help lists them)", args[0])
	}
}

const version = "0.1.0"

const usage = `p2plink — peers over a direct physical link, no server, no IP

Usage:
  p2plink demo [--baud N] [--size N] [--ber RATE]
                                           two peers over a built-in virtual serial line
                                           (RATE: bit errors on it, e.g. 1e-4)
  p2plink ports                            serial ports and USB bridge cables on this machine
  p2plink id                               this peer's name and fingerprint
  p2plink serial PORT [flags] VERB …       over a serial line (/dev/ttyUSB0, COM3, a pty)
  p2plink usb [flags] VERB …               over a USB host-to-host bridge cable
  p2plink eth IFACE [flags] VERB …         over raw Ethernet frames (EtherType 0x88B5)

Verbs (run the matching verb on the other end):
  chat                 an interactive chat; lines from stdin, the peer's lines on stdout
  send FILE|DIR …      send files and folders, verified by hash, resumable
  receive              receive files and folders into --dir (default: current directory)
  pipe                 join stdin/stdout to the peer's, like netcat: tar c dir | p2plink … pipe
  ls [SHARE/PATH]      list the peer's shares, or a folder in one
  get SHARE/PATH …     fetch files or folders from the peer's shares (into --dir); resumable
  put LOCAL … SHARE/PATH  store files or folders in a read-write share of the peer
  ping [--count N]     round-trip times to a peer that runs serve
  serve                answer chats, sends, pipes, pings and share requests until stopped (default)
  peers                (eth) list the peers heard on the segment: name, fingerprint, MAC

Flags for every link:
  --name NAME          the name peers see (default: host name)
  --peer FINGERPRINT   talk only to the peer with this fingerprint
  --to NAME|FPRINT     (eth) the peer to talk to; needed when several are there
  --timeout DURATION   give up on a silent peer after this long (default 30s)
  --wait DURATION      give up when no peer answered after this long (serve: its first
                       client; later ones are awaited without limit); default: until Ctrl-C
  --dir DIR            where receive and serve store files (default .)
  --overwrite          replace existing files instead of storing "name (1)"
  --no-compress        do not compress file data
  --hash-first         send, put: hash every file before its data goes (by default a file
                       is hashed as it is sent, its root checked at its end: the first
                       byte goes at once and each byte is read once; --hash-first also
                       fails a file changed during the send with its time put back)
  --json               everything on stderr as JSON lines: progress, each file's outcome, notes, errors
  --config DIR         identity and known peers (default: $XDG_CONFIG_HOME/p2plink)
  -v                   log what the link and the session do
Serial flags:
  --baud N             line rate (default 115200); --parity none|odd|even|mark|space;
  --stop 1|1.5|2; --data-bits 5..8; --mtu N (default 4096)
Share flags (serve):
  --share NAME=DIR[:ro|:rw]   share a folder (read-only unless :rw); repeatable
  --allow NAME=FP[,FP…]       who may see a share (default: every peer); "everyone" for all
  --password-file NAME=FILE   the share's password (or its argon2id hash) is FILE's first line;
                              for ls/get/put, the password to give (or $P2PLINK_PASSWORD)
  --shares FILE               the shares file (default: shares.json in the config directory)
USB flags:
  --device VID:PID     pick the cable by ids; --bus N --addr M by position
Ethernet flags:
  --no-spin            a read that finds no frame sleeps at once; by default, while
                       frames flow, it looks again for up to 50 µs first (faster
                       replies, up to 50 µs of CPU after each burst)
`
