package framing

import (
	"bytes"
	"errors"
	"testing"
)

func TestEtherRoundTrip(t *testing.T) {
	dst := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	src := []byte{2, 0, 0, 0, 0, 1}
	for _, size := range []int{0, 1, 42, 43, 44, 1483, 8983} {
		p := bytes.Repeat([]byte{0xA5}, size)
		out := make([]byte, max(EtherOverhead+size, EtherMinFrame))
		n, err := EncodeEther(out, dst, src, p)
		if err != nil {
			t.Fatal(err)
		}
		if n < EtherMinFrame {
			t.Fatalf("size %d: frame of %d bytes, below the Ethernet minimum", size, n)
		}
		// The wire may add padding; the length field strips it.
		wire := append(out[:n:n], 0, 0, 0)
		d, s, got, err := DecodeEther(wire)
		if err != nil || !bytes.Equal(d, dst) || !bytes.Equal(s, src) || !bytes.Equal(got, p) {
			t.Fatalf("size %d: round trip failed: %v", size, err)
		}
	}
}

func TestEtherRejects(t *testing.T) {
	out := make([]byte, 64)
	n, _ := EncodeEther(out, make([]byte, 6), make([]byte, 6), []byte("hi"))
	frame := out[:n]
	other := bytes.Clone(frame)
	other[12], other[13] = 0x08, 0x00 // IPv4
	if _, _, _, err := DecodeEther(other); !errors.Is(err, ErrNotOurs) {
		t.Errorf("foreign EtherType: %v", err)
	}
	lying := bytes.Clone(frame)
	lying[15], lying[16] = 0x05, 0xDC // claims 1500 bytes
	if _, _, _, err := DecodeEther(lying); !errors.Is(err, ErrShort) {
		t.Errorf("length beyond frame: %v", err)
	}
	ver := bytes.Clone(frame)
	ver[14] = 9
	if _, _, _, err := DecodeEther(ver); !errors.Is(err, ErrVersion) {
		t.Errorf("other version: %v", err)
	}
	if _, _, _, err := DecodeEther(frame[:10]); !errors.Is(err, ErrNotOurs) {
		t.Errorf("runt: %v", err)
	}
}

// TestEncodeEtherHeader: the header followed by the payload is the frame
// EncodeEther writes, for every payload long enough to need no padding.
func TestEncodeEtherHeader(t *testing.T) {
	dst := []byte{1, 2, 3, 4, 5, 6}
	src := []byte{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	for _, n := range []int{EtherMinFrame - EtherOverhead, 100, 1497, 8997, 0xFFFF} {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		want := make([]byte, EtherOverhead+n)
		if _, err := EncodeEther(want, dst, src, payload); err != nil {
			t.Fatal(err)
		}
		hdr := make([]byte, EtherOverhead)
		if err := EncodeEtherHeader(hdr, dst, src, n); err != nil {
			t.Fatal(err)
		}
		if got := append(hdr, payload...); !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: header and payload differ from EncodeEther's frame", n)
		}
	}
	if err := EncodeEtherHeader(make([]byte, EtherOverhead), dst, src, 0x10000); err != ErrTooLong {
		t.Errorf("65536-byte payload: %v, want ErrTooLong", err)
	}
	if err := EncodeEtherHeader(make([]byte, EtherOverhead-1), dst, src, 10); err != ErrShortDst {
		t.Errorf("short header buffer: %v, want ErrShortDst", err)
	}
}
