package peer

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2plink/p2plink/link/linktest"
	"github.com/p2plink/p2plink/peer/xfer"
)

// A file transfer through package xfer over a session: xfer reads replies
// while it writes, and the receiver closes its stream right after its last
// reply.
func TestXferOverSession(t *testing.T) {
	p := connect(t, linktest.PipeConfig{MTU: 4096, Loss: 0.02, Seed: 5}, testConfig(t, "a"), testConfig(t, "b"))
	defer p.close()
	dir := t.TempDir()
	src := filepath.Join(dir, "f.bin")
	data := randBytes(1, 256<<10)
	os.WriteFile(src, data, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		st, err := p.sb.AcceptStream(ctx)
		if err != nil {
			errc <- err
			return
		}
		_, err = xfer.Receive(ctx, st, filepath.Join(dir, "in"), xfer.ReceiveOptions{})
		errc <- err
	}()
	st, _ := p.sa.OpenStream(ctx, "xfer", PrioBulk)
	if _, err := xfer.Send(ctx, st, []string{src}, xfer.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "in", "f.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("received file differs (%v)", err)
	}
}

// Data written before Close reaches the peer before Close's request to stop
// sending, and a goroutine blocked in Read and another in Write on the same
// stream both wake.
func TestCloseAfterReplyKeepsOrder(t *testing.T) {
	p := connect(t, linktest.PipeConfig{}, testConfig(t, "a"), testConfig(t, "b"))
	defer p.close()
	ctx := context.Background()
	a, _ := p.sa.OpenStream(ctx, "svc", PrioBulk)
	// a writes more than the peer will read, while another goroutine waits
	// for the reply.
	writeDone := make(chan error, 1)
	go func() {
		_, err := a.Write(make([]byte, 2<<20))
		writeDone <- err
	}()
	b, err := p.sb.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(b, make([]byte, 1000))
	reply := bytes.Repeat([]byte("reply "), 1000)
	b.Write(reply)
	b.Close() // without reading the rest
	got, err := io.ReadAll(a)
	if !bytes.Equal(got, reply) {
		t.Fatalf("got %d bytes of reply (%v), want %d", len(got), err, len(reply))
	}
	select {
	case err := <-writeDone:
		if err == nil {
			t.Fatal("write of data the peer refused succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocked Write did not wake after the peer closed")
	}
}
