package xfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
)

// Pipe joins s to in and out, like netcat: what is read from in is written to
// s, then s is half-closed (CloseWrite) when in reaches EOF; what arrives on s
// is written to out. Pipe returns when both directions are finished, and
// closes s before it returns. Cancelling ctx closes s at once.
//
// A reader that never reaches EOF (a terminal) keeps Pipe waiting after the
// peer finished; give such callers an empty reader, or cancel ctx. When Pipe
// returns early (an error or ctx), a goroutine blocked in in.Read stays
// blocked until that Read returns, then exits without touching s.
func Pipe(ctx context.Context, s Stream, in io.Reader, out io.Writer) error {
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	up := make(chan error, 1)
	go func() {
		_, err := io.CopyBuffer(s, in, make([]byte, 64<<10))
		if err == nil {
			err = s.CloseWrite()
		}
		up <- err
	}()
	_, derr := io.CopyBuffer(out, s, make([]byte, 64<<10))
	if derr != nil {
		s.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("xfer: pipe: receiving: %w", derr)
	}
	var uerr error
	select {
	case uerr = <-up:
	case <-ctx.Done():
		return ctx.Err()
	}
	if uerr != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(uerr, net.ErrClosed) {
			return fmt.Errorf("xfer: pipe: the stream closed before all input was sent: %w", uerr)
		}
		return fmt.Errorf("xfer: pipe: sending: %w", uerr)
	}
	return nil
}
