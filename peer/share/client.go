package share

import (
	"context"
	"errors"
	"fmt"

	"github.com/p2plink/p2plink/internal/printable"
	"github.com/p2plink/p2plink/peer/xfer"
)

// Errors a request may end with; the *StatusError returned matches one of
// them with errors.Is.
var (
	ErrDenied    = errors.New("share: " + deniedMsg)
	ErrNotFound  = errors.New("share: no such file or folder")
	ErrBadPath   = errors.New("share: " + errBadPath.Error())
	ErrForbidden = errors.New("share: refused (a link leading outside the share, or a special file)")
	ErrReadOnly  = errors.New("share: the share is read-only")
	ErrLocked    = errors.New("share: too many failed attempts")
	ErrServer    = errors.New("share: the serving peer refused or failed")
)

// StatusError is a refusal by the serving peer.
type StatusError struct {
	Status Status
	Msg    string // the server's words
}

func (e *StatusError) Error() string { return "share: " + e.Msg }

// Is matches the sentinel of e's status.
func (e *StatusError) Is(target error) bool {
	switch e.Status {
	case StatusDenied:
		return target == ErrDenied
	case StatusNotFound:
		return target == ErrNotFound
	case StatusBadPath:
		return target == ErrBadPath
	case StatusForbidden:
		return target == ErrForbidden
	case StatusReadOnly:
		return target == ErrReadOnly
	case StatusLocked:
		return target == ErrLocked
	}
	return target == ErrServer
}

// Auth is what a client offers for a share.
type Auth struct {
	// Password for shares that need one; empty for none.
	Password string
}

// roundTrip sends req on st and reads the answer. On a refusal it closes st.
func roundTrip(ctx context.Context, st Stream, req request) (response, error) {
	stop := context.AfterFunc(ctx, func() { st.Close() })
	defer stop()
	req.V = Version
	var r response
	if err := writeMsg(st, req); err != nil {
		st.Close()
		return r, fmt.Errorf("share: sending the request: %w", ctxErr(ctx, err))
	}
	if req.Op == OpList || req.Op == OpLs {
		st.CloseWrite() // nothing more to say
	}
	if err := readMsg(st, maxResponse, &r); err != nil {
		st.Close()
		return r, fmt.Errorf("share: reading the answer: %w", ctxErr(ctx, err))
	}
	// The server's words are shown to the user: no escape sequences.
	r.Msg = printable.String(r.Msg)
	for i := range r.Shares {
		r.Shares[i].Name = printable.String(r.Shares[i].Name)
	}
	for i := range r.Entries {
		r.Entries[i].Name = printable.String(r.Entries[i].Name)
		r.Entries[i].Type = printable.String(r.Entries[i].Type)
	}
	if r.Status != StatusOK {
		st.Close()
		return r, &StatusError{Status: r.Status, Msg: r.Msg}
	}
	return r, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// List asks the peer on st for the shares it lets us see, and closes st.
func List(ctx context.Context, st Stream) ([]ShareInfo, error) {
	defer st.Close()
	r, err := roundTrip(ctx, st, request{Op: OpList})
	return r.Shares, err
}

// Ls lists the folder (or describes the file) at path in share, and closes
// st. path is slash-separated and relative to the share; "" is its root.
// truncated reports a folder too big to list whole.
func Ls(ctx context.Context, st Stream, share, path string, auth Auth) (entries []Entry, truncated bool, err error) {
	defer st.Close()
	r, err := roundTrip(ctx, st, request{Op: OpLs, Share: share, Path: path, Password: auth.Password})
	return r.Entries, r.Truncated, err
}

// Get fetches the files and folders at paths in share into dir (xfer.Receive
// with opts: verified, resumable, never overwriting unless asked), and closes
// st.
func Get(ctx context.Context, st Stream, share string, paths []string, auth Auth, dir string, opts xfer.ReceiveOptions) (xfer.Result, error) {
	if _, err := roundTrip(ctx, st, request{Op: OpGet, Share: share, Paths: paths, Password: auth.Password}); err != nil {
		return xfer.Result{}, err
	}
	return xfer.Receive(ctx, st, dir, opts)
}

// Put sends the local files and folders into the folder path of share
// (created if needed) with xfer.Send, and closes st. overwrite asks the
// server to replace files of the same name instead of storing "name (1)".
func Put(ctx context.Context, st Stream, share, path string, local []string, auth Auth, overwrite bool, opts xfer.SendOptions) (xfer.Result, error) {
	if _, err := roundTrip(ctx, st, request{Op: OpPut, Share: share, Path: path, Password: auth.Password, Overwrite: overwrite}); err != nil {
		return xfer.Result{}, err
	}
	return xfer.Send(ctx, st, local, opts)
}
