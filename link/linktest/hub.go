package linktest

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/p2plink/p2plink/link"
)

// Hub is an in-memory multi-peer segment, like an Ethernet switch: stations
// attach by name, WriteTo a station's address reaches that station only, and
// WriteTo the broadcast address reaches every other station. The fault model
// of its PipeConfig applies to each delivery on its own (a broadcast may reach
// some stations and not others); each station's port has its own line of
// cfg.Bandwidth and its own random stream.
//
// With the default flow control (DropWhenFull false) a station that stops
// reading blocks every sender once its queue is full, broadcasters included;
// set DropWhenFull for tests where some stations do not read.
type Hub struct {
	cfg    PipeConfig
	bcast  net.Addr
	faults faultCounters

	mu    sync.Mutex
	ends  map[string]*HubEnd
	count uint64 // stations ever attached: each gets its own random stream
}

// HubBroadcastName is the station name of a hub's broadcast address.
const HubBroadcastName = "broadcast"

// NewHub returns an empty segment with the given faults.
func NewHub(cfg PipeConfig) *Hub {
	h := &Hub{cfg: cfg.withDefaults("hub"), ends: make(map[string]*HubEnd)}
	h.bcast = link.Addr{Net: "hub", Name: HubBroadcastName}
	return h
}

// HubEnd is one station on a Hub: a link.Link, link.Broadcaster and
// link.StatsReporter. Its address is link.Addr{Net: "hub", Name: name}, and
// ReadFrom reports the sending station's address.
type HubEnd struct {
	st    *station
	hub   *Hub
	name  string
	tx    *medium
	token chan struct{}
}

var (
	_ link.Link          = (*HubEnd)(nil)
	_ link.Broadcaster   = (*HubEnd)(nil)
	_ link.StatsReporter = (*HubEnd)(nil)
)

// Attach plugs a new station called name into the hub. It panics if the
// name is taken by an open station or is HubBroadcastName: that is a bug in
// the test.
func (h *Hub) Attach(name string) *HubEnd {
	h.mu.Lock()
	defer h.mu.Unlock()
	if name == HubBroadcastName || name == "" {
		panic(fmt.Sprintf("linktest: hub station name %q is reserved", name))
	}
	if _, ok := h.ends[name]; ok {
		panic(fmt.Sprintf("linktest: hub station %q attached twice", name))
	}
	h.count++
	e := &HubEnd{
		st:    newStation(&h.cfg, "hub", link.Addr{Net: "hub", Name: name}, newPlug(), &h.faults),
		hub:   h,
		name:  name,
		tx:    newMedium(&h.cfg, h.count, &h.faults),
		token: make(chan struct{}, 1),
	}
	h.ends[name] = e
	return e
}

// Faults returns what the fault model did on the whole hub.
func (h *Hub) Faults() FaultStats { return h.faults.stats() }

// destinations returns the stations a frame to addr reaches, appended to
// dst. An unknown station reaches nobody, as on Ethernet.
func (h *Hub) destinations(dst []*HubEnd, from *HubEnd, addr net.Addr) []*HubEnd {
	name := addr.String()
	if a, ok := addr.(link.Addr); ok {
		name = a.Name
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if name == HubBroadcastName {
		for _, e := range h.ends {
			if e != from {
				dst = append(dst, e)
			}
		}
		return dst
	}
	if e, ok := h.ends[name]; ok && e != from {
		dst = append(dst, e)
	}
	return dst
}

// BroadcastAddr returns the address that reaches every other station.
func (e *HubEnd) BroadcastAddr() net.Addr { return e.hub.bcast }

// ReadFrom reads the next frame into p and returns the sending station's
// address. A frame longer than p is dropped and io.ErrShortBuffer returned.
func (e *HubEnd) ReadFrom(p []byte) (int, net.Addr, error) { return e.st.read(p) }

// WriteTo sends p to the station at addr (a link.Addr, or any address whose
// String is the station's name) or, for BroadcastAddr, to every other
// station. A frame to a station that is not attached is lost silently.
func (e *HubEnd) WriteTo(p []byte, addr net.Addr) (int, error) {
	if addr == nil {
		return 0, e.st.opErr("write", addr, fmt.Errorf("a hub needs a destination: pass a station's address or BroadcastAddr()"))
	}
	dl, err := e.st.beginWrite(len(p), addr, e.token)
	if err != nil {
		return 0, err
	}
	defer func() { <-e.token }()
	if lost, err := e.st.unpluggedTo(nil, addr); err != nil {
		return 0, err
	} else if !lost {
		var buf [8]*HubEnd
		for _, r := range e.hub.destinations(buf[:0], e, addr) {
			if err := e.st.deliver(p, r.st, e.tx, dl, addr); err != nil {
				return 0, err
			}
		}
	}
	e.st.stats.framesOut.Add(1)
	e.st.stats.bytesOut.Add(uint64(len(p)))
	return len(p), nil
}

// Close detaches the station: pending and later calls fail with an error
// wrapping net.ErrClosed, and its name may be attached again.
func (e *HubEnd) Close() error {
	e.st.close()
	e.hub.mu.Lock()
	if e.hub.ends[e.name] == e {
		delete(e.hub.ends, e.name)
	}
	e.hub.mu.Unlock()
	return nil
}

// LocalAddr returns the station's address.
func (e *HubEnd) LocalAddr() net.Addr { return e.st.local }

// SetDeadline sets the read and write deadlines.
func (e *HubEnd) SetDeadline(t time.Time) error { return e.st.setDeadlines(t, true, true) }

// SetReadDeadline sets the deadline for ReadFrom calls, pending ones too.
func (e *HubEnd) SetReadDeadline(t time.Time) error { return e.st.setDeadlines(t, true, false) }

// SetWriteDeadline sets the deadline for WriteTo calls, pending ones too.
func (e *HubEnd) SetWriteDeadline(t time.Time) error { return e.st.setDeadlines(t, false, true) }

// MTU returns the largest frame the hub carries.
func (e *HubEnd) MTU() int { return e.st.cfg.MTU }

// Stats returns this station's counters.
func (e *HubEnd) Stats() link.Stats { return e.st.stats.stats() }

// Unplug pulls this station's cable: frames on the wire towards it are lost,
// and until Replug frames from or to it are lost silently (or, with
// UnplugErrors, its calls fail with link.ErrDisconnected).
func (e *HubEnd) Unplug() {
	if e.st.plug.unplug() {
		e.hub.faults.unplugged.Add(uint64(e.st.in.dropInFlight()))
	}
}

// Replug puts the station's cable back.
func (e *HubEnd) Replug() { e.st.plug.replug() }
