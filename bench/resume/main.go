// Command resume measures how much a share get resends after the cable is
// pulled mid-transfer.
//
// Two peers talk over an in-memory frame link (linktest.NewFramePipe) paced
// at a serial line's byte rate (baud/10 bytes per second, 8N1). The client
// gets a file of -size bytes from the server's share; when -cut of it has
// arrived the cable is pulled, both sessions die after the dead-peer
// timeout, the cable is put back, the peers connect again and the client
// runs the same get, which resumes from the data kept in .p2plink-partial.
//
// Bytes resent is what the client received in the two runs beyond one clean
// transfer of the same file (measured first, unpaced): the data that arrived
// but was not kept (xfer keeps whole verified chunks only, so the unfinished
// chunk is lost), plus the second run's answer and manifest. The target is
// less than one chunk (64 KiB). The server's surplus is printed beside it: it
// adds what was in the link's queue when the cable was pulled and never
// arrived.
//
//	go run ./bench/resume                   # 4 MiB at 115200 baud: about 7 minutes
//	go run ./bench/resume -baud 1152000     # ten times faster, same bytes
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/p2plink/p2plink/link/linktest"
	"github.com/p2plink/p2plink/peer"
	"github.com/p2plink/p2plink/peer/share"
	"github.com/p2plink/p2plink/peer/xfer"
)

func main() {
	size := flag.Int64("size", 4<<20, "file size in bytes")
	baud := flag.Int64("baud", 115200, "line rate; the pipe carries baud/10 bytes per second")
	cut := flag.Float64("cut", 0.5, "pull the cable when this share of the file has arrived")
	mtu := flag.Int("mtu", 1024, "frame size of the link")
	dead := flag.Duration("dead", 3*time.Second, "dead-peer timeout (how long a pulled cable takes to end the session)")
	flag.Parse()
	if err := run(*size, *baud, *cut, *mtu, *dead, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "resume:", err)
		os.Exit(1)
	}
}

// pair is two endpoints on one pipe and the share server behind the second.
type pair struct {
	a, b   *linktest.FrameEnd
	ea, eb *peer.Endpoint
	srv    *share.Server
	wg     sync.WaitGroup
}

func newPair(bandwidth int64, mtu int, dead time.Duration, srv *share.Server) (*pair, error) {
	p := &pair{srv: srv}
	p.a, p.b = linktest.NewFramePipe(linktest.PipeConfig{Bandwidth: bandwidth, MTU: mtu})
	cfg := func(name string) (peer.Config, error) {
		id, err := peer.NewIdentity()
		return peer.Config{Identity: id, Name: name, DeadPeerTimeout: dead, KeepAlive: dead / 6}, err
	}
	ca, err := cfg("client")
	if err != nil {
		return nil, err
	}
	cb, err := cfg("server")
	if err != nil {
		return nil, err
	}
	if p.ea, err = peer.NewEndpoint(p.a, ca); err != nil {
		return nil, err
	}
	if p.eb, err = peer.NewEndpoint(p.b, cb); err != nil {
		p.ea.Close()
		return nil, err
	}
	return p, nil
}

// connect starts a session on both ends; the server side answers share
// streams until its session ends.
func (p *pair) connect(ctx context.Context) (cli, srvSess *peer.Session, err error) {
	var errA, errB error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); cli, errA = p.ea.Connect(ctx, nil) }()
	go func() { defer wg.Done(); srvSess, errB = p.eb.Connect(ctx, nil) }()
	wg.Wait()
	if err := errors.Join(errA, errB); err != nil {
		return nil, nil, err
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		pi := srvSess.Peer()
		for {
			st, err := srvSess.AcceptStream(srvSess.Context())
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.srv.Serve(srvSess.Context(), st, share.Peer{Name: pi.Name, Fingerprint: pi.Fingerprint})
			}()
		}
	}()
	return cli, srvSess, nil
}

func (p *pair) close() {
	p.ea.Close()
	p.eb.Close()
	p.wg.Wait()
}

func get(ctx context.Context, s *peer.Session, dir string, progress func(xfer.Progress)) (xfer.Result, error) {
	st, err := s.OpenStream(ctx, share.Service, peer.PrioBulk)
	if err != nil {
		return xfer.Result{}, err
	}
	return share.Get(ctx, st, "data", []string{"file.bin"}, share.Auth{}, dir, xfer.ReceiveOptions{Progress: progress})
}

func run(size, baud int64, cut float64, mtu int, dead time.Duration, out io.Writer) error {
	tmp, err := os.MkdirTemp("", "p2plink-resume-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(tmp, "share")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	data := make([]byte, size)
	rand.Read(data) // incompressible: compression cannot hide resent bytes
	if err := os.WriteFile(filepath.Join(src, "file.bin"), data, 0o644); err != nil {
		return err
	}
	cfg := &share.Config{}
	if err := cfg.AddFlag("data=" + src); err != nil {
		return err
	}
	srv, err := share.NewServer(cfg, share.ServerOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	ctx := context.Background()
	rate := baud / 10
	fmt.Fprintf(out, "resume: %d bytes at %d baud (%d B/s), frames of %d bytes, chunk %d bytes, cable pulled at %.0f %%\n",
		size, baud, rate, mtu, xfer.ChunkSize, cut*100)

	// A clean transfer, unpaced, measures what one get puts on the line.
	clean, err := newPair(0, mtu, dead, srv)
	if err != nil {
		return err
	}
	c0, s0, err := clean.connect(ctx)
	if err != nil {
		return err
	}
	if _, err := get(ctx, c0, filepath.Join(tmp, "clean"), nil); err != nil {
		return fmt.Errorf("clean get: %w", err)
	}
	baseRecv, baseSent := c0.Stats().BytesRecv, s0.Stats().BytesSent
	clean.close()
	fmt.Fprintf(out, "clean get:   client received %d, server sent %d stream bytes\n", baseRecv, baseSent)

	// The paced transfer, cut at cut*size.
	p, err := newPair(rate, mtu, dead, srv)
	if err != nil {
		return err
	}
	defer p.close()
	dst := filepath.Join(tmp, "dst")
	c1, s1, err := p.connect(ctx)
	if err != nil {
		return err
	}
	// The cable is pulled when the client's session has received cut*size
	// bytes, wherever that falls in a chunk (a progress callback would cut
	// only at chunk boundaries, the kindest case).
	var stored atomic.Int64
	var recvAtCut uint64
	pulled := make(chan struct{})
	go func() {
		defer close(pulled)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-c1.Done():
				return
			case <-tick.C:
			}
			if r := c1.Stats().BytesRecv; float64(r) >= cut*float64(size) {
				p.a.Unplug()
				recvAtCut = r
				return
			}
		}
	}()
	start := time.Now()
	_, err1 := get(ctx, c1, dst, func(pr xfer.Progress) { stored.Store(pr.FileDone) })
	<-pulled
	if err1 == nil {
		return errors.New("the first get finished: the cable was never pulled")
	}
	<-c1.Done()
	<-s1.Done()
	t1 := time.Since(start)
	recv1, sent1 := c1.Stats().BytesRecv, s1.Stats().BytesSent
	fmt.Fprintf(out, "run 1:       cable pulled after %d bytes received, %d stored; session ended after %.1fs (%v); client received %d, server sent %d\n",
		recvAtCut, stored.Load(), t1.Seconds(), c1.Err(), recv1, sent1)

	p.a.Replug()
	c2, s2, err := p.connect(ctx)
	if err != nil {
		return fmt.Errorf("reconnect: %w", err)
	}
	start = time.Now()
	res, err := get(ctx, c2, dst, nil)
	if err != nil {
		return fmt.Errorf("second get: %w", err)
	}
	t2 := time.Since(start)
	recv2, sent2 := c2.Stats().BytesRecv, s2.Stats().BytesSent
	got, err := os.ReadFile(filepath.Join(dst, "file.bin"))
	if err != nil {
		return err
	}
	if string(got) != string(data) {
		return errors.New("the resumed file differs from the original")
	}
	fmt.Fprintf(out, "run 2:       resumed %d bytes, moved %d in %.1fs; client received %d, server sent %d; file verified\n",
		res.Resumed, res.Bytes, t2.Seconds(), recv2, sent2)

	resentRecv := int64(recv1+recv2) - int64(baseRecv)
	resentSent := int64(sent1+sent2) - int64(baseSent)
	verdict := "under target"
	if resentRecv >= xfer.ChunkSize {
		verdict = "OVER TARGET"
	}
	fmt.Fprintf(out, "bytes resent: %d (arrived in run 1, sent again in run 2; target < %d, one chunk): %s\n",
		resentRecv, xfer.ChunkSize, verdict)
	fmt.Fprintf(out, "server surplus: %d bytes sent twice, of which %d never arrived (in the link's queue when the cable was pulled)\n",
		resentSent, int64(sent1)-int64(recv1))
	return nil
}
