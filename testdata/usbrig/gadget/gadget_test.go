package main

import (
	"bytes"
	"encoding/binary"
	"testing"
	"testing/synctest"
)

func TestFIFOCapacityCountsReadsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFIFO(2048, func() bool { return false })
		for range 4 {
			f.reserve(512)
		}
		// Full: a fifth reservation must wait for the writer side.
		got := make(chan struct{})
		go func() { f.reserve(512); close(got) }()
		synctest.Wait()
		select {
		case <-got:
			t.Fatal("reserved beyond the FIFO's 2048 bytes")
		default:
		}
		// A short packet gives back the unused part of its reservation,
		// but 412 free bytes are not room for a full packet yet.
		f.commit(512, make([]byte, 100))
		synctest.Wait()
		select {
		case <-got:
			t.Fatal("reserved 512 bytes with 412 free")
		default:
		}
		// Once the far side takes the packet there is room.
		pkt, gen := f.peek()
		if len(pkt) != 100 {
			t.Fatalf("peek: %d bytes, want 100", len(pkt))
		}
		f.pop(gen)
		synctest.Wait()
		select {
		case <-got:
		default:
			t.Fatal("reservation still blocked with 512 bytes free")
		}
		if f.queued != 0 || f.reserved != 4*512 {
			t.Fatalf("queued %d reserved %d, want 0 and 2048", f.queued, f.reserved)
		}
	})
}

func TestFIFOZeroLengthPackets(t *testing.T) {
	drop := false
	f := newFIFO(2048, func() bool { return drop })
	f.reserve(512)
	f.commit(512, []byte{})
	drop = true
	f.reserve(512)
	f.commit(512, []byte{})
	if len(f.pkts) != 1 || len(f.pkts[0]) != 0 {
		t.Fatalf("queue %v, want one kept ZLP and the second dropped", f.pkts)
	}
}

func TestFIFOFlushWinsOverPop(t *testing.T) {
	f := newFIFO(2048, func() bool { return false })
	f.reserve(512)
	f.commit(512, []byte{1})
	f.reserve(512)
	f.commit(512, []byte{2})
	_, gen := f.peek()
	f.flush()
	f.reserve(512)
	f.commit(512, []byte{3})
	f.pop(gen) // the write of packet 1 completed after the flush
	if p, _ := f.peek(); !bytes.Equal(p, []byte{3}) {
		t.Fatalf("head after flush is %v, want [3]", p)
	}
	if f.queued != 1 {
		t.Fatalf("queued %d, want 1", f.queued)
	}
}

func TestDescriptorsLayout(t *testing.T) {
	d := descriptors()
	if got := binary.LittleEndian.Uint32(d[4:]); int(got) != len(d) {
		t.Fatalf("length field %d, blob %d", got, len(d))
	}
	if flags := binary.LittleEndian.Uint32(d[8:]); flags&ffsAllCtrlRecip == 0 {
		t.Fatal("ALL_CTRL_RECIP missing: the device-recipient 0xFB request would never reach us")
	}
	// Two speeds of one interface and three endpoints each.
	if want := 20 + 2*(9+3*7); len(d) != want {
		t.Fatalf("blob %d bytes, want %d", len(d), want)
	}
	hsBulkOut := d[20+30+9+7:]
	if hsBulkOut[2] != 0x02 || hsBulkOut[3] != 2 || binary.LittleEndian.Uint16(hsBulkOut[4:]) != 512 {
		t.Fatalf("high-speed bulk OUT descriptor % x", hsBulkOut[:7])
	}
}

func TestUdevMessage(t *testing.T) {
	k := []byte("add@/devices/platform/dummy_hcd.1/usb2/2-1\x00ACTION=add\x00DEVPATH=/devices/platform/dummy_hcd.1/usb2/2-1\x00SUBSYSTEM=usb\x00DEVTYPE=usb_device\x00DEVNAME=bus/usb/002/003\x00SEQNUM=42\x00")
	m := udevMessage(k)
	if m == nil || string(m[:8]) != "libudev\x00" {
		t.Fatalf("no libudev header: %q", m)
	}
	if binary.BigEndian.Uint32(m[8:]) != 0xfeedcafe {
		t.Fatal("bad magic")
	}
	props := k[bytes.IndexByte(k, 0)+1:]
	off, n := binary.NativeEndian.Uint32(m[16:]), binary.NativeEndian.Uint32(m[20:])
	if !bytes.Equal(m[off:off+n], props) {
		t.Fatalf("properties %q, want %q", m[off:off+n], props)
	}
	if binary.BigEndian.Uint32(m[24:]) != murmur2([]byte("usb")) || binary.BigEndian.Uint32(m[28:]) != murmur2([]byte("usb_device")) {
		t.Fatal("subsystem/devtype hashes not set")
	}
	// The hashes themselves are checked end to end: libudev's socket
	// filter drops messages whose hashes differ, and the probe's
	// TestUnplugReplug then never sees the device come back.
	if udevMessage(m) != nil {
		t.Fatal("forwarded a libudev message again")
	}
}
