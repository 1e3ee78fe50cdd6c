package framing

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

func encode(t testing.TB, typ Type, p []byte) []byte {
	t.Helper()
	dst := make([]byte, EncodedLen(len(p)))
	n, err := Encode(dst, typ, p)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.IndexByte(dst[:n-1], 0) >= 0 {
		t.Fatalf("encoded frame holds a delimiter before its end")
	}
	if dst[n-1] != 0 {
		t.Fatalf("encoded frame does not end with the delimiter")
	}
	return dst[:n]
}

// decodeAll feeds the stream in chunks of the given size and collects frames
// and errors.
func decodeAll(d *Decoder, stream []byte, chunk int) (frames [][]byte, types []Type, errs []error) {
	for len(stream) > 0 {
		c := min(chunk, len(stream))
		in := stream[:c]
		for len(in) > 0 {
			n, f, ok, err := d.Next(in)
			in = in[n:]
			if ok {
				frames = append(frames, bytes.Clone(f.Payload))
				types = append(types, f.Type)
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
		stream = stream[c:]
	}
	return
}

func payloads(r *rand.Rand) [][]byte {
	var ps [][]byte
	for _, n := range []int{0, 1, 2, 250, 251, 252, 253, 254, 255, 256, 507, 508, 509, 1000, 4096, 65535} {
		for _, fill := range []string{"rand", "zero", "ff"} {
			p := make([]byte, n)
			switch fill {
			case "rand":
				for i := range p {
					p[i] = byte(r.UintN(256))
				}
			case "ff":
				for i := range p {
					p[i] = 0xFF
				}
			}
			ps = append(ps, p)
		}
	}
	return ps
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ps := payloads(r)
	var stream []byte
	for i, p := range ps {
		stream = append(stream, encode(t, Type(i%32), p)...)
	}
	for _, chunk := range []int{1, 3, 64, 4096, len(stream)} {
		d := NewDecoder(MaxPayload)
		got, types, errs := decodeAll(d, stream, chunk)
		if len(errs) != 0 {
			t.Fatalf("chunk %d: errors %v", chunk, errs)
		}
		if len(got) != len(ps) {
			t.Fatalf("chunk %d: got %d frames, want %d", chunk, len(got), len(ps))
		}
		for i := range ps {
			if !bytes.Equal(got[i], ps[i]) || types[i] != Type(i%32) {
				t.Fatalf("chunk %d: frame %d (len %d) differs", chunk, i, len(ps[i]))
			}
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	if _, err := Encode(make([]byte, 10), 0, make([]byte, 100)); !errors.Is(err, ErrShortDst) {
		t.Errorf("short dst: %v", err)
	}
	if _, err := Encode(make([]byte, EncodedLen(MaxPayload+1)), 0, make([]byte, MaxPayload+1)); !errors.Is(err, ErrTooLong) {
		t.Errorf("long payload: %v", err)
	}
	if _, err := Encode(make([]byte, 100), 32, nil); !errors.Is(err, ErrBadType) {
		t.Errorf("bad type: %v", err)
	}
}

// Garbage between and inside frames costs at most the frames it lands in.
func TestResyncAfterGarbage(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	good := []byte("hello, frame")
	var stream []byte
	stream = append(stream, 0x13, 0x37, 0xFF, 0x02, 0) // noise, then the sender's lone delimiter
	stream = append(stream, encode(t, 1, good)...)
	junk := make([]byte, 300)
	for i := range junk {
		junk[i] = byte(r.UintN(256))
	}
	stream = append(stream, junk...)
	stream = append(stream, 0) // sender's lone delimiter after idle
	stream = append(stream, encode(t, 2, good)...)
	d := NewDecoder(1024)
	got, types, _ := decodeAll(d, stream, 7)
	if len(got) != 2 || types[0] != 1 || types[1] != 2 || !bytes.Equal(got[1], good) {
		t.Fatalf("got %d frames %v, want both good frames", len(got), types)
	}
}

func TestDamageIsDetected(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	p := make([]byte, 1000)
	for i := range p {
		p[i] = byte(r.UintN(256))
	}
	next := encode(t, 3, []byte("next"))
	for trial := 0; trial < 2000; trial++ {
		f := encode(t, 3, p)
		switch trial % 3 {
		case 0: // one bit flipped (not in the delimiter that ends it)
			i := r.IntN(len(f) - 1)
			f[i] ^= 1 << r.UintN(8)
		case 1: // one byte dropped
			i := r.IntN(len(f) - 1)
			f = append(f[:i:i], f[i+1:]...)
		case 2: // a burst of noise overwrites bytes
			i := r.IntN(len(f) - 9)
			for j := 0; j < 8; j++ {
				f[i+j] = byte(r.UintN(256))
			}
		}
		d := NewDecoder(2048)
		got, _, _ := decodeAll(d, append(f, next...), 100)
		for _, g := range got {
			if len(g) == len(p) && !bytes.Equal(g, p) {
				t.Fatalf("trial %d: a damaged frame was delivered", trial)
			}
		}
		if len(got) == 0 || !bytes.Equal(got[len(got)-1], []byte("next")) {
			t.Fatalf("trial %d: the frame after the damage was lost", trial)
		}
	}
}

func TestTooLongIsDropped(t *testing.T) {
	d := NewDecoder(100)
	stream := append(encode(t, 1, make([]byte, 500)), encode(t, 1, []byte("ok"))...)
	got, _, errs := decodeAll(d, stream, 64)
	if len(errs) != 1 || !errors.Is(errs[0], ErrTooLong) {
		t.Fatalf("errors %v, want one ErrTooLong", errs)
	}
	if len(got) != 1 || string(got[0]) != "ok" {
		t.Fatalf("frame after the long one not delivered: %q", got)
	}
}

func TestOtherVersionIsRefused(t *testing.T) {
	f := encode(t, 1, []byte("x"))
	// Re-encode by hand with version 2: build body, fix the check.
	body := []byte{2<<5 | 1, 0, 1, 'x'}
	var chk [4]byte
	c := crcOf(body)
	chk[0], chk[1], chk[2], chk[3] = byte(c), byte(c>>8), byte(c>>16), byte(c>>24)
	body = append(body, chk[:]...)
	wire := cobs(body)
	d := NewDecoder(100)
	_, _, errs := decodeAll(d, append(wire, f...), 100)
	if len(errs) != 1 || !errors.Is(errs[0], ErrVersion) {
		t.Fatalf("errors %v, want ErrVersion", errs)
	}
}

func TestNoAllocs(t *testing.T) {
	p := make([]byte, 1024)
	for i := range p {
		p[i] = byte(i)
	}
	dst := make([]byte, EncodedLen(len(p)))
	d := NewDecoder(4096)
	allocs := testing.AllocsPerRun(100, func() {
		n, err := Encode(dst, 4, p)
		if err != nil {
			t.Fatal(err)
		}
		_, f, ok, err := d.Next(dst[:n])
		if !ok || err != nil || len(f.Payload) != len(p) {
			t.Fatal("decode failed", err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per frame, want 0", allocs)
	}
}

// reference COBS encoder, written plainly, to cross-check.
func cobs(body []byte) []byte {
	out := []byte{0}
	code, ci := byte(1), 0
	for _, b := range body {
		if b == 0 {
			out[ci] = code
			ci = len(out)
			out = append(out, 0)
			code = 1
			continue
		}
		out = append(out, b)
		code++
		if code == 0xFF {
			out[ci] = code
			ci = len(out)
			out = append(out, 0)
			code = 1
		}
	}
	out[ci] = code
	return append(out, 0)
}

func crcOf(b []byte) uint32 {
	return crc32Checksum(b)
}

func TestMatchesReferenceCOBS(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, p := range payloads(r) {
		got := encode(t, 5, p)
		body := append([]byte{Version<<5 | 5, byte(len(p) >> 8), byte(len(p))}, p...)
		c := crcOf(body)
		body = append(body, byte(c), byte(c>>8), byte(c>>16), byte(c>>24))
		if want := cobs(body); !bytes.Equal(got, want) {
			t.Fatalf("len %d: encoding differs from the reference", len(p))
		}
	}
}

func FuzzDecoder(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 0})
	dst := make([]byte, EncodedLen(40))
	n, _ := Encode(dst, 7, []byte("a frame that is fine and has a \x00 zero"))
	f.Add(dst[:n])
	pdst := make([]byte, EncodedLenFEC(300, 2))
	n, _ = EncodeFEC(pdst, 1, bytes.Repeat([]byte("protected\x00"), 30), 2)
	f.Add(pdst[:n])
	pdst[40] ^= 0x22 // one damaged byte to repair
	f.Add(pdst[:n])
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(512)
		for len(in) > 0 {
			c, fr, ok, err := d.Next(in)
			if c <= 0 {
				t.Fatalf("Next consumed %d bytes of %d", c, len(in))
			}
			if ok {
				if err != nil || len(fr.Payload) > 512 {
					t.Fatalf("good frame with err %v, len %d", err, len(fr.Payload))
				}
				// A delivered frame re-encodes to exactly the bytes consumed
				// (after any skipped lone delimiters), unless it was repaired.
				re := make([]byte, EncodedLenFEC(len(fr.Payload), fr.Correction))
				m, err := EncodeFEC(re, fr.Type, fr.Payload, fr.Correction)
				if err != nil {
					t.Fatal(err)
				}
				if (fr.Corrected == 0) != bytes.HasSuffix(in[:c], re[:m]) {
					t.Fatalf("delivered frame (%d bytes repaired) is not what was on the wire", fr.Corrected)
				}
			}
			in = in[c:]
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello"), uint8(3))
	f.Add(make([]byte, 600), uint8(0))
	f.Fuzz(func(t *testing.T, p []byte, typ uint8) {
		if len(p) > 4096 {
			p = p[:4096]
		}
		typ &= MaxType
		dst := make([]byte, EncodedLen(len(p)))
		n, err := Encode(dst, Type(typ), p)
		if err != nil {
			t.Fatal(err)
		}
		d := NewDecoder(4096)
		c, fr, ok, err := d.Next(dst[:n])
		if !ok || err != nil || c != n || fr.Type != Type(typ) || !bytes.Equal(fr.Payload, p) {
			t.Fatalf("round trip failed: ok %v err %v consumed %d/%d", ok, err, c, n)
		}
	})
}

func benchPayload(n int) []byte {
	r := rand.New(rand.NewPCG(9, 9))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.UintN(256))
	}
	return p
}

func BenchmarkEncode(b *testing.B) {
	for _, size := range []int{64, 1024, 4096, 16384} {
		b.Run(itoa(size), func(b *testing.B) {
			p := benchPayload(size)
			dst := make([]byte, EncodedLen(size))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				Encode(dst, 1, p)
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, size := range []int{64, 1024, 4096, 16384} {
		b.Run(itoa(size), func(b *testing.B) {
			p := benchPayload(size)
			dst := make([]byte, EncodedLen(size))
			n, _ := Encode(dst, 1, p)
			d := NewDecoder(size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok, _ := d.Next(dst[:n]); !ok {
					b.Fatal("decode failed")
				}
			}
		})
	}
}

// BenchmarkCopyAnchor is the anchor for the codec figures: a plain copy of
// the same bytes on the same machine in the same run.
func BenchmarkCopyAnchor(b *testing.B) {
	for _, size := range []int{1024, 4096} {
		b.Run(itoa(size), func(b *testing.B) {
			p := benchPayload(size)
			dst := make([]byte, size)
			b.SetBytes(int64(size))
			for b.Loop() {
				copy(dst, p)
			}
		})
	}
}

func itoa(n int) string {
	return string(appendInt(nil, n))
}

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}
