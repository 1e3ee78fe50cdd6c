package linktest

import (
	"bytes"
	"errors"
	"io"
	"math/bits"
	"math/rand/v2"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/p2plink/p2plink/link"
)

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

// pump writes src into a and reads len(src)-ish bytes from b until the
// reads time out; it returns what arrived and how many reads it took.
func pump(t *testing.T, a, b *ByteEnd, src []byte) ([]byte, int) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := a.Write(src)
		errc <- err
	}()
	var got []byte
	reads := 0
	buf := make([]byte, 512)
	for {
		b.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := b.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal(err)
			}
			break
		}
		reads++
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return got, reads
}

func TestBytePipeSplit(t *testing.T) {
	a, b := NewBytePipe(ByteConfig{Split: 7, Seed: 1})
	defer a.Close()
	defer b.Close()
	src := randomBytes(10000, 1)
	got, reads := pump(t, a, b, src)
	if !bytes.Equal(got, src) {
		t.Fatalf("got %d bytes, want the %d written", len(got), len(src))
	}
	if reads < len(src)/7 {
		t.Fatalf("%d reads for %d bytes: pieces longer than Split", reads, len(src))
	}
	if st := a.Stats(); st.Written != 10000 || st.Read != 10000 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBytePipeBitErrors(t *testing.T) {
	const n, ber = 200_000, 1e-3
	run := func() int {
		a, b := NewBytePipe(ByteConfig{BitErrorRate: ber, Seed: 5, Buffer: n})
		defer a.Close()
		defer b.Close()
		src := randomBytes(n, 2)
		got, _ := pump(t, a, b, src)
		if len(got) != n {
			t.Fatalf("bit errors changed the length: %d bytes", len(got))
		}
		flips := 0
		for i := range got {
			flips += bits.OnesCount8(got[i] ^ src[i])
		}
		if st := a.Stats(); st.BitsFlipped != uint64(flips) {
			t.Fatalf("Stats().BitsFlipped = %d, counted %d", st.BitsFlipped, flips)
		}
		return flips
	}
	flips := run()
	within(t, "bits flipped", flips, 8*n, ber)
	if again := run(); again != flips {
		t.Errorf("same seed flipped %d bits, then %d", flips, again)
	}
}

func TestBytePipeDrops(t *testing.T) {
	const n, rate = 100_000, 0.01
	a, b := NewBytePipe(ByteConfig{DropRate: rate, Seed: 9, Buffer: n})
	defer a.Close()
	defer b.Close()
	got, _ := pump(t, a, b, randomBytes(n, 3))
	within(t, "bytes dropped", n-len(got), n, rate)
	if st := a.Stats(); st.Dropped != uint64(n-len(got)) {
		t.Fatalf("Stats().Dropped = %d, %d bytes missing", st.Dropped, n-len(got))
	}
}

func TestBytePipeBaud(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 9600 baud, 8N1: 960 bytes/s, so 96 bytes take 100 ms.
		a, b := NewBytePipe(ByteConfig{Baud: 9600})
		defer a.Close()
		defer b.Close()
		start := time.Now()
		if _, err := a.Write(make([]byte, 96)); err != nil {
			t.Fatal(err)
		}
		if time.Since(start) != 0 {
			t.Fatal("Write waited for the line although the buffer had room")
		}
		got := 0
		buf := make([]byte, 96)
		for got < 96 {
			n, err := b.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			got += n
			// Never ahead of the line: byte k arrives at (k)*byteTime.
			if need := time.Duration(got) * time.Second / 960; time.Since(start) < need {
				t.Fatalf("%d bytes at %v, the line needs %v", got, time.Since(start), need)
			}
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Fatalf("96 bytes took %v, want 100ms", d)
		}
	})
}

func TestBytePipeBufferBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := NewBytePipe(ByteConfig{Buffer: 4096})
		defer a.Close()
		defer b.Close()
		a.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := a.Write(make([]byte, 5000))
		if n != 4096 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write into a 4096-byte buffer nobody reads: %d, %v", n, err)
		}
		// Reading frees room and lets the writer go on.
		a.SetWriteDeadline(time.Time{})
		done := make(chan error)
		go func() {
			_, err := a.Write(make([]byte, 904))
			done <- err
		}()
		io.ReadFull(b, make([]byte, 1000))
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestBytePipeUnplug(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := NewBytePipe(ByteConfig{Baud: 9600})
		defer a.Close()
		defer b.Close()
		a.Write(make([]byte, 96))
		time.Sleep(50 * time.Millisecond) // 48 bytes arrived
		a.Unplug()
		a.Write([]byte("lost while unplugged"))
		time.Sleep(time.Second)
		b.SetReadDeadline(time.Now().Add(time.Second))
		got, err := io.ReadAll(b)
		if !errors.Is(err, os.ErrDeadlineExceeded) || len(got) != 48 {
			t.Fatalf("read %d bytes (%v), want the 48 that arrived before the cable was pulled", len(got), err)
		}
		a.Replug()
		b.SetReadDeadline(time.Time{})
		a.Write([]byte("hi"))
		buf := make([]byte, 2)
		if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "hi" {
			t.Fatalf("after replug: %q, %v", buf, err)
		}
	})
	a, b := NewBytePipe(ByteConfig{UnplugErrors: true})
	defer a.Close()
	defer b.Close()
	b.Unplug()
	if _, err := a.Write([]byte("x")); !errors.Is(err, link.ErrDisconnected) {
		t.Fatalf("write while unplugged: %v", err)
	}
	if _, err := b.Read(make([]byte, 1)); !errors.Is(err, link.ErrDisconnected) {
		t.Fatalf("read while unplugged: %v", err)
	}
}

func TestBytePipeClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := NewBytePipe(ByteConfig{Buffer: 1})
		errc := make(chan error, 2)
		go func() {
			_, err := a.Read(make([]byte, 1))
			errc <- err
		}()
		go func() {
			_, err := a.Write([]byte("xy"))
			errc <- err
		}()
		synctest.Wait()
		a.Close()
		for range 2 {
			if err := <-errc; !errors.Is(err, net.ErrClosed) {
				t.Fatalf("pending call after Close: %v", err)
			}
		}
		if _, err := a.Read(nil); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after Close: %v", err)
		}
		if _, err := b.Write([]byte("into the void")); err != nil {
			t.Fatalf("write towards a closed end: %v", err)
		}
		a.Close()
		b.Close()
	})
}
