package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/p2plink/p2plink/link/linktest"
	"github.com/p2plink/p2plink/peer"
	"github.com/p2plink/p2plink/peer/xfer"
	"github.com/p2plink/p2plink/serialnet"
)

// demo runs two peers, alice and bob, in this process over a virtual serial
// line — two pseudo-terminals joined by a paced null-modem — and shows a
// chat, a verified file transfer with progress, and what the line did.
func (e *env) demo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	baud := fs.Int("baud", 921600, "rate of the virtual line")
	size := fs.Int("size", 256<<10, "bytes in the demo file")
	ber := fs.Float64("ber", 0, "bit error rate on the virtual line, e.g. 1e-5")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return usageError("demo takes no arguments (got %q); its flags: --baud N, --size N, --ber RATE", pos)
	case *baud < 50 || *baud > 16_000_000:
		return usageError("--baud %d: give a line rate from 50 to 16000000", *baud)
	case *size < 0 || *size > 1<<30:
		return usageError("--size %d: give a file size from 0 to 1073741824 bytes", *size)
	case !(*ber >= 0 && *ber <= 1e-3):
		return usageError("--ber %g: give a bit error rate from 0 to 0.001 (1e-3; above it next to nothing gets through)", *ber)
	}
	nm, err := linktest.NewNullModem(linktest.NullModemConfig{Baud: *baud, BitErrorRate: *ber, Seed: 1})
	if err != nil {
		return fmt.Errorf("cannot make the virtual line (pseudo-terminals): %w", err)
	}
	defer nm.Close()
	fmt.Fprintf(e.stdout, "virtual serial line: %s <-> %s at %d baud 8N1, bit error rate %g\n", nm.PortA(), nm.PortB(), *baud, *ber)

	work, err := os.MkdirTemp("", "p2plink-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	mk := func(name, port string) (*peer.Endpoint, *peer.Identity, error) {
		id, err := peer.NewIdentity()
		if err != nil {
			return nil, nil, err
		}
		l, err := serialnet.Open(port, serialnet.Config{Baud: *baud})
		if err != nil {
			return nil, nil, err
		}
		ep, err := peer.NewEndpoint(l, peer.Config{Identity: id, Name: name,
			KnownPeers: peer.OpenKnownPeers(filepath.Join(work, name, "known_peers"))})
		if err != nil {
			l.Close()
			return nil, nil, err
		}
		return ep, id, nil
	}
	ea, ida, err := mk("alice", nm.PortA())
	if err != nil {
		return err
	}
	defer ea.Close()
	eb, idb, err := mk("bob", nm.PortB())
	if err != nil {
		return err
	}
	defer eb.Close()
	fmt.Fprintf(e.stdout, "alice is %s, bob is %s\n", ida.Fingerprint(), idb.Fingerprint())

	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var sb *peer.Session
	var errB error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); sb, errB = eb.Connect(cctx, nil) }()
	sa, err := ea.Connect(cctx, nil)
	wg.Wait()
	if err != nil || errB != nil {
		return fmt.Errorf("handshake failed: %v %v", err, errB)
	}
	fmt.Fprintf(e.stdout, "encrypted session up: alice sees %s (%s), bob sees %s (%s)\n",
		sa.Peer().Name, sa.Peer().Fingerprint, sb.Peer().Name, sb.Peer().Fingerprint)

	// A chat line each way.
	for _, m := range []struct {
		from, to *peer.Session
		text     string
	}{{sa, sb, "hello bob, this is alice over a serial line"}, {sb, sa, "hi alice! loud and clear"}} {
		st, err := m.from.OpenStream(ctx, svcChat, peer.PrioInteractive)
		if err != nil {
			return err
		}
		t0 := time.Now()
		fmt.Fprintln(st, m.text)
		st.CloseWrite()
		in, err := m.to.AcceptStream(ctx)
		if err != nil {
			return err
		}
		buf := new(bytes.Buffer)
		buf.ReadFrom(in)
		in.Close()
		fmt.Fprintf(e.stdout, "chat  %s -> %s: %s  (%v)\n", m.to.Peer().Name, m.from.Peer().Name,
			bytes.TrimSpace(buf.Bytes()), time.Since(t0).Round(time.Millisecond))
	}

	// A file from alice to bob, verified by its hash.
	src := filepath.Join(work, "alice", "demo.bin")
	data := make([]byte, *size)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range data {
		data[i] = byte(r.UintN(256))
	}
	os.MkdirAll(filepath.Dir(src), 0o700)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		return err
	}
	dst := filepath.Join(work, "bob", "inbox")
	rep := newReporter(e.stdout, false, "alice -> bob")
	recvErr := make(chan error, 1)
	go func() {
		st, err := sb.AcceptStream(ctx)
		if err != nil {
			recvErr <- err
			return
		}
		_, err = xfer.Receive(ctx, st, dst, xfer.ReceiveOptions{})
		recvErr <- err
	}()
	st, err := sa.OpenStream(ctx, svcXfer, peer.PrioBulk)
	if err != nil {
		return err
	}
	t0 := time.Now()
	res, err := xfer.Send(ctx, st, []string{src}, xfer.SendOptions{Progress: rep.update})
	rep.finish()
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if err := <-recvErr; err != nil {
		return fmt.Errorf("receive: %w", err)
	}
	d := time.Since(t0)
	got, err := os.ReadFile(filepath.Join(dst, "demo.bin"))
	if err != nil {
		return err
	}
	want := sha256.Sum256(data)
	if sha256.Sum256(got) != want {
		return fmt.Errorf("the received file differs from the one sent")
	}
	line := float64(*baud) / 10
	rate := float64(res.Bytes) / d.Seconds()
	fmt.Fprintf(e.stdout, "file  alice -> bob: %s in %.2fs, %s/s = %.1f%% of the line's %s/s; SHA-256 %x… verified\n",
		human(res.Bytes), d.Seconds(), human(int64(rate)), 100*rate/line, human(int64(line)), want[:8])
	st1 := sa.Stats()
	fec := "none"
	if st1.Correction > 0 {
		fec = fmt.Sprintf("%d parity bytes per 255 (repairs %d)", 2*st1.Correction, st1.Correction)
	}
	fmt.Fprintf(e.stdout, "line  %d packets sent, %d resent, round trip %v, segment %d bytes, rate estimate %s/s, error correction %s\n",
		st1.PacketsSent, st1.Retransmits, st1.SRTT.Round(time.Millisecond), st1.Segment, human(int64(st1.Rate)), fec)
	fmt.Fprintln(e.stdout, "demo OK")
	sa.Close()
	return nil
}
