package xfer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/p2plink/p2plink/link/linktest"
	"github.com/p2plink/p2plink/peer"
	"github.com/p2plink/p2plink/peer/xfer"
)

// sessionPair is two peer endpoints joined by an in-memory frame pipe,
// with a session between them.
type sessionPair struct {
	ea, eb *peer.Endpoint
	sa, sb *peer.Session
}

func newSessionPair(b *testing.B, mtu int) *sessionPair {
	b.Helper()
	la, lb := linktest.NewFramePipe(linktest.PipeConfig{MTU: mtu, QueueLen: 256})
	cfg := func(name string) peer.Config {
		id, err := peer.NewIdentity()
		if err != nil {
			b.Fatal(err)
		}
		return peer.Config{Identity: id, Name: name}
	}
	ea, err := peer.NewEndpoint(la, cfg("a"))
	if err != nil {
		b.Fatal(err)
	}
	eb, err := peer.NewEndpoint(lb, cfg("b"))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := &sessionPair{ea: ea, eb: eb}
	acc := make(chan error, 1)
	go func() {
		var err error
		p.sb, err = eb.Accept(ctx)
		acc <- err
	}()
	if p.sa, err = ea.Connect(ctx, nil); err != nil {
		b.Fatal(err)
	}
	if err := <-acc; err != nil {
		b.Fatal(err)
	}
	return p
}

func (p *sessionPair) close() {
	p.ea.Close()
	p.eb.Close()
}

// BenchmarkTransferOverSession sends a 32 MiB file with xfer over a real
// peer session (encrypted, over an in-memory frame pipe): what the
// transfer adds to the stream it rides on. The anchor, x-stream, is the
// same bytes copied over a stream of the same session in the same run
// (io.Copy, nothing hashed or stored).
func BenchmarkTransferOverSession(b *testing.B) {
	const size = 32 << 20
	data := make([]byte, size)
	rand.Read(data)
	src := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		b.Fatal(err)
	}
	for _, mtu := range []int{1500, 9000} {
		b.Run("mtu="+strconv.Itoa(mtu), func(b *testing.B) {
			p := newSessionPair(b, mtu)
			defer p.close()
			ctx := context.Background()
			anchor := time.Duration(1<<63 - 1)
			for range 3 {
				start := time.Now()
				done := make(chan error, 1)
				go func() {
					st, err := p.sb.AcceptStream(ctx)
					if err == nil {
						_, err = io.Copy(io.Discard, st)
					}
					done <- err
				}()
				st, err := p.sa.OpenStream(ctx, "copy", peer.PrioBulk)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(st, bytes.NewReader(data))
				st.CloseWrite()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				st.Close()
				anchor = min(anchor, time.Since(start))
			}
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				dst := b.TempDir()
				done := make(chan error, 1)
				go func() {
					st, err := p.sb.AcceptStream(ctx)
					if err == nil {
						_, err = xfer.Receive(ctx, st, dst, xfer.ReceiveOptions{})
					}
					done <- err
				}()
				st, err := p.sa.OpenStream(ctx, "xfer", peer.PrioBulk)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := xfer.Send(ctx, st, []string{src}, xfer.SendOptions{}); err != nil {
					b.Fatal(err)
				}
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				os.RemoveAll(dst)
			}
			b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(anchor), "x-stream")
		})
	}
}
