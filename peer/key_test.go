package peer

import (
	"net"
	"testing"

	"github.com/p2plink/p2plink/link"
)

// sliceAddr is an address type that cannot be compared with ==.
type sliceAddr []byte

func (a sliceAddr) Network() string { return "slice" }
func (a sliceAddr) String() string  { return string(a) }

type ptrAddr struct{ name string }

// wrapAddr is comparable to reflect, yet == panics when it holds a slice.
type wrapAddr struct{ inner net.Addr }

func (a wrapAddr) Network() string { return "wrap" }
func (a wrapAddr) String() string  { return "w" + a.inner.String() }

func (a *ptrAddr) Network() string { return "ptr" }
func (a *ptrAddr) String() string  { return a.name }

// keyLocked must give addr.String() for every address, whatever came
// before it: pointers, comparable structs, and types that == would panic on.
func TestAddressKey(t *testing.T) {
	e := &Endpoint{}
	p1, p2 := &ptrAddr{"aa:01"}, &ptrAddr{"aa:02"}
	seq := []net.Addr{
		p1, p1, p2, p1,
		link.Addr{Net: "hub", Name: "st1"}, link.Addr{Net: "hub", Name: "st1"}, link.Addr{Net: "hub", Name: "st2"},
		sliceAddr("s1"), sliceAddr("s1"), sliceAddr("s2"), p2, sliceAddr("s1"),
		&ptrAddr{"aa:01"}, // another pointer with the same name: the same peer
		wrapAddr{sliceAddr("x")}, wrapAddr{sliceAddr("x")}, wrapAddr{sliceAddr("y")},
	}
	for i, a := range seq {
		if got, want := e.keyLocked(a), a.String(); got != want {
			t.Fatalf("address %d (%T %v): key %q, want %q", i, a, a, got, want)
		}
	}
	// The cache is used: the same pointer costs no String call.
	counting := &countAddr{name: "c"}
	e.keyLocked(counting)
	e.keyLocked(counting)
	e.keyLocked(counting)
	if counting.calls != 1 {
		t.Errorf("String called %d times for the same address 3 times in a row, want 1", counting.calls)
	}
}

type countAddr struct {
	name  string
	calls int
}

func (a *countAddr) Network() string { return "count" }
func (a *countAddr) String() string  { a.calls++; return a.name }
