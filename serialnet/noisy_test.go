package serialnet

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/p2plink/p2plink/link/linktest"
)

// noisyTransfer sends 300 frames of 200 bytes from a to b over a null-modem
// with bit errors, protected with correction corr, and returns how many
// arrived (every one intact and in order, or the test fails).
func noisyTransfer(t *testing.T, corr int) (got int, b *Link, nm *linktest.NullModem) {
	nm, err := linktest.NewNullModem(linktest.NullModemConfig{Seed: 7, BitErrorRate: 1e-4})
	if err != nil {
		t.Skipf("no null-modem here: %v", err)
	}
	t.Cleanup(func() { nm.Close() })
	a := openLink(t, nm.PortA(), testConfig(t))
	b = openLink(t, nm.PortB(), testConfig(t))
	if err := a.SetCorrection(corr); err != nil {
		t.Fatal(err)
	}

	const frames, size = 300, 200
	content := func(i uint32, p []byte) {
		for j := range p {
			p[j] = byte(uint32(j)*31 + i*7)
		}
		binary.BigEndian.PutUint32(p, i)
	}
	stop := make(chan struct{})
	sent := make(chan error, 1)
	go func() {
		p := make([]byte, size)
		for i := range uint32(frames) {
			content(i, p)
			if _, err := a.WriteTo(p, nil); err != nil {
				sent <- err
				return
			}
		}
		// Then an end marker, again and again, until the reader has one.
		for {
			if _, err := a.WriteTo([]byte("end"), nil); err != nil {
				sent <- err
				return
			}
			select {
			case <-stop:
				sent <- nil
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	buf := make([]byte, b.MTU())
	want := make([]byte, size)
	last := -1
	b.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		n, _, err := b.ReadFrom(buf)
		if err != nil {
			t.Fatalf("ReadFrom after %d frames: %v", got, err)
		}
		if string(buf[:n]) == "end" {
			break
		}
		i := binary.BigEndian.Uint32(buf)
		content(i, want)
		if n != size || string(buf[:n]) != string(want) {
			t.Fatalf("frame %d arrived corrupted", i)
		}
		if int(i) <= last {
			t.Fatalf("frame %d after frame %d", i, last)
		}
		last = int(i)
		got++
	}
	close(stop)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	return got, b, nm
}

// TestNoisyLine: without correction, frames hit by an error are dropped and
// counted, the rest arrive intact and in order, and the link stays up.
func TestNoisyLine(t *testing.T) {
	const frames = 300
	got, b, nm := noisyTransfer(t, 0)
	st := b.Stats()
	t.Logf("%d of %d frames arrived; stats %+v; line %+v", got, frames, st, nm.Stats())
	if got == frames || got < frames/2 {
		t.Errorf("%d of %d frames arrived: want some, not all, lost to bit errors", got, frames)
	}
	if lost := frames - got; st.Dropped < uint64(lost)/2 || st.Garbage == 0 {
		t.Errorf("%d frames lost but Dropped = %d, Garbage = %d", lost, st.Dropped, st.Garbage)
	}
	// Still up the other way too.
	if _, err := b.WriteTo([]byte("ack"), nil); err != nil {
		t.Fatal(err)
	}
}

// TestNoisyLineCorrected: the same line with correction 3 per block loses
// almost nothing, and the receiver counts the bytes it repaired (about the
// bits the line flipped: one byte each, a few shared).
func TestNoisyLineCorrected(t *testing.T) {
	const frames = 300
	got, b, nm := noisyTransfer(t, 3)
	d := b.LineDamage()
	flipped := nm.Stats().BitsFlipped
	t.Logf("%d of %d frames arrived; line damage %+v; bits flipped both ways %d", got, frames, d, flipped)
	if got < frames-6 {
		t.Errorf("%d of %d frames arrived with correction 3 at BER 1e-4", got, frames)
	}
	if d.Changed < flipped/2 || d.Changed > 2*flipped || d.Bytes == 0 {
		t.Errorf("line damage %+v with %d bits flipped", d, flipped)
	}
}
