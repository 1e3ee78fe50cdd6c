package usbnet

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/p2plink/p2plink/framing"
)

var macA, macB = []byte{2, 0, 0, 0, 0, 0xa}, []byte{2, 0, 0, 0, 0, 0xb}

func TestEncodeDecodeEveryFamily(t *testing.T) {
	out := make([]byte, maxWireFrame+1)
	for _, fam := range []Family{PL25A1, PL2301, NET1080, GL620A, CDCSubset} {
		for _, mps := range []int{64, 512, 1024} {
			for n := 0; n <= MTU; n++ {
				p := bytes.Repeat([]byte{byte(n)}, n)
				k, err := encodeFrame(out, fam, mps, macB, macA, uint16(n), p)
				if err != nil {
					t.Fatal(err)
				}
				if k%mps == 0 {
					t.Fatalf("%v mps %d: %d-byte payload as a %d-byte transfer", fam, mps, n, k)
				}
				var got [][]byte
				bad := decodeFrames(fam, out[:k], func(e []byte) {
					_, _, pl, err := framing.DecodeEther(e)
					if err != nil {
						t.Fatalf("%v: %v", fam, err)
					}
					got = append(got, pl)
				})
				if bad != 0 || len(got) != 1 || !bytes.Equal(got[0], p) {
					t.Fatalf("%v mps %d: %d bytes: bad %d, got %d frames", fam, mps, n, bad, len(got))
				}
			}
		}
	}
}

func TestGL620ABatch(t *testing.T) {
	// The chip may deliver several frames in one transfer.
	var xfer []byte
	xfer = binary.LittleEndian.AppendUint32(xfer, 3)
	var want []string
	for i, s := range []string{"one", "two", "three"} {
		e := make([]byte, 64)
		n, _ := framing.EncodeEther(e, macA, macB, []byte(s))
		xfer = binary.LittleEndian.AppendUint32(xfer, uint32(n+i%2)) // odd ones padded
		xfer = append(xfer, e[:n+i%2]...)
		want = append(want, s)
	}
	var got []string
	bad := decodeFrames(GL620A, xfer, func(e []byte) {
		_, _, pl, _ := framing.DecodeEther(e)
		got = append(got, string(pl))
	})
	if bad != 0 || len(got) != 3 || got[0] != "one" || got[2] != "three" {
		t.Fatalf("batch: bad %d, got %q", bad, got)
	}
	// A count the chip cannot send, and a length past the end, are garbage.
	for _, x := range [][]byte{{0, 0, 0, 0}, {33, 0, 0, 0}, {1, 0, 0, 0, 0xff, 0, 0, 0, 1}} {
		if decodeFrames(GL620A, x, func([]byte) { t.Fatal("delivered garbage") }) == 0 {
			t.Errorf("GL620A %x not counted as bad", x)
		}
	}
}

func TestNET1080RejectsDamage(t *testing.T) {
	out := make([]byte, maxWireFrame+1)
	k, _ := encodeFrame(out, NET1080, 64, macB, macA, 7, []byte("payload"))
	for name, mutate := range map[string]func(b []byte) []byte{
		"trailer id":  func(b []byte) []byte { b[len(b)-1] ^= 1; return b },
		"even length": func(b []byte) []byte { return b[:len(b)-1] },
		"length":      func(b []byte) []byte { b[2] = 0xff; return b },
	} {
		b := mutate(bytes.Clone(out[:k]))
		if decodeFrames(NET1080, b, func([]byte) { t.Fatalf("%s: delivered", name) }) != 1 {
			t.Errorf("%s: not counted", name)
		}
	}
}

// FuzzDecodeFrames feeds arbitrary transfers to every family's decoder: it
// must never panic, and everything it delivers must lie within the transfer.
func FuzzDecodeFrames(f *testing.F) {
	out := make([]byte, maxWireFrame+1)
	for _, fam := range []Family{PL25A1, NET1080, GL620A} {
		n, _ := encodeFrame(out, fam, 64, macB, macA, 1, []byte("seed"))
		f.Add(uint8(fam), bytes.Clone(out[:n]))
	}
	f.Add(uint8(GL620A), []byte{2, 0, 0, 0, 1, 0, 0, 0, 0xaa, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, fam uint8, xfer []byte) {
		family := Family(fam%5 + 1)
		decodeFrames(family, xfer, func(e []byte) {
			if len(e) > len(xfer) {
				t.Fatalf("%v delivered %d bytes from a %d-byte transfer", family, len(e), len(xfer))
			}
			framing.DecodeEther(e)
		})
	})
}
