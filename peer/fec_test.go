package peer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/p2plink/p2plink/link"
	"github.com/p2plink/p2plink/link/linktest"
	"github.com/p2plink/p2plink/serialnet"
)

// TestChooseCorrection: a clean line gets none (its 0.8 % would be waste);
// BER 1e-5 (8e-5 per byte) gets a little, BER 1e-4 more; and the choice
// beats sizing packets alone by a wide margin where it is made.
func TestChooseCorrection(t *testing.T) {
	for _, c := range []struct {
		p        float64
		min, max int
	}{
		{0, 0, 0},
		{1e-7, 0, 0},
		{8e-5, 1, 2},
		{8e-4, 2, 4},
		{8e-3, 6, 16},
	} {
		got := chooseCorrection(c.p, 2900, 0)
		if got < c.min || got > c.max {
			t.Errorf("p %.0e: correction %d, want %d to %d", c.p, got, c.min, c.max)
		}
		e0, e := correctionEfficiency(c.p, 2900, 0), correctionEfficiency(c.p, 2900, got)
		t.Logf("p %.0e: correction %d, efficiency %.3f (without: %.3f)", c.p, got, e, e0)
		if got > 0 && e < e0+0.05 {
			t.Errorf("p %.0e: correction %d gains only %.3f over none", c.p, got, e-e0)
		}
	}
	// Hysteresis: where two choices are within half a percent, the one in
	// use is kept.
	found := false
	for p := 8e-5; p < 8e-4; p *= 1.02 {
		if d := correctionEfficiency(p, 2900, 1) - correctionEfficiency(p, 2900, 2); math.Abs(d) < 0.003 {
			found = true
			if a, b := chooseCorrection(p, 2900, 1), chooseCorrection(p, 2900, 2); a != 1 || b != 2 {
				t.Errorf("p %.2e (efficiencies %.4f apart) from 1 → %d, from 2 → %d: want each kept", p, d, a, b)
			}
		}
	}
	if !found {
		t.Error("no rate where corrections 1 and 2 are close: the test needs another pair")
	}
	if e := correctionEfficiency(0, 2900, 0); math.Abs(e-1) > 1e-9 {
		t.Errorf("clean line without correction: efficiency %v", e)
	}
}

// TestCorrectionOnNoisyLine: two peers over serialnet on a null-modem with
// bit errors (1e-4 per bit, unpaced). The receiving end reports its damage,
// the sending end turns correction on, the data arrives intact, and far
// fewer packets are resent than without it.
func TestCorrectionOnNoisyLine(t *testing.T) {
	run := func(t *testing.T, correct bool) (Stats, int) {
		nm, err := linktest.NewNullModem(linktest.NullModemConfig{Seed: 3, BitErrorRate: 1e-4})
		if err != nil {
			t.Skipf("no null-modem here: %v", err)
		}
		t.Cleanup(func() { nm.Close() })
		open := func(port string) link.Link {
			l, err := serialnet.Open(port, serialnet.Config{Baud: 115200})
			if err != nil {
				t.Fatal(err)
			}
			if !correct {
				return noCorrect{l}
			}
			return l
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		sa, sb := sessionsOver(ctx, t, open(nm.PortA()), open(nm.PortB()))
		data := make([]byte, 3<<20)
		rand.Read(data)
		got := make(chan []byte, 1)
		go func() {
			st, err := sb.AcceptStream(ctx)
			if err != nil {
				got <- nil
				return
			}
			buf, _ := io.ReadAll(st)
			got <- buf
		}()
		st, err := sa.OpenStream(ctx, "test", PrioBulk)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Write(data); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if r := <-got; !bytes.Equal(r, data) {
			t.Fatalf("received %d bytes, not the %d sent", len(r), len(data))
		}
		return sa.Stats(), int(nm.Stats().BitsFlipped)
	}
	with, f1 := run(t, true)
	without, f2 := run(t, false)
	t.Logf("with correction: %d packets, %d resent, correction %d, segment %d (%d bits flipped)", with.PacketsSent, with.Retransmits, with.Correction, with.Segment, f1)
	t.Logf("without: %d packets, %d resent (%d bits flipped)", without.PacketsSent, without.Retransmits, f2)
	if with.Correction == 0 {
		t.Fatal("correction never turned on at BER 1e-4")
	}
	if without.Correction != 0 {
		t.Fatal("correction on over a link that does not offer it")
	}
	if with.Retransmits*3 > without.Retransmits {
		t.Fatalf("%d packets resent with correction, %d without: want a third or less", with.Retransmits, without.Retransmits)
	}
}

// noCorrect hides a link's correction (an older peer's link, or a driver
// without it).
type noCorrect struct{ link.Link }

// fakeCorrector records the corrections a session sets.
type fakeCorrector struct{ set []int }

func (f *fakeCorrector) SetCorrection(t int) error   { f.set = append(f.set, t); return nil }
func (f *fakeCorrector) LineDamage() link.LineDamage { return link.LineDamage{} }

// TestLinkQ feeds a session the peer's damage reports: a noisy stretch turns
// correction on, a long clean one turns it off again, and reports that are
// malformed, inconsistent (more changed bytes than bytes) or older than the
// last are ignored.
func TestLinkQ(t *testing.T) {
	fc := &fakeCorrector{}
	s := &Session{cfg: &Config{Logger: slog.New(slog.DiscardHandler)}, maxSeg: 4075}
	s.fec.corr = fc
	var b, c uint64
	report := func(db, dc uint64) {
		b, c = b+db, c+dc
		s.onLinkQ(binary.AppendUvarint(binary.AppendUvarint(nil, b), c))
	}
	for i := 0; i < 8; i++ {
		report(32<<10, 26) // 8e-4 of bytes changed: bit errors 1e-4
	}
	if s.fec.t < 2 || s.fec.t > 4 || len(fc.set) == 0 || fc.set[len(fc.set)-1] != s.fec.t {
		t.Fatalf("after a noisy stretch: correction %d, set %v", s.fec.t, fc.set)
	}
	noisy := s.fec.t
	// Garbage and inconsistent reports change nothing.
	for _, v := range [][]byte{nil, {0x80}, binary.AppendUvarint(binary.AppendUvarint(nil, 10), 11), binary.AppendUvarint(binary.AppendUvarint(nil, b-1), c)} {
		s.onLinkQ(v)
	}
	if s.fec.t != noisy || s.fec.lastB != b {
		t.Fatalf("bad reports moved the state: correction %d, last bytes %d (want %d, %d)", s.fec.t, s.fec.lastB, noisy, b)
	}
	for i := 0; i < 64; i++ {
		report(32<<10, 0)
	}
	if s.fec.t != 0 || fc.set[len(fc.set)-1] != 0 {
		t.Fatalf("after 2 MiB without damage: correction %d, set %v", s.fec.t, fc.set)
	}
}

// damageLink reports fixed line damage.
type damageLink struct {
	fakeCorrector
	d link.LineDamage
}

func (l *damageLink) LineDamage() link.LineDamage { return l.d }

// TestLinkQKeptWhenNotSent: a damage report written beside an ack into a
// data packet that then has nothing else to carry (no packet goes out) is
// not counted as sent: the next packet carries it, not one 250 ms later.
func TestLinkQKeptWhenNotSent(t *testing.T) {
	dl := &damageLink{d: link.LineDamage{Bytes: 64 << 10, Changed: 5}}
	s := &Session{e: &Endpoint{mtu: 1500}, cfg: &Config{}, slots: make([]sendSlot, 8), rslots: make([]recvSlot, 8),
		streams: map[uint64]*Stream{}, maxSeg: 1479, seg: 1024}
	s.fec.corr = dl
	s.ackWait, s.rcvNext, s.rcvMax = 1, 1, 1
	if pkt := s.buildData(msAt(1000), 1024); pkt != nil {
		t.Fatal("a data packet with nothing but an ack was built")
	}
	if s.fec.sentBytes != 0 || !s.fec.sentAt.IsZero() {
		t.Fatalf("the report counts as sent (bytes %d at %v) though no packet went", s.fec.sentBytes, s.fec.sentAt)
	}
	if s.ackWait != 1 {
		t.Fatalf("the waiting ack was dropped (ackWait %d)", s.ackWait)
	}
	if fr := s.appendLinkQ(nil, msAt(1000)); len(fr) == 0 {
		t.Fatal("the report is not due for the next packet")
	}
}
