package linktest

import (
	"fmt"
	"testing"
)

// BenchmarkFramePipe streams frames through a perfect pipe; the anchor is a
// plain copy of the same bytes, measured in the same run.
func BenchmarkFramePipe(b *testing.B) {
	for _, size := range []int{64, 1500, 9000} {
		b.Run(fmt.Sprintf("copy/%d", size), func(b *testing.B) {
			src, dst := make([]byte, size), make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				copy(dst, src)
			}
		})
		b.Run(fmt.Sprintf("pipe/%d", size), func(b *testing.B) {
			a, z := NewFramePipe(PipeConfig{MTU: size})
			defer a.Close()
			defer z.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, size)
				for {
					if _, _, err := z.ReadFrom(buf); err != nil {
						return
					}
				}
			}()
			p := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.WriteTo(p, nil); err != nil {
					b.Fatal(err)
				}
			}
			z.Close()
			<-done
		})
	}
}

// BenchmarkBytePipe streams bytes through an unpaced, clean byte pipe.
func BenchmarkBytePipe(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("write%d", size), func(b *testing.B) {
			x, y := NewBytePipe(ByteConfig{})
			defer x.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, 4096)
				for {
					if _, err := y.Read(buf); err != nil {
						return
					}
				}
			}()
			p := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := x.Write(p); err != nil {
					b.Fatal(err)
				}
			}
			y.Close()
			<-done
		})
	}
}
