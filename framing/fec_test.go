package framing

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

func encodeFEC(t testing.TB, typ Type, p []byte, corr int) []byte {
	t.Helper()
	dst := make([]byte, EncodedLenFEC(len(p), corr))
	n, err := EncodeFEC(dst, typ, p, corr)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.IndexByte(dst[:n-1], 0) >= 0 || dst[n-1] != 0 {
		t.Fatalf("protected frame: delimiter misplaced")
	}
	return dst[:n]
}

// uncobs undoes COBS plainly (the frame without its delimiter), so tests can
// damage the body itself.
func uncobs(t testing.TB, enc []byte) []byte {
	t.Helper()
	var out []byte
	for i := 0; i < len(enc); {
		code := int(enc[i])
		if code == 0 || i+code > len(enc) {
			t.Fatalf("bad COBS at %d", i)
		}
		out = append(out, enc[i+1:i+code]...)
		i += code
		if code != 0xFF && i < len(enc) {
			out = append(out, 0)
		}
	}
	return out
}

func TestProtectedRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, corr := range []int{1, 2, 3, 8, MaxCorrection} {
		k := FECBlock - 2*corr
		for _, n := range []int{0, 1, 100, k - 8, k - 7, k - 6, k, 1000, 2900, 65535} {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(r.Uint32())
			}
			wire := encodeFEC(t, 1, p, corr)
			if len(wire) > EncodedLenFEC(n, corr) {
				t.Fatalf("corr %d n %d: %d bytes, more than EncodedLenFEC %d", corr, n, len(wire), EncodedLenFEC(n, corr))
			}
			d := NewDecoder(65535)
			used, f, ok, err := d.Next(wire)
			if !ok || err != nil || used != len(wire) {
				t.Fatalf("corr %d n %d: ok %v err %v", corr, n, ok, err)
			}
			if !bytes.Equal(f.Payload, p) || f.Type != 1 || f.Corrected != 0 || f.Correction != corr {
				t.Fatalf("corr %d n %d: got %d bytes type %d corrected %d correction %d",
					corr, n, len(f.Payload), f.Type, f.Corrected, f.Correction)
			}
		}
	}
}

// TestProtectedRepairsDamage flips up to corr bytes in every block of the
// body (the bytes a noisy line changes: COBS code bytes and the delimiter are
// rare among them and not covered): the payload must come out exact, with
// the repaired bytes counted. One more damaged byte in one block must drop
// the frame, never deliver a wrong one.
func TestProtectedRepairsDamage(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 300; trial++ {
		corr := 1 + r.IntN(6)
		n := 1 + r.IntN(3000)
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		wire := encodeFEC(t, 1, p, corr)
		body := uncobs(t, wire[:len(wire)-1])
		extra := trial%3 == 0 // one block gets corr+1 damaged bytes
		want := 0
		for start := 1; start < len(body); start += FECBlock {
			end := min(start+FECBlock, len(body))
			hits := r.IntN(corr + 1)
			if extra && start == 1 {
				hits = corr + 1
			}
			for _, i := range r.Perm(end - start)[:min(hits, end-start)] {
				body[start+i] ^= byte(1 + r.IntN(255))
				want++
			}
		}
		d := NewDecoder(65535)
		_, f, ok, err := d.Next(append(cobs(body), 0))
		if extra {
			if ok {
				t.Fatalf("trial %d: a frame with %d damaged bytes in a block of correction %d was delivered", trial, corr+1, corr)
			}
			// Beyond its capacity a Reed-Solomon block is either found
			// uncorrectable or "repaired" into another codeword, which the
			// CRC then catches.
			if !errors.Is(err, ErrUncorrectable) && !errors.Is(err, ErrCheck) {
				t.Fatalf("trial %d: dropped with %v, want ErrUncorrectable or ErrCheck", trial, err)
			}
			if errors.Is(err, ErrUncorrectable) && d.LastCorrection() != corr {
				t.Fatalf("trial %d: LastCorrection %d, want %d", trial, d.LastCorrection(), corr)
			}
			continue
		}
		if !ok || err != nil {
			t.Fatalf("trial %d (corr %d, %d bytes, %d damaged): %v", trial, corr, n, want, err)
		}
		if !bytes.Equal(f.Payload, p) || f.Corrected != want {
			t.Fatalf("trial %d: payload equal %v, corrected %d, want %d", trial, bytes.Equal(f.Payload, p), f.Corrected, want)
		}
	}
}

// TestPlainDamageKinds: a changed byte in a plain frame is ErrCheck (the
// line flips bits), a lost byte is ErrMalformed — receivers tell noise that
// error correction can repair from noise it cannot.
func TestPlainDamageKinds(t *testing.T) {
	p := bytes.Repeat([]byte{0x5a, 0x11, 0x42}, 300)
	wire := encode(t, 1, p)
	body := uncobs(t, wire[:len(wire)-1])
	flipped := bytes.Clone(body)
	flipped[500] ^= 0x10
	d := NewDecoder(4096)
	if _, _, _, err := d.Next(append(cobs(flipped), 0)); !errors.Is(err, ErrCheck) {
		t.Fatalf("flipped byte: %v, want ErrCheck", err)
	}
	lost := append(bytes.Clone(body[:500]), body[501:]...)
	if _, _, _, err := d.Next(append(cobs(lost), 0)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("lost byte: %v, want ErrMalformed", err)
	}
}

func TestProtectedNoAllocs(t *testing.T) {
	p := make([]byte, 2900)
	for i := range p {
		p[i] = byte(i * 7)
	}
	dst := make([]byte, EncodedLenFEC(len(p), 2))
	d := NewDecoder(4096)
	allocs := testing.AllocsPerRun(100, func() {
		n, err := EncodeFEC(dst, 1, p, 2)
		if err != nil {
			t.Fatal(err)
		}
		dst[100] ^= 1 // one damaged byte to repair (dst[100] is not a COBS code byte here: no zero in p up to it)
		_, f, ok, err := d.Next(dst[:n])
		if !ok || err != nil || f.Corrected != 1 {
			t.Fatal("decode failed", err, f.Corrected)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per protected frame, want 0", allocs)
	}
}

func TestEncodeFECErrors(t *testing.T) {
	dst := make([]byte, 100)
	if _, err := EncodeFEC(dst, 1, make([]byte, 10), MaxCorrection+1); err == nil {
		t.Fatal("correction 17 accepted")
	}
	if _, err := EncodeFEC(dst, 1, make([]byte, 100), 2); !errors.Is(err, ErrShortDst) {
		t.Fatalf("short dst: %v", err)
	}
}

func BenchmarkEncodeFEC(b *testing.B) {
	for _, corr := range []int{1, 4} {
		b.Run(itoa(corr), func(b *testing.B) {
			p := benchPayload(2900)
			dst := make([]byte, EncodedLenFEC(len(p), corr))
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := EncodeFEC(dst, 1, p, corr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeFEC(b *testing.B) {
	for _, corr := range []int{1, 4} {
		b.Run(itoa(corr), func(b *testing.B) {
			p := benchPayload(2900)
			dst := make([]byte, EncodedLenFEC(len(p), corr))
			n, _ := EncodeFEC(dst, 1, p, corr)
			d := NewDecoder(4096)
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok, _ := d.Next(dst[:n]); !ok {
					b.Fatal("decode failed")
				}
			}
		})
	}
}
