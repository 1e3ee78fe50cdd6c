package ethnet

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/p2plink/p2plink/ethnet/internal/netns"
	"github.com/p2plink/p2plink/link"
)

// TestExclusive: one exclusive link per interface and network namespace;
// a second is refused with ErrInUse and a reason, a non-exclusive one is
// still allowed, the claim ends with Close, and the same interface index in
// another namespace is another interface.
func TestExclusive(t *testing.T) {
	seg := netns.NewPair(t, 1500)
	a, b := seg.Hosts[0], seg.Hosts[1]
	var second error
	err := a.Do(func() error { // Do runs fn on another goroutine: no t.Fatal in it
		first, err := Open("eth0", Config{Exclusive: true})
		if err != nil {
			return err
		}
		defer first.Close()
		_, second = Open("eth0", Config{Exclusive: true})
		shared, err := Open("eth0", Config{})
		if err != nil {
			return fmt.Errorf("non-exclusive link beside an exclusive one: %w", err)
		}
		shared.Close()
		// The other host's eth0 lives in another namespace: its claim is
		// its own, even if the index is the same.
		if err := b.Do(func() error {
			l, err := Open("eth0", Config{Exclusive: true})
			if err == nil {
				l.Close()
			}
			return err
		}); err != nil {
			return fmt.Errorf("exclusive link in another namespace: %w", err)
		}
		first.Close()
		again, err := Open("eth0", Config{Exclusive: true})
		if err != nil {
			return fmt.Errorf("exclusive link after the first closed: %w", err)
		}
		return again.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(second, ErrInUse) {
		t.Fatalf("second exclusive link: %v, want an error wrapping ErrInUse", second)
	}
	// It names the holder: this test's process.
	for _, hint := range []string{"eth0", "stop the other", fmt.Sprintf("pid %d: ", os.Getpid())} {
		if !strings.Contains(second.Error(), hint) {
			t.Errorf("error %q does not say %q", second, hint)
		}
	}
}

// TestExclusiveReplug: an exclusive link whose interface is replaced (a USB
// bridge cable unplugged and plugged back in) claims the new interface as
// it moves to it; and it stays off a new interface that another exclusive
// link took first.
func TestExclusiveReplug(t *testing.T) {
	seg := netns.NewPair(t, 1500)
	h0, h1 := seg.Hosts[0], seg.Hosts[1]
	replug := func() {
		h0.IP(t, "link", "del", "eth0")
		h0.IP(t, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", h1.NS)
		h0.IP(t, "link", "set", "eth0", "up")
		h1.IP(t, "link", "set", "eth0", "up")
		h0.WaitUp(t)
	}
	a := openOn(t, h0, Config{Exclusive: true})
	to := addrOf(h1.MAC)
	replug()
	var writeErr, second error
	if err := h0.Do(func() error {
		// The write moves the link (and its claim) to the new eth0; the
		// claim is made in the calling thread's namespace, h0's here.
		_, writeErr = a.WriteTo([]byte("x"), to)
		_, second = Open("eth0", Config{Exclusive: true})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if writeErr != nil {
		t.Fatalf("WriteTo after the replug: %v", writeErr)
	}
	if !errors.Is(second, ErrInUse) {
		t.Fatalf("exclusive link on the replaced interface: %v, want ErrInUse (the first link moved its claim)", second)
	}

	// Another exclusive link takes the next new interface first: ours stays off it.
	replug()
	var other *Link
	if err := h0.Do(func() (err error) {
		other, err = Open("eth0", Config{Exclusive: true})
		if err != nil {
			return err
		}
		_, writeErr = a.WriteTo([]byte("x"), to)
		return nil
	}); err != nil {
		t.Fatalf("exclusive link on a new interface the first has not moved to: %v", err)
	}
	defer other.Close()
	if !errors.Is(writeErr, link.ErrDisconnected) {
		t.Fatalf("WriteTo of the link whose new interface another took: %v, want ErrDisconnected", writeErr)
	}
	a.Close()
}
