package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inNamespace runs fn on a goroutine whose OS thread has entered the named
// network namespace, and waits for it; the thread dies with the goroutine.
func inNamespace(ns string, fn func()) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with us
		f, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		fn()
		done <- nil
	}()
	return <-done
}

// runInNamespace runs the command with args in the named network
// namespace, in the background; its result (code -1: the namespace could
// not be entered) arrives on the channel.
func runInNamespace(ctx context.Context, ns string, args ...string) <-chan result {
	done := make(chan result, 1)
	go func() {
		err := inNamespace(ns, func() { done <- runCmd(ctx, "", args...) })
		if err != nil {
			done <- result{code: -1, stderr: err.Error()}
		}
	}()
	return done
}

// reapStaleNamespaces deletes the namespaces earlier runs of this test
// left when they were killed before their cleanup: p2plcmd<pid> of a
// process that is gone.
func reapStaleNamespaces() {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		pid, ok := strings.CutPrefix(e.Name(), "p2plcmd")
		if !ok {
			continue
		}
		if _, err := os.Stat("/proc/" + pid); err == nil {
			continue // its test still runs
		}
		exec.Command("ip", "netns", "del", e.Name()).Run()
	}
}

// vethNamespace makes a network namespace holding a veth pair, veth0 and
// veth1, both up, and returns its name; it skips t where that cannot be
// done, and deletes the namespace when t ends.
func vethNamespace(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace and raw sockets")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (iproute2)")
	}
	reapStaleNamespaces()
	ns := fmt.Sprintf("p2plcmd%d", os.Getpid())
	ip := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ip("-n", ns, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
	ip("-n", ns, "link", "set", "veth0", "up")
	ip("-n", ns, "link", "set", "veth1", "up")
	return ns
}

// TestOnePeerPerInterface: while a p2plink serves on an interface, a second
// command there would receive the frames meant for the first and cross its
// sessions; it is refused with a reason, except `peers`, which listens
// quietly beside it.
func TestOnePeerPerInterface(t *testing.T) {
	ns := vethNamespace(t)

	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := runInNamespace(ctx, ns, "eth", "veth0", "--config", filepath.Join(dir, "a"), "--name", "alice", "--dir", dir, "serve")
	// Wait for serve's claim on the interface (an abstract Unix socket of
	// this namespace), or the second command could take it first.
	claimed := false
	for deadline := time.Now().Add(10 * time.Second); !claimed && time.Now().Before(deadline); {
		if err := inNamespace(ns, func() {
			b, _ := os.ReadFile("/proc/thread-self/net/unix")
			claimed = strings.Contains(string(b), "@p2plink/ethnet/")
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !claimed {
		t.Fatal("serve did not claim the interface within 10 s")
	}
	file := filepath.Join(dir, "f")
	os.WriteFile(file, []byte("hello"), 0o644)
	var second, peers result
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second) // it waits for bob otherwise
	defer scancel()
	if err := inNamespace(ns, func() {
		second = runCmd(sctx, "", "eth", "veth0", "--config", filepath.Join(dir, "b"), "--name", "alice2", "--to", "bob", "send", file)
	}); err != nil {
		t.Fatal(err)
	}
	if second.code != 1 || !strings.Contains(second.stderr, "another p2plink already runs on this interface") || !strings.Contains(second.stderr, "stop the other first") {
		t.Fatalf("second command on the interface: exit %d, stderr %q; want exit 1 saying another p2plink runs there and what to do", second.code, second.stderr)
	}
	pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer pcancel()
	if err := inNamespace(ns, func() {
		peers = runCmd(pctx, "", "eth", "veth0", "--config", filepath.Join(dir, "c"), "--name", "probe", "peers")
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(peers.stderr, "listening quietly") {
		t.Errorf("peers beside a serve: exit %d, stderr %q; want it to listen quietly", peers.code, peers.stderr)
	}
	cancel()
	select {
	case r := <-served:
		if r.code == -1 || strings.Contains(r.stderr, "already runs") {
			t.Errorf("serve failed: %q", r.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after its context was cancelled")
	}
}

// TestFindHint: a command waiting for a peer by a name nobody answers to
// says, after a few seconds, which peers it does hear.
func TestFindHint(t *testing.T) {
	ns := vethNamespace(t)

	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan struct{})
	go func() {
		defer close(served)
		inNamespace(ns, func() {
			runCmd(ctx, "", "eth", "veth0", "--config", filepath.Join(dir, "a"), "--name", "alice", "--dir", dir, "serve")
		})
	}()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, []byte("hello"), 0o644)
	sctx, scancel := context.WithTimeout(ctx, findHint+1500*time.Millisecond)
	defer scancel()
	var r result
	if err := inNamespace(ns, func() {
		r = runCmd(sctx, "", "eth", "veth1", "--config", filepath.Join(dir, "b"), "--name", "bob", "--to", "nobody", "send", file)
	}); err != nil {
		t.Fatal(err)
	}
	if want := `no peer named "nobody" heard yet; the peers here: alice (`; !strings.Contains(r.stderr, want) {
		t.Errorf("waiting for a peer nobody answers to: stderr %q; want it to say %q", r.stderr, want)
	}
	if r.code == 0 {
		t.Errorf("exit 0 without the peer")
	}
	cancel()
	<-served
}

// TestSendKeepsHashesOnDisk: send keeps the hashes of a file of 8 MiB or
// more in the user's cache folder (TestMain points it at a temporary one),
// where the next run takes them instead of reading the file again
// (xfer's TestStoredHashes checks that), and a second send of the same
// file arrives intact.
func TestSendKeepsHashesOnDisk(t *testing.T) {
	ns := vethNamespace(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := runInNamespace(ctx, ns, "eth", "veth0", "--config", filepath.Join(dir, "a"), "--name", "alice", "--dir", filepath.Join(dir, "in"), "--overwrite", "serve")
	data := make([]byte, 9<<20)
	rand.Read(data)
	file := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// A file changed less than 2 s ago is not stored (it may change again
	// within a tick of the file system's clock); its change time cannot
	// be set back, so the test waits.
	time.Sleep(2100 * time.Millisecond)
	store := filepath.Join(os.Getenv("XDG_CACHE_HOME"), "p2plink", "hashes")
	os.RemoveAll(store)
	for run := 1; run <= 2; run++ {
		var r result
		sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
		if err := inNamespace(ns, func() {
			r = runCmd(sctx, "", "eth", "veth1", "--config", filepath.Join(dir, "b"), "--name", "bob", "--to", "alice", "send", file)
		}); err != nil {
			t.Fatal(err)
		}
		scancel()
		if r.code != 0 {
			t.Fatalf("send %d: exit %d: %s", run, r.code, r.stderr)
		}
		got, err := os.ReadFile(filepath.Join(dir, "in", "big.bin"))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("send %d: received %d bytes (%v), want the file's %d", run, len(got), err, len(data))
		}
		ents, _ := os.ReadDir(store)
		if len(ents) != 1 {
			t.Fatalf("send %d: the hash store %s holds %d entries, want 1", run, store, len(ents))
		}
	}
	cancel()
	<-served
}

// TestNoCarrierSaid: waiting on an interface that is up but has no carrier
// (a cable out; here the veth's other end is down) says so (found by
// review: it waited as if all were well).
func TestNoCarrierSaid(t *testing.T) {
	ns := vethNamespace(t)
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "veth1", "down").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	dir := t.TempDir()
	var r result
	if err := inNamespace(ns, func() {
		r = runCmd(context.Background(), "", "eth", "veth0", "--config", filepath.Join(dir, "a"), "--wait", "300ms", "chat")
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.stderr, "veth0") || !strings.Contains(r.stderr, "no carrier") {
		t.Errorf("exit %d, stderr %q; want it to say veth0 has no carrier", r.code, r.stderr)
	}
}

// segmentNamespace makes a namespace holding a Linux bridge and n veth
// pairs whose far ends are its ports; the near ends, eth0 … eth<n-1>, are
// the peers' interfaces (one p2plink each: the claim is per interface).
func segmentNamespace(t *testing.T, n int) string {
	t.Helper()
	ns := vethNamespace(t)
	ip := func(args ...string) {
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ip("link", "add", "br0", "type", "bridge")
	ip("link", "set", "br0", "up")
	for i := range n {
		near, far := fmt.Sprintf("eth%d", i), fmt.Sprintf("port%d", i)
		ip("link", "add", near, "type", "veth", "peer", "name", far)
		ip("link", "set", far, "master", "br0")
		ip("link", "set", far, "up")
		ip("link", "set", near, "up")
	}
	return ns
}

// TestBusyReceiverTurnsAway: a second sender to a one-shot receive that is
// busy with the first is told so at once, naming whom it is busy with (a
// field test: it sat at 0 B until its 30 s timeout, then blamed the
// cable), and the first transfer is unharmed.
func TestBusyReceiverTurnsAway(t *testing.T) {
	ns := segmentNamespace(t, 3)
	// Alice's line is slow (10 Mbit/s), so that her transfer is still
	// running when carol comes.
	if out, err := exec.Command("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "10mbit", "burst", "16kb", "limit", "16mb").CombinedOutput(); err != nil {
		t.Skipf("cannot slow the line down (tc tbf): %v: %s", err, out)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	inbox := filepath.Join(dir, "in")
	received := runInNamespace(ctx, ns, "eth", "eth1", "--config", filepath.Join(dir, "b"), "--name", "bob", "--dir", inbox, "receive")
	data := make([]byte, 4<<20)
	rand.Read(data)
	fa, fc := filepath.Join(dir, "a.bin"), filepath.Join(dir, "c.bin")
	os.WriteFile(fa, data, 0o644)
	os.WriteFile(fc, []byte("carol's"), 0o644)
	sent := runInNamespace(ctx, ns, "eth", "eth0", "--config", filepath.Join(dir, "a"), "--name", "alice", "--to", "bob", "send", fa)
	// Alice's transfer has begun once bob keeps partial data.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ents, _ := os.ReadDir(filepath.Join(inbox, ".p2plink-partial")); len(ents) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("alice's transfer did not begin within 20 s")
		}
	}
	start := time.Now()
	carol := <-runInNamespace(ctx, ns, "eth", "eth2", "--config", filepath.Join(dir, "c"), "--name", "carol", "--to", "bob", "--timeout", "20s", "send", fc)
	took := time.Since(start)
	if carol.code != 1 || !strings.Contains(carol.stderr, "bob is busy receiving from another peer; send again when that is done") {
		t.Errorf("carol: exit %d after %v, stderr %q; want exit 1 saying bob is busy", carol.code, took, carol.stderr)
	}
	if a := <-sent; a.code != 0 {
		t.Fatalf("alice: exit %d: %s", a.code, a.stderr)
	}
	if r := <-received; r.code != 0 {
		t.Fatalf("bob: exit %d: %s", r.code, r.stderr)
	}
	if got, err := os.ReadFile(filepath.Join(inbox, "a.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("alice's file: %d bytes (%v), want her %d", len(got), err, len(data))
	}
	if _, err := os.Stat(filepath.Join(inbox, "c.bin")); err == nil {
		t.Error("carol's file was received by a receive busy with alice")
	}
}
