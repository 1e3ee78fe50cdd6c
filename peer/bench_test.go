package peer

import (
	"context"
	"io"
	"testing"

	"github.com/p2plink/p2plink/link/linktest"
)

// BenchmarkStream measures goodput of one stream over an in-memory frame
// pipe, encryption and reliability included. BenchmarkPipeAnchor moves the
// same frames through the same pipe with no protocol: the ratio is the
// protocol's cost.
func BenchmarkStream(b *testing.B) {
	for _, mtu := range []int{1500, 9000} {
		b.Run(itoa(mtu), func(b *testing.B) {
			p := connect(b, linktest.PipeConfig{MTU: mtu, QueueLen: 256}, testConfig(b, "a"), testConfig(b, "b"))
			defer p.close()
			ctx := context.Background()
			buf := make([]byte, 256<<10)
			total := int64(b.N) * int64(len(buf))
			done := make(chan struct{})
			go func() {
				defer close(done)
				st, err := p.sb.AcceptStream(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				n, _ := io.Copy(io.Discard, st)
				if n != total {
					b.Errorf("received %d of %d bytes", n, total)
				}
			}()
			st, _ := p.sa.OpenStream(ctx, "bench", PrioBulk)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				st.Write(buf)
			}
			st.CloseWrite()
			<-done
		})
	}
}

func BenchmarkPipeAnchor(b *testing.B) {
	for _, mtu := range []int{1500, 9000} {
		b.Run(itoa(mtu), func(b *testing.B) {
			x, y := linktest.NewFramePipe(linktest.PipeConfig{MTU: mtu, QueueLen: 256})
			defer x.Close()
			defer y.Close()
			frame := make([]byte, mtu)
			per := 256 << 10
			frames := (per + mtu - 1) / mtu
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, mtu)
				for i := 0; i < b.N*frames; i++ {
					if _, _, err := y.ReadFrom(buf); err != nil {
						return
					}
				}
			}()
			b.SetBytes(int64(per))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N*frames; i++ {
				x.WriteTo(frame, nil)
			}
			<-done
		})
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// BenchmarkPingPong measures the round trip of a 32-byte message over one
// interactive stream and back, through the in-memory frame pipe; one op is
// one round trip. BenchmarkPingPongAnchor bounces a 32-byte frame over the
// same pipe with no protocol: the ratio is what the session adds (hand-offs
// between goroutines, encryption, acks).
func BenchmarkPingPong(b *testing.B) {
	p := connect(b, linktest.PipeConfig{}, testConfig(b, "a"), testConfig(b, "b"))
	defer p.close()
	ctx := context.Background()
	go func() {
		st, err := p.sb.AcceptStream(ctx)
		if err != nil {
			return
		}
		buf := make([]byte, 32)
		for {
			if _, err := io.ReadFull(st, buf); err != nil {
				return
			}
			if _, err := st.Write(buf); err != nil {
				return
			}
		}
	}()
	st, err := p.sa.OpenStream(ctx, "ping", PrioInteractive)
	if err != nil {
		b.Fatal(err)
	}
	msg, buf := make([]byte, 32), make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(st, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPingPongAnchor(b *testing.B) {
	x, y := linktest.NewFramePipe(linktest.PipeConfig{})
	defer x.Close()
	defer y.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := y.ReadFrom(buf)
			if err != nil {
				return
			}
			if _, err := y.WriteTo(buf[:n], nil); err != nil {
				return
			}
		}
	}()
	msg, buf := make([]byte, 32), make([]byte, 1500)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.WriteTo(msg, nil); err != nil {
			b.Fatal(err)
		}
		if _, _, err := x.ReadFrom(buf); err != nil {
			b.Fatal(err)
		}
	}
}
