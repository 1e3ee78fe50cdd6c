//go:build linux

// Package netns builds throwaway Ethernet segments out of Linux network
// namespaces, veth pairs and a bridge, for tests and benchmarks on real
// kernel sockets.
//
// Every namespace gets a name unique to the test run ("p2pl<pid>x<n>…") and
// is deleted when the test ends; namespaces left by a run that crashed are
// deleted by the next one. Building a segment needs root (CAP_SYS_ADMIN and
// CAP_NET_ADMIN) and the ip command from iproute2: without them the test is
// skipped with the reason.
//
// Code runs inside a host's namespace with Host.Do, on a dedicated OS
// thread. A socket opened there stays in that namespace after the thread
// switches back, so a test can open its links with Do and use them from any
// goroutine.
package netns

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const prefix = "p2pl"

var counter atomic.Uint64

// Host is one machine on a segment: a network namespace with one Ethernet
// interface.
type Host struct {
	NS     string           // network namespace name, for ip -n
	IfName string           // its Ethernet interface, "eth0"
	MAC    net.HardwareAddr // the interface's MAC address
}

// Segment is a set of hosts on one Ethernet segment.
type Segment struct {
	Hosts []*Host
	// Bridge is the namespace holding the bridge, or "" when the two hosts
	// are joined directly by a veth pair.
	Bridge string
}

// Skip skips tb unless network namespaces can be built here, saying why.
func Skip(tb testing.TB) {
	tb.Helper()
	if runtime.GOOS != "linux" {
		tb.Skip("network namespaces need Linux")
	}
	if os.Geteuid() != 0 {
		tb.Skip("building network namespaces needs root (run: sudo go test)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skip("the ip command (iproute2) is missing: apt-get install iproute2")
	}
}

// NewBridged builds a segment of n hosts whose interfaces, all with the
// given MTU, are ports of one Linux bridge, like machines on a switch.
func NewBridged(tb testing.TB, n, mtu int) *Segment {
	tb.Helper()
	Skip(tb)
	reapStale()
	id := counter.Add(1)
	s := &Segment{Bridge: name(id, "br")}
	addNS(tb, s.Bridge)
	run(tb, "ip", "-n", s.Bridge, "link", "add", "br0", "mtu", strconv.Itoa(mtu), "type", "bridge")
	run(tb, "ip", "-n", s.Bridge, "link", "set", "br0", "up")
	for i := range n {
		h := &Host{NS: name(id, fmt.Sprintf("h%d", i)), IfName: "eth0", MAC: mac(id, i)}
		addNS(tb, h.NS)
		port := fmt.Sprintf("port%d", i)
		run(tb, "ip", "-n", h.NS, "link", "add", h.IfName, "mtu", strconv.Itoa(mtu),
			"address", h.MAC.String(), "type", "veth",
			"peer", "name", port, "mtu", strconv.Itoa(mtu), "netns", s.Bridge)
		run(tb, "ip", "-n", s.Bridge, "link", "set", port, "master", "br0", "up")
		run(tb, "ip", "-n", h.NS, "link", "set", h.IfName, "up")
		s.Hosts = append(s.Hosts, h)
	}
	for i, h := range s.Hosts {
		waitUp(tb, s.Bridge, fmt.Sprintf("port%d", i))
		waitUp(tb, h.NS, h.IfName)
	}
	return s
}

// NewPair builds two hosts joined directly by a veth pair with the given
// MTU: the shortest path between two sockets.
func NewPair(tb testing.TB, mtu int) *Segment {
	tb.Helper()
	Skip(tb)
	reapStale()
	id := counter.Add(1)
	s := &Segment{}
	for i := range 2 {
		h := &Host{NS: name(id, fmt.Sprintf("h%d", i)), IfName: "eth0", MAC: mac(id, i)}
		addNS(tb, h.NS)
		s.Hosts = append(s.Hosts, h)
	}
	a, b := s.Hosts[0], s.Hosts[1]
	run(tb, "ip", "-n", a.NS, "link", "add", a.IfName, "mtu", strconv.Itoa(mtu),
		"address", a.MAC.String(), "type", "veth",
		"peer", "name", b.IfName, "mtu", strconv.Itoa(mtu), "address", b.MAC.String(), "netns", b.NS)
	run(tb, "ip", "-n", a.NS, "link", "set", a.IfName, "up")
	run(tb, "ip", "-n", b.NS, "link", "set", b.IfName, "up")
	waitUp(tb, a.NS, a.IfName)
	waitUp(tb, b.NS, b.IfName)
	return s
}

// NewEmpty builds one namespace with only its loopback interface, for tests
// that add interfaces of their own with Host.IP.
func NewEmpty(tb testing.TB) *Host {
	tb.Helper()
	Skip(tb)
	reapStale()
	id := counter.Add(1)
	h := &Host{NS: name(id, "h0")}
	addNS(tb, h.NS)
	return h
}

// WaitUp waits until the kernel reports the host's interface operationally
// up: see waitUp.
func (h *Host) WaitUp(tb testing.TB) {
	tb.Helper()
	waitUp(tb, h.NS, h.IfName)
}

// waitUp waits until the interface ifname in namespace ns is operationally
// up. Until then the kernel's link watcher has not given the interface its
// transmit queue, and frames sent to it vanish without an error. It fails
// tb after 10 s.
func waitUp(tb testing.TB, ns, ifname string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", "dev", ifname).CombinedOutput()
		if err == nil && bytes.Contains(out, []byte(" state UP ")) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("netns: %s in %s is not up after 10 s: %v: %s", ifname, ns, err, bytes.TrimSpace(out))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// IP runs the ip command in the host's namespace and fails tb if it fails.
func (h *Host) IP(tb testing.TB, args ...string) {
	tb.Helper()
	run(tb, "ip", append([]string{"-n", h.NS}, args...)...)
}

// Do runs fn on an OS thread switched into the host's namespace and returns
// its error. Sockets fn opens belong to the namespace for good.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		errc <- h.do(fn)
	}()
	return <-errc
}

func (h *Host) do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: opening this thread's namespace: %w", err)
	}
	defer orig.Close()
	target, err := os.Open(filepath.Join("/run/netns", h.NS))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: %w", err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: entering %s: %w", h.NS, err)
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked and dies with this goroutine, so no
		// other goroutine ever runs in the wrong namespace.
		return errors.Join(ferr, fmt.Errorf("netns: leaving %s: %w", h.NS, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

func name(id uint64, role string) string {
	return fmt.Sprintf("%s%dx%d%s", prefix, os.Getpid(), id, role)
}

// mac returns a locally administered unicast address unique to the run.
func mac(id uint64, i int) net.HardwareAddr {
	pid := os.Getpid()
	return net.HardwareAddr{0x02, byte(pid >> 8), byte(pid), byte(id >> 8), byte(id), byte(i + 1)}
}

func addNS(tb testing.TB, ns string) {
	tb.Helper()
	run(tb, "ip", "netns", "add", ns)
	tb.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			tb.Errorf("netns: deleting %s: %v: %s", ns, err, out)
		}
	})
	// Quiet namespaces: no IPv6 router solicitations or DAD on the segment.
	_ = exec.Command("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1").Run()
	_ = exec.Command("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1").Run()
}

func run(tb testing.TB, cmd string, args ...string) {
	tb.Helper()
	out, err := exec.Command(cmd, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v: %s", cmd, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// reapStale deletes namespaces left behind by test runs whose process is
// gone.
func reapStale() {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "x")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if unix.Kill(pid, 0) == nil || errors.Is(unix.Kill(pid, 0), unix.EPERM) {
			continue // still running
		}
		_ = exec.Command("ip", "netns", "del", e.Name()).Run()
	}
}
