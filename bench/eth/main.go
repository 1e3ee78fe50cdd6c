// Command eth is the Go half of the Ethernet benchmark (bench/eth/run): the
// measurements that need the packages directly, one process per network
// namespace (started with ip netns exec).
//
//	eth recv --if eth0 --name NAME --dir DIR [--cpuprofile F]
//	    accept one session, receive one xfer stream into DIR (peer/xfer),
//	    print the time from the first byte of the stream to the verified file.
//	eth send --if eth0 --to NAME FILE [--cpuprofile F]
//	    find NAME on the segment, connect, send FILE with xfer.Send; print
//	    the goodput of the transfer alone (no start-up, discovery, handshake).
//	eth echo --if eth0 --name NAME
//	    echo every stream of the first session back to the peer.
//	eth ping --if eth0 --to NAME [--n N] [--size N]
//	    a ping-pong of N messages of size bytes over one peer stream.
//	eth tcp-echo --listen ADDR / eth tcp-ping --addr ADDR [--n N] [--size N]
//	    the same ping-pong over TCP, the anchor.
//	eth discover --if eth0 --name NAME --want N [--stay] [--timeout D]
//	    announce as NAME and wait until N other peers are heard; print the
//	    time from the process's start (before opening the link), and both
//	    ends as Unix times to compare across processes. With
//	    --stay, keep announcing until SIGTERM or SIGINT, then print the
//	    link's counters (kernel drops among them).
//	eth raw-recv --if eth0 / eth raw-send --if eth0 --to MAC [--bytes N]
//	    frames alone (ethnet, no peer protocol, no encryption, no files):
//	    N bytes in 1476-byte frames, 32 per system call; each side prints
//	    the CPU time it used.
//	eth costs --file F --dir DIR [--bytes N]
//	    the CPU time of SHA-256, AES-256-GCM sealing and opening, reading F
//	    and writing N bytes to DIR, in this process.
//
// recv and send also print the CPU time the process used during the
// transfer (cpu=, seconds).
//
// Each prints one line starting with "RESULT" that run parses, and details
// before it on standard error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/p2plink/p2plink/ethnet"
	"github.com/p2plink/p2plink/peer"
	"github.com/p2plink/p2plink/peer/xfer"
)

func main() {
	start := time.Now()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: eth recv|send|echo|ping|tcp-echo|tcp-ping|discover [flags]")
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	ifname := fs.String("if", "eth0", "interface")
	name := fs.String("name", "", "our name on the segment")
	to := fs.String("to", "", "the peer's name")
	dir := fs.String("dir", ".", "receive directory")
	n := fs.Int("n", 2000, "ping-pong rounds")
	size := fs.Int("size", 32, "ping-pong message size")
	addr := fs.String("addr", "", "tcp-ping: address to dial")
	listen := fs.String("listen", "", "tcp-echo: address to listen on")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run here")
	timeout := fs.Duration("timeout", 120*time.Second, "give up after this long (discover: on discovery)")
	want := fs.Int("want", 1, "discover: how many other peers to wait for")
	stay := fs.Bool("stay", false, "discover: keep announcing until SIGTERM, then print the counters")
	nbytes := fs.Int64("bytes", 256<<20, "raw-send, costs: how many bytes")
	file := fs.String("file", "", "costs: the file to read")
	fs.Parse(args)
	sig := ctx
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	var err error
	switch cmd {
	case "recv":
		err = recv(ctx, *ifname, *name, *dir)
	case "send":
		err = send(ctx, *ifname, *to, fs.Args())
	case "echo":
		err = echo(ctx, *ifname, *name)
	case "ping":
		err = ping(ctx, *ifname, *to, *n, *size)
	case "tcp-echo":
		err = tcpEcho(ctx, *listen)
	case "tcp-ping":
		err = tcpPing(ctx, *addr, *n, *size)
	case "raw-send":
		err = rawSend(*ifname, *to, *nbytes, segment)
	case "raw-recv":
		err = rawRecv(ctx, *ifname)
	case "costs":
		err = costs(*file, *dir, *nbytes)
	case "discover":
		err = discover(ctx, sig, start, *ifname, *name, *want, *stay)
	default:
		err = fmt.Errorf("unknown measurement %q", cmd)
	}
	if err != nil {
		pprof.StopCPUProfile()
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "eth:", err)
	os.Exit(1)
}

// endpoint opens the interface and starts a peer endpoint with a throwaway
// identity.
func endpoint(ifname, name string) (*peer.Endpoint, *ethnet.Link, error) {
	l, err := ethnet.Open(ifname, ethnet.Config{})
	if err != nil {
		return nil, nil, err
	}
	id, err := peer.NewIdentity()
	if err != nil {
		l.Close()
		return nil, nil, err
	}
	if name == "" {
		name = "bench-" + ifname
	}
	ep, err := peer.NewEndpoint(l, peer.Config{Identity: id, Name: name})
	if err != nil {
		l.Close()
		return nil, nil, err
	}
	return ep, l, nil
}

func dial(ctx context.Context, ep *peer.Endpoint, to string) (*peer.Session, error) {
	nb, err := ep.FindNeighbor(ctx, to)
	if err != nil {
		return nil, err
	}
	return ep.ConnectNeighbor(ctx, nb)
}

func counters(l *ethnet.Link, s *peer.Session) string {
	c := l.Counters()
	st := s.Stats()
	return fmt.Sprintf("frames in %d out %d, kernel drops %d, tx lost %d; packets sent %d recv %d, retransmits %d, rejected %d, segment %d, srtt %v, minrtt %v, cwnd %d, rate %.0f B/s, cipher %s",
		c.FramesIn, c.FramesOut, c.KernelDrops, c.Lost, st.PacketsSent, st.PacketsRecv, st.Retransmits, st.Rejected, st.Segment, st.SRTT, st.MinRTT, st.Cwnd, st.Rate, st.Cipher)
}

// linkCounters is the link's half of counters, for a process without a
// session.
func linkCounters(l *ethnet.Link) string {
	c := l.Counters()
	return fmt.Sprintf("frames in %d out %d, kernel drops %d of %d queued, tx lost %d, dropped %d, read buffer %d",
		c.FramesIn, c.FramesOut, c.KernelDrops, c.KernelFrames, c.Lost, c.Dropped, c.ReadBuffer)
}

// discover waits until want other peers are heard (or ctx ends) and prints
// the time since start. With stay it then keeps the endpoint, announcing,
// until sig ends, and prints the link's counters.
func discover(ctx, sig context.Context, start time.Time, ifname, name string, want int, stay bool) error {
	ep, l, err := endpoint(ifname, name)
	if err != nil {
		return err
	}
	defer ep.Close()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		nbs := ep.Neighbors()
		if len(nbs) >= want {
			el := time.Since(start)
			fmt.Fprintf(os.Stderr, "discover: %s knows %s\n", name, names(nbs))
			fmt.Printf("RESULT discover name=%s secs=%.3f peers=%d start=%.6f end=%.6f\n", name, el.Seconds(), len(nbs), unix(start), unix(start.Add(el)))
			break
		}
		select {
		case <-ctx.Done():
			if sig.Err() != nil {
				return sig.Err()
			}
			return fmt.Errorf("discover: %s heard %d of %d peers in %v (%s): are they up, on this segment, with the same EtherType?",
				name, len(nbs), want, time.Since(start).Round(time.Millisecond), names(nbs))
		case <-tick.C:
		}
	}
	if !stay {
		return nil
	}
	<-sig.Done()
	c := l.Counters()
	fmt.Fprintln(os.Stderr, "discover:", name, linkCounters(l))
	fmt.Printf("RESULT counters name=%s kerneldrops=%d kernelframes=%d framesin=%d framesout=%d peers=%d\n",
		name, c.KernelDrops, c.KernelFrames, c.FramesIn, c.FramesOut, len(ep.Neighbors()))
	return nil
}

// unix is t in seconds since 1970, for comparing times across processes.
func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func names(nbs []peer.Neighbor) string {
	if len(nbs) == 0 {
		return "nobody"
	}
	var s []string
	for _, nb := range nbs {
		s = append(s, nb.Name)
	}
	return strings.Join(s, " ")
}

func recv(ctx context.Context, ifname, name, dir string) error {
	ep, l, err := endpoint(ifname, name)
	if err != nil {
		return err
	}
	defer ep.Close()
	s, err := ep.Accept(ctx)
	if err != nil {
		return err
	}
	st, err := s.AcceptStream(ctx)
	if err != nil {
		return err
	}
	start, c0 := time.Now(), cpuTime()
	res, err := xfer.Receive(ctx, st, dir, xfer.ReceiveOptions{Overwrite: true})
	el, cpu := time.Since(start), cpuTime()-c0
	fmt.Fprintln(os.Stderr, "recv:", counters(l, s))
	if err != nil {
		return err
	}
	// The sender closes the session once it has read our results; closing
	// it from here could overtake them.
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
	}
	fmt.Printf("RESULT recv bytes=%d secs=%.3f MBps=%.1f kerneldrops=%d cpu=%.3f hash=%s\n", res.Bytes, el.Seconds(), float64(res.Bytes)/el.Seconds()/1e6, l.Counters().KernelDrops, cpu.Seconds(), res.Hash)
	return nil
}

func send(ctx context.Context, ifname, to string, files []string) error {
	if len(files) == 0 {
		return errors.New("send: name the file")
	}
	ep, l, err := endpoint(ifname, "")
	if err != nil {
		return err
	}
	defer ep.Close()
	s, err := dial(ctx, ep, to)
	if err != nil {
		return err
	}
	start, c0 := time.Now(), cpuTime()
	st, err := s.OpenStream(ctx, "xfer", peer.PrioBulk)
	if err != nil {
		return err
	}
	res, err := xfer.Send(ctx, st, files, xfer.SendOptions{})
	el, cpu := time.Since(start), cpuTime()-c0
	fmt.Fprintln(os.Stderr, "send:", counters(l, s))
	if err != nil {
		return err
	}
	s.Close()
	fmt.Printf("RESULT send bytes=%d secs=%.3f MBps=%.1f kerneldrops=%d cpu=%.3f hash=%s\n", res.Bytes, el.Seconds(), float64(res.Bytes)/el.Seconds()/1e6, l.Counters().KernelDrops, cpu.Seconds(), res.Hash)
	return nil
}

func echo(ctx context.Context, ifname, name string) error {
	ep, _, err := endpoint(ifname, name)
	if err != nil {
		return err
	}
	defer ep.Close()
	s, err := ep.Accept(ctx)
	if err != nil {
		return err
	}
	for {
		st, err := s.AcceptStream(ctx)
		if err != nil {
			if errors.Is(err, peer.ErrPeerClosed) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		go func() {
			io.Copy(st, st)
			st.Close()
		}()
	}
}

func ping(ctx context.Context, ifname, to string, n, size int) error {
	ep, _, err := endpoint(ifname, "")
	if err != nil {
		return err
	}
	defer ep.Close()
	s, err := dial(ctx, ep, to)
	if err != nil {
		return err
	}
	st, err := s.OpenStream(ctx, "echo", peer.PrioInteractive)
	if err != nil {
		return err
	}
	before := s.Stats()
	rtts, err := pingPong(st, n, size)
	after := s.Stats()
	st.Close()
	s.Close()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "ping: %d rounds: %d packets sent, %d received (acks included), %d retransmits\n",
		len(rtts)+len(rtts)/10, after.PacketsSent-before.PacketsSent, after.PacketsRecv-before.PacketsRecv, after.Retransmits-before.Retransmits)
	report("p2plink", rtts)
	return nil
}

func tcpEcho(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	io.Copy(c, c)
	return nil
}

func tcpPing(ctx context.Context, addr string, n, size int) error {
	var d net.Dialer
	var c net.Conn
	var err error
	for range 100 { // the echo server may still be starting
		if c, err = d.DialContext(ctx, "tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	rtts, err := pingPong(c, n, size)
	if err != nil {
		return err
	}
	report("tcp", rtts)
	return nil
}

// pingPong writes size bytes, waits for them to come back, n times (after
// n/10 rounds of warm-up), and returns the round trips.
func pingPong(rw io.ReadWriter, n, size int) ([]time.Duration, error) {
	msg := make([]byte, size)
	back := make([]byte, size)
	warm := n / 10
	rtts := make([]time.Duration, 0, n)
	for i := range n + warm {
		msg[0] = byte(i)
		t := time.Now()
		if _, err := rw.Write(msg); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(rw, back); err != nil {
			return nil, err
		}
		if back[0] != msg[0] {
			return nil, fmt.Errorf("round %d: got message %d back", i, back[0])
		}
		if i >= warm {
			rtts = append(rtts, time.Since(t))
		}
	}
	return rtts, nil
}

func report(what string, rtts []time.Duration) {
	slices.Sort(rtts)
	med := rtts[len(rtts)/2]
	p99 := rtts[len(rtts)*99/100]
	fmt.Printf("RESULT ping %s n=%d median_us=%.1f p99_us=%.1f\n", what, len(rtts), us(med), us(p99))
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }
