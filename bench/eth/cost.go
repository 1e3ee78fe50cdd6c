package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/mdlayher/packet"
	"github.com/zeebo/blake3"

	"github.com/p2plink/p2plink/ethnet"
)

// segment is a full packet's payload at MTU 1500, as the peer protocol
// fills it (bench/eth/run prints "segment 1476").
const segment = 1476

// endMark is the size of the frame that ends a raw run.
const endMark = 1

// rawSend sends size bytes as frames of seg bytes to the MAC address to,
// 32 per system call as the peer protocol does (WriteBatch), then a few
// end marks, and prints the CPU time the sending took.
func rawSend(ifname, to string, size int64, seg int) error {
	l, err := ethnet.Open(ifname, ethnet.Config{})
	if err != nil {
		return err
	}
	defer l.Close()
	mac, err := net.ParseMAC(to)
	if err != nil {
		return err
	}
	addr := &packet.Addr{HardwareAddr: mac}
	bufs := make([][]byte, 32)
	for i := range bufs {
		bufs[i] = make([]byte, seg)
		rand.Read(bufs[i])
	}
	frames := int(size / int64(seg))
	c0, t0 := cpuTime(), time.Now()
	for sent := 0; sent < frames; {
		n := min(len(bufs), frames-sent)
		if _, err := l.WriteBatch(bufs[:n], addr); err != nil {
			return err
		}
		sent += n
	}
	cpu, el := cpuTime()-c0, time.Since(t0)
	for range 20 {
		l.WriteTo(make([]byte, endMark), addr)
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Printf("RESULT raw-send frames=%d cpu=%.3f secs=%.3f MBps=%.1f lost=%d\n", frames, cpu.Seconds(), el.Seconds(),
		float64(frames*seg)/el.Seconds()/1e6, l.Counters().Lost)
	return nil
}

// rawRecv receives frames until an end mark and prints the CPU time from
// the first frame on, with the frames and the kernel's drops. Its reads
// do not spin (ethnet.Config.NoSpin): the CPU time is then the kernel's
// work for the frames, not time spent looking for the next one.
func rawRecv(ctx context.Context, ifname string) error {
	l, err := ethnet.Open(ifname, ethnet.Config{NoSpin: true})
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Fprintln(os.Stderr, "raw-recv: listening on", l.LocalAddr())
	go func() { <-ctx.Done(); l.Close() }()
	buf := make([]byte, l.MTU())
	var frames int
	var bytes int64
	var c0 time.Duration
	var t0 time.Time
	for {
		n, _, err := l.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("raw-recv after %d frames: %w", frames, err)
		}
		if n == endMark {
			break
		}
		if frames == 0 {
			c0, t0 = cpuTime(), time.Now()
		}
		frames++
		bytes += int64(n)
	}
	cpu, el := cpuTime()-c0, time.Since(t0)
	fmt.Printf("RESULT raw-recv frames=%d bytes=%d cpu=%.3f secs=%.3f kerneldrops=%d\n", frames, bytes, cpu.Seconds(), el.Seconds(), l.Counters().KernelDrops)
	return nil
}

// measureAfter returns the least CPU time f took in three runs, each
// after setup (not timed) when setup is not nil.
func measureAfter(setup, f func() error) (float64, error) {
	best := time.Duration(1<<63 - 1)
	for range 3 {
		if setup != nil {
			if err := setup(); err != nil {
				return 0, err
			}
		}
		c0 := cpuTime()
		if err := f(); err != nil {
			return 0, err
		}
		best = min(best, cpuTime()-c0)
	}
	return best.Seconds(), nil
}

// costs measures, in this process, the CPU time of the work a verified,
// encrypted transfer of size bytes cannot avoid besides moving frames:
// SHA-256 and BLAKE3 over 64 KiB chunks (each side hashes every byte once
// with the one the two sides agree on),
// AES-256-GCM sealing and opening segment-sized packets, reading file
// from the page cache, and writing as many bytes to a new file in dir.
// Each is the best of three runs.
func costs(file, dir string, size int64) error {
	// Each is the best of three: the floor, not the machine's hiccups (a
	// write's first touch of fresh memory can cost ten times more).
	measure := func(f func() error) (float64, error) { return measureAfter(nil, f) }
	chunk := make([]byte, 64<<10)
	rand.Read(chunk)
	sha, _ := measure(func() error {
		for range size / int64(len(chunk)) {
			sha256.Sum256(chunk)
		}
		return nil
	})
	b3, _ := measure(func() error {
		for range size / int64(len(chunk)) {
			blake3.Sum256(chunk)
		}
		return nil
	})
	blk, err := aes.NewCipher(make([]byte, 32))
	if err != nil {
		return err
	}
	gcm, err := cipher.NewGCM(blk)
	if err != nil {
		return err
	}
	pkt := make([]byte, segment+gcm.Overhead())
	nonce := make([]byte, gcm.NonceSize())
	packets := int(size / segment)
	seal, _ := measure(func() error {
		for i := range packets {
			nonce[0] = byte(i)
			gcm.Seal(pkt[:0], nonce, pkt[:segment], nil)
		}
		return nil
	})
	ct := gcm.Seal(nil, nonce, pkt[:segment], nil)
	open, err := measure(func() error {
		for range packets {
			if _, err := gcm.Open(pkt[:0], nonce, ct, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	read, err := measure(func() error {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		for {
			if _, err := f.Read(chunk); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return err
			}
		}
	})
	if err != nil {
		return err
	}
	out := filepath.Join(dir, "cost-write.tmp")
	var f *os.File
	write, err := measureAfter(func() error {
		// Untimed: removing the last run's file frees its page cache.
		os.Remove(out)
		var err error
		f, err = os.Create(out)
		return err
	}, func() error {
		defer f.Close()
		for range size / int64(len(chunk)) {
			if _, err := f.Write(chunk); err != nil {
				return err
			}
		}
		return nil
	})
	os.Remove(out)
	if err != nil {
		return err
	}
	fmt.Printf("RESULT costs sha256=%.3f blake3=%.3f seal=%.3f open=%.3f read=%.3f write=%.3f\n", sha, b3, seal, open, read, write)
	return nil
}
