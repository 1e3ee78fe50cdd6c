package serialnet

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkPty moves frames one way through a pty null-modem (two pty pairs
// joined by a copy goroutine, no pacing): "link" through two Links, and the
// anchor "raw", the same number of bytes written and read straight on the
// pty slaves in the same run. Frames/s is reported as a metric; MB/s counts
// payload bytes.
func BenchmarkPty(b *testing.B) {
	nm := newNullModem(b)
	for _, size := range []int{64, 1024, 4096} {
		p := payload(rand.New(rand.NewPCG(uint64(size), 0)), size)
		b.Run(fmt.Sprintf("raw/%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			done := make(chan error, 1)
			go func() {
				for range b.N {
					if _, err := nm.a.slave.Write(p); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			buf := make([]byte, 64<<10)
			for left := int64(b.N) * int64(size); left > 0; {
				n, err := nm.b.slave.Read(buf[:min(int64(len(buf)), left)])
				if err != nil {
					b.Fatal(err)
				}
				left -= int64(n)
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
		b.Run(fmt.Sprintf("link/%d", size), func(b *testing.B) {
			cfg := Config{MTU: 4096}
			tx := openLink(b, nm.a.path, cfg)
			rx := openLink(b, nm.b.path, cfg)
			buf := make([]byte, rx.MTU())
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			done := make(chan error, 1)
			go func() {
				for range b.N {
					if _, err := tx.WriteTo(p, nil); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for range b.N {
				if _, _, err := rx.ReadFrom(buf); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
			b.StopTimer()
			if st := rx.Stats(); st.Dropped != 0 {
				b.Errorf("%d frames dropped on an unpaced pty", st.Dropped)
			}
			tx.Close()
			rx.Close()
		})
	}
}
