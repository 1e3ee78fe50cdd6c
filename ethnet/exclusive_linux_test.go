package ethnet

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/p2plink/p2plink/ethnet/internal/netns"
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
