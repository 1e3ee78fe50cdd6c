package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/p2plink/p2plink/peer"
	"github.com/p2plink/p2plink/peer/share"
	"github.com/p2plink/p2plink/peer/xfer"
)

// svcShare is the service of share requests: one stream per request.
const svcShare = share.Service

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// shareFlags are the flags of ls, get, put and of serve with shares. One
// value serves a whole run: the server it builds on first use keeps the
// count of failed password attempts across streams and sessions.
type shareFlags struct {
	shares, allow, passwordFiles listFlag
	sharesFile                   string

	once sync.Once
	srv  *share.Server
	err  error
}

func (f *shareFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.shares, "share", "serve: share folder DIR as NAME: NAME=DIR[:ro|:rw] (repeatable; default read-only)")
	fs.Var(&f.allow, "allow", "serve: who may see share NAME: NAME=FP[,FP…]; or FP[,FP…] for shares without a list; \"everyone\" for all peers (default)")
	fs.Var(&f.passwordFiles, "password-file", "serve: NAME=FILE, FILE's first line is share NAME's password or its hash; ls/get/put: [NAME=]FILE, the password to give (default $P2PLINK_PASSWORD)")
	fs.StringVar(&f.sharesFile, "shares", "", "the shares file (default: shares.json in the config directory)")
}

// shareServer builds the share server once, from the shares file and the
// flags, and reports what is shared.
func (e *env) shareServer(o *options, f *shareFlags) (*share.Server, error) {
	f.once.Do(func() { f.srv, f.err = e.newShareServer(o, f) })
	return f.srv, f.err
}

func (e *env) newShareServer(o *options, f *shareFlags) (*share.Server, error) {
	path := f.sharesFile
	if path == "" {
		dir, err := o.configPath()
		if err != nil {
			return nil, err
		}
		path = filepath.Join(dir, share.ConfigFile)
	}
	cfg, err := share.LoadFile(path)
	if err != nil {
		return nil, err
	}
	for _, v := range f.shares {
		if err := cfg.AddFlag(v); err != nil {
			return nil, usageError("%v", err)
		}
	}
	for _, v := range f.allow {
		if err := cfg.AllowFlag(v); err != nil {
			return nil, usageError("%v", err)
		}
	}
	for _, v := range f.passwordFiles {
		if err := cfg.PasswordFileFlag(v); err != nil {
			return nil, usageError("%v", err)
		}
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	srv, err := share.NewServer(cfg, share.ServerOptions{
		Logger:   slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level})),
		Compress: !o.noCompress,
		Hashes:   xfer.NewHashesIn(hashStoreDir()),
	})
	if err != nil {
		return nil, err
	}
	for _, n := range cfg.Names() {
		s := cfg.Shares[n]
		mode := "read-only"
		if s.ReadWrite {
			mode = "read-write"
		}
		who := "every peer"
		if allow := s.Allow; len(allow) > 0 || len(cfg.DefaultAllow) > 0 {
			if len(allow) == 0 {
				allow = cfg.DefaultAllow
			}
			who = strings.Join(allow, ", ")
		}
		pw := ""
		if s.PasswordHash != "" {
			pw = ", with a password"
		}
		fmt.Fprintf(e.stderr, "sharing %s: %s, %s, open to %s%s\n", n, s.Dir, mode, who, pw)
	}
	return srv, nil
}

// serveShares answers one share request on st (a stream whose Service is
// "share") and closes st. It returns when the request is done — a get or put
// may take long, so call it on its own goroutine.
func (e *env) serveShares(ctx context.Context, o *options, f *shareFlags, s *peer.Session, st *peer.Stream) error {
	srv, err := e.shareServer(o, f)
	if err != nil {
		st.Close()
		return err
	}
	p := s.Peer()
	return srv.Serve(ctx, st, share.Peer{Name: p.Name, Fingerprint: p.Fingerprint})
}

// password returns the password to give for share name: from
// --password-file NAME=FILE, else --password-file FILE, else
// $P2PLINK_PASSWORD.
func (f *shareFlags) password(name string) (string, error) {
	var fallback string
	for _, v := range f.passwordFiles {
		n, file, ok := strings.Cut(v, "=")
		if !ok {
			fallback = v
			continue
		}
		if n == name {
			return share.ReadPasswordFile(file)
		}
	}
	if fallback != "" {
		return share.ReadPasswordFile(fallback)
	}
	return os.Getenv("P2PLINK_PASSWORD"), nil
}

// splitRemote splits "SHARE/PATH" into the share and the path in it.
func splitRemote(s string) (string, string, error) {
	name, path, _ := strings.Cut(strings.TrimPrefix(s, "/"), "/")
	if name == "" {
		return "", "", usageError("%q: name a share first, as SHARE/PATH (ls lists the shares)", s)
	}
	return name, path, nil
}

// shareVerb runs ls, get or put against the peer's shares on session s.
func (e *env) shareVerb(ctx context.Context, o *options, f *shareFlags, s *peer.Session, verb string, args []string) error {
	switch verb {
	case "ls":
		if len(args) == 0 {
			return e.lsShares(ctx, s)
		}
		for _, a := range args {
			if err := e.lsPath(ctx, f, s, a, len(args) > 1); err != nil {
				return err
			}
		}
		return nil
	case "get":
		if len(args) == 0 {
			return usageError("get what? get SHARE/PATH … [--dir DIR] (ls lists the shares)")
		}
		return e.getFiles(ctx, o, f, s, args)
	case "put":
		if len(args) < 2 {
			return usageError("put LOCAL… SHARE/PATH: name the files or folders to put, then where")
		}
		return e.putFiles(ctx, o, f, s, args[:len(args)-1], args[len(args)-1])
	}
	return usageError("unknown share verb %q: ls, get or put", verb)
}

// explain adds what to do to a refusal.
func explain(err error, remote string) error {
	switch {
	case errors.Is(err, share.ErrDenied):
		return fmt.Errorf("%s: %w (check the name with ls; if the share has a password, give it with --password-file [NAME=]FILE)", remote, err)
	case errors.Is(err, share.ErrReadOnly):
		return fmt.Errorf("%s: %w: the serving peer must share it with :rw", remote, err)
	case errors.Is(err, share.ErrLocked):
		return fmt.Errorf("%s: %w", remote, err)
	}
	var se *share.StatusError
	if errors.As(err, &se) {
		return fmt.Errorf("%s: %w", remote, err)
	}
	return err
}

func (e *env) lsShares(ctx context.Context, s *peer.Session) error {
	st, err := s.OpenStream(ctx, svcShare, peer.PrioNormal)
	if err != nil {
		return err
	}
	infos, err := share.List(ctx, st)
	if err != nil {
		return err
	}
	if len(infos) == 0 {
		fmt.Fprintf(e.stderr, "%s shares nothing with this peer\n", s.Peer().Name)
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for _, in := range infos {
		mode := "ro"
		if in.ReadWrite {
			mode = "rw"
		}
		pw := ""
		if in.Password {
			pw = "password"
		}
		fmt.Fprintf(tw, "%s/\t%s\t%s\n", in.Name, mode, pw)
	}
	return tw.Flush()
}

func (e *env) lsPath(ctx context.Context, f *shareFlags, s *peer.Session, remote string, heading bool) error {
	name, path, err := splitRemote(remote)
	if err != nil {
		return err
	}
	pw, err := f.password(name)
	if err != nil {
		return err
	}
	st, err := s.OpenStream(ctx, svcShare, peer.PrioNormal)
	if err != nil {
		return err
	}
	entries, truncated, err := share.Ls(ctx, st, name, path, share.Auth{Password: pw})
	if err != nil {
		return explain(err, remote)
	}
	if heading {
		fmt.Fprintf(e.stdout, "%s:\n", remote)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for _, en := range entries {
		size, suffix := human(en.Size), ""
		switch en.Type {
		case "dir":
			size, suffix = "-", "/"
		case "link":
			size, suffix = "-", "@"
		case "other":
			size = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s%s\n", time.Unix(0, en.Mtime).Format("2006-01-02 15:04"), size, en.Name, suffix)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if truncated {
		fmt.Fprintf(e.stderr, "%s: the folder holds more entries than one listing shows\n", remote)
	}
	return nil
}

func (e *env) getFiles(ctx context.Context, o *options, f *shareFlags, s *peer.Session, args []string) error {
	// One request per share, in the order first named.
	var order []string
	paths := map[string][]string{}
	for _, a := range args {
		name, path, err := splitRemote(a)
		if err != nil {
			return err
		}
		if _, ok := paths[name]; !ok {
			order = append(order, name)
		}
		paths[name] = append(paths[name], path)
	}
	for _, name := range order {
		pw, err := f.password(name)
		if err != nil {
			return err
		}
		st, err := s.OpenStream(ctx, svcShare, peer.PrioBulk)
		if err != nil {
			return err
		}
		rep := newReporter(e.stderr, o.json)
		start := time.Now()
		res, err := share.Get(ctx, st, name, paths[name], share.Auth{Password: pw}, o.dir, xfer.ReceiveOptions{
			Overwrite: o.overwrite,
			Progress:  rep.update,
			Logger:    o.logger(e.stderr),
		})
		var se *share.StatusError
		if errors.As(err, &se) {
			return explain(err, name) // refused: nothing moved, no summary
		}
		if err := e.transferDone(s, "received", rep, res, start, err); err != nil {
			return err
		}
	}
	return nil
}

func (e *env) putFiles(ctx context.Context, o *options, f *shareFlags, s *peer.Session, local []string, remote string) error {
	name, path, err := splitRemote(remote)
	if err != nil {
		return err
	}
	for _, l := range local {
		if _, err := os.Stat(l); err != nil {
			return err
		}
	}
	pw, err := f.password(name)
	if err != nil {
		return err
	}
	st, err := s.OpenStream(ctx, svcShare, peer.PrioBulk)
	if err != nil {
		return err
	}
	rep := newReporter(e.stderr, o.json)
	start := time.Now()
	if o.hashes == nil {
		o.hashes = xfer.NewHashesIn(hashStoreDir()) // kept for a rerun after a cut
	}
	res, err := share.Put(ctx, st, name, path, local, share.Auth{Password: pw}, o.overwrite, o.sendOptions(rep.update, o.logger(e.stderr)))
	var se *share.StatusError
	if errors.As(err, &se) {
		return explain(err, remote) // refused: nothing moved, no summary
	}
	return e.transferDone(s, "sent", rep, res, start, err)
}
