package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/p2plink/p2plink/ethnet"
	"github.com/p2plink/p2plink/link"
	"github.com/p2plink/p2plink/peer"
	"github.com/p2plink/p2plink/peer/xfer"
	"github.com/p2plink/p2plink/serialnet"
	"github.com/p2plink/p2plink/usbnet"
)

type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// options are the flags every link command takes.
type options struct {
	name, peerFP, dir, configDir string
	to                           string
	timeout, wait                time.Duration
	overwrite, noCompress, json  bool
	verbose                      bool
	noSpin                       bool
	hashFirst                    bool

	baud, dataBits, mtu int
	parity, stop        string

	device        string
	busNum, addrN int

	sf    shareFlags
	count int

	// hashes keeps the roots of the files send hashes, from the start
	// (while the peer is awaited) and across reruns after a cut.
	hashes *xfer.Hashes
}

func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.name, "name", "", "the name peers see")
	fs.StringVar(&o.peerFP, "peer", "", "talk only to the peer with this fingerprint")
	fs.StringVar(&o.to, "to", "", "on a multi-peer link: the peer's name or fingerprint")
	fs.StringVar(&o.dir, "dir", ".", "where received files go")
	fs.StringVar(&o.configDir, "config", "", "identity and known peers directory")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up on a silent peer after this long")
	fs.DurationVar(&o.wait, "wait", 0, "give up when no peer answered after this long; serve: its first client (default: wait until Ctrl-C)")
	fs.BoolVar(&o.overwrite, "overwrite", false, "replace existing files")
	fs.BoolVar(&o.noCompress, "no-compress", false, "do not compress file data")
	fs.BoolVar(&o.hashFirst, "hash-first", false, "send, put: hash every file before sending it")
	fs.BoolVar(&o.json, "json", false, "everything on stderr as JSON lines")
	fs.BoolVar(&o.verbose, "v", false, "verbose log")
	fs.IntVar(&o.baud, "baud", 115200, "serial line rate")
	fs.IntVar(&o.dataBits, "data-bits", 8, "serial data bits")
	fs.IntVar(&o.mtu, "mtu", 0, "largest frame")
	fs.StringVar(&o.parity, "parity", "none", "serial parity")
	fs.StringVar(&o.stop, "stop", "1", "serial stop bits")
	fs.StringVar(&o.device, "device", "", "USB cable VID:PID")
	fs.IntVar(&o.busNum, "bus", 0, "USB bus number")
	fs.IntVar(&o.addrN, "addr", 0, "USB device address")
	fs.BoolVar(&o.noSpin, "no-spin", false, "eth: a read that finds no frame sleeps at once")
	o.sf.register(fs)
	fs.IntVar(&o.count, "count", 20, "ping: round trips to measure")
}

// parseInterleaved parses flags that may stand before, between or after
// positional arguments, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (o *options) logger(w io.Writer) *slog.Logger {
	if !o.verbose {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// displayName is the name we show: --name or the host name.
func (o *options) displayName() string {
	if o.name != "" {
		return o.name
	}
	h, _ := os.Hostname()
	return h
}

func (o *options) configPath() (string, error) {
	if o.configDir != "" {
		return o.configDir, nil
	}
	if d := os.Getenv("P2PLINK_CONFIG"); d != "" {
		return d, nil
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config directory (%v): pass --config DIR", err)
	}
	return filepath.Join(base, "p2plink"), nil
}

// peerConfig loads (or makes) the identity and the known peers.
func (o *options) peerConfig(e *env) (peer.Config, error) {
	dir, err := o.configPath()
	if err != nil {
		return peer.Config{}, err
	}
	id, created, err := peer.LoadOrCreateIdentity(dir)
	if err != nil {
		return peer.Config{}, err
	}
	if created {
		fmt.Fprintf(e.stderr, "new identity %s stored in %s\n", id.Fingerprint(), dir)
	}
	return peer.Config{
		Identity:           id,
		Name:               o.name,
		KnownPeers:         peer.OpenKnownPeers(filepath.Join(dir, "known_peers")),
		RequireFingerprint: o.peerFP,
		DeadPeerTimeout:    o.timeout,
		Logger:             o.logger(e.stderr),
	}, nil
}

func (e *env) id(args []string) error {
	var o options
	fs := flag.NewFlagSet("id", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	o.register(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("id takes no arguments (got %q); --name and --config choose the identity", pos)
	}
	cfg, err := o.peerConfig(e)
	if err != nil {
		return err
	}
	name := o.name
	if name == "" {
		name, _ = os.Hostname()
	}
	fmt.Fprintf(e.stdout, "name:        %s\nfingerprint: %s\n", name, cfg.Identity.Fingerprint())
	return nil
}

// linkCommand runs `p2plink serial|usb|eth …`.
func (e *env) linkCommand(ctx context.Context, kind string, args []string) error {
	var o options
	fs := flag.NewFlagSet(kind, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	o.register(fs)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if jl, ok := e.stderr.(*jsonLines); ok && o.json {
		jl.mu.Lock()
		jl.on = true
		jl.mu.Unlock()
	}
	if o.mtu != 0 && (o.mtu < 512 || o.mtu > 65535) {
		return usageError("--mtu %d: give 512 to 65535 bytes (default 4096); both ends then use the smaller of theirs", o.mtu)
	}
	var target string
	if kind != "usb" {
		if len(pos) == 0 {
			if kind == "serial" {
				return usageError("name the serial port: p2plink serial /dev/ttyUSB0 chat (p2plink ports lists them)")
			}
			return usageError("name the interface: p2plink eth eth0 chat")
		}
		target, pos = pos[0], pos[1:]
	}
	verb := "serve"
	if len(pos) > 0 {
		verb, pos = pos[0], pos[1:]
	}
	switch verb {
	case "chat", "receive", "pipe", "serve", "peers", "ping":
		if len(pos) > 0 {
			return usageError("%s takes no arguments (got %q)", verb, pos)
		}
	case "send":
		if len(pos) == 0 {
			return usageError("send what? p2plink %s … send FILE|DIR …", kind)
		}
		if err := checkLocal(pos); err != nil {
			return err
		}
	case "ls":
		if len(pos) > 1 {
			return usageError("ls takes one SHARE/PATH at most")
		}
	case "get":
		if len(pos) == 0 {
			return usageError("get what? p2plink %s … get SHARE/PATH …", kind)
		}
	case "put":
		if len(pos) < 2 {
			return usageError("put takes local files and a SHARE/PATH: p2plink %s … put ./photos docs/", kind)
		}
		if err := checkLocal(pos[:len(pos)-1]); err != nil {
			return err
		}
	default:
		return usageError("unknown verb %q: chat, send, receive, pipe, ls, get, put, ping, serve or peers", verb)
	}
	switch verb {
	case "receive", "get", "serve":
		// Said now, not once a peer came and sent (a field test waited
		// for the peer to learn that --dir named a file).
		if err := checkDir(o.dir, verb != "serve"); err != nil {
			return err
		}
	}
	switch verb {
	case "receive", "get", "send", "put":
		transferThreads()
	}
	pcfg, err := o.peerConfig(e)
	if err != nil {
		return err
	}
	l, err := o.openLink(ctx, kind, target, pcfg.Logger, true)
	if errors.Is(err, ethnet.ErrInUse) && verb == "peers" {
		// Another p2plink (a serve) has the interface: listen beside it
		// without a word, so as not to cross its sessions.
		fmt.Fprintf(e.stderr, "another p2plink runs on %s: listening quietly for the peers' periodic announcements…\n", target)
		l, err = o.openLink(ctx, kind, target, pcfg.Logger, false)
		pcfg.Quiet = true
	}
	if err != nil {
		return err
	}
	ep, err := peer.NewEndpoint(l, pcfg)
	if err != nil {
		l.Close()
		return err
	}
	defer ep.Close()
	return e.runVerb(ctx, &o, ep, verb, pos)
}

// openLink opens the link. An Ethernet link claims its interface when
// exclusive (see ethnet.Config.Exclusive): two peers on one interface would
// receive each other's frames.
func (o *options) openLink(ctx context.Context, kind, target string, log *slog.Logger, exclusive bool) (link.Link, error) {
	switch kind {
	case "serial":
		cfg := serialnet.Config{Baud: o.baud, DataBits: o.dataBits, MTU: o.mtu, Logger: log}
		var err error
		if cfg.Parity, err = parseParity(o.parity); err != nil {
			return nil, err
		}
		if cfg.StopBits, err = parseStop(o.stop); err != nil {
			return nil, err
		}
		return serialnet.Open(target, cfg)
	case "usb":
		cfg := usbnet.Config{BusNum: o.busNum, Address: o.addrN, Logger: log}
		if o.device != "" {
			v, p, err := parseVIDPID(o.device)
			if err != nil {
				return nil, err
			}
			cfg.Vendor, cfg.Product = v, p
		}
		return usbnet.Open(ctx, cfg)
	case "eth":
		return ethnet.Open(target, o.ethConfig(exclusive))
	}
	return nil, errors.New("unknown link")
}

// ethConfig is the Ethernet link's configuration the flags ask for.
func (o *options) ethConfig(exclusive bool) ethnet.Config {
	return ethnet.Config{Exclusive: exclusive, NoSpin: o.noSpin}
}

func parseParity(s string) (serialnet.Parity, error) {
	switch strings.ToLower(s) {
	case "none", "n":
		return serialnet.ParityNone, nil
	case "odd", "o":
		return serialnet.ParityOdd, nil
	case "even", "e":
		return serialnet.ParityEven, nil
	case "mark", "m":
		return serialnet.ParityMark, nil
	case "space", "s":
		return serialnet.ParitySpace, nil
	}
	return 0, usageError("--parity %q: use none, odd, even, mark or space", s)
}

func parseStop(s string) (serialnet.StopBits, error) {
	switch s {
	case "1":
		return serialnet.StopBits1, nil
	case "1.5":
		return serialnet.StopBits1Half, nil
	case "2":
		return serialnet.StopBits2, nil
	}
	return 0, usageError("--stop %q: use 1, 1.5 or 2", s)
}

func parseVIDPID(s string) (uint16, uint16, error) {
	a, b, ok := strings.Cut(s, ":")
	if ok {
		v, err1 := strconv.ParseUint(a, 16, 16)
		p, err2 := strconv.ParseUint(b, 16, 16)
		if err1 == nil && err2 == nil {
			return uint16(v), uint16(p), nil
		}
	}
	return 0, 0, usageError("--device %q: give the cable's ids as VID:PID in hex, e.g. 067b:25a1 (p2plink ports lists them)", s)
}

// checkLocal checks, before any peer is looked for, that the files and
// folders to send are there and readable: a typo is said at once, not
// after a peer answered (or as "no peer answered" with --wait).
// checkDir says at once that dir cannot take received files: a file in
// its place or in its path, or, with write, a folder this user may not
// write in (a server whose shares are read-only need not write). A folder
// that does not exist is made when the first file comes.
func checkDir(dir string, write bool) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("--dir %s: part of that path is a file, not a folder: name a folder for the received files", dir)
	case err != nil:
		return fmt.Errorf("--dir %s: %w", dir, errors.Unwrap(err))
	case !fi.IsDir():
		return fmt.Errorf("--dir %s is a file, not a folder: name a folder for the received files (one that does not exist is made)", dir)
	case !write:
		return nil
	}
	f, err := os.CreateTemp(dir, ".p2plink-check-*")
	if err != nil {
		return fmt.Errorf("--dir %s: this user cannot write there (%w): name a folder it may write in", dir, errors.Unwrap(err))
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

func checkLocal(paths []string) error {
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, errors.Unwrap(err))
		}
		if fi.Mode().IsRegular() { // (opening a named pipe would wait for a writer)
			f, err := os.Open(p)
			if err != nil {
				return fmt.Errorf("%s: %w", p, errors.Unwrap(err))
			}
			f.Close()
		}
	}
	return nil
}
