// Command gadget plays both ends of a PL-25A1-like USB host-to-host bridge
// cable inside the usbrig VM.
//
// It creates two configfs gadgets (067b:25a1 by default), each with one
// FunctionFS function: a vendor-class interface with an interrupt IN, a
// bulk OUT and a bulk IN endpoint. Bound to the two dummy_hcd UDCs they
// enumerate as two devices on two virtual buses. What host end A writes to
// its bulk OUT comes out of end B's bulk IN and back, packet by packet,
// through a FIFO of 2 KiB per direction, so a writer stalls when the far
// side does not read. The vendor request 0xC0/0xFB answers the peer status
// (byte 0 local, byte 1 remote; bit 0 suspended, bit 1 unplugged).
//
// Commands, one per line, written to the control FIFO (default
// /run/usbrig/ctl):
//
//	unplug a|b    detach that end from its bus (empties its UDC file)
//	plug a|b      attach it again (alias: replug)
//	zlp drop|keep drop zero-length packets in the cable, or pass them on
//
// After each command the state file (default /run/usbrig/state) is
// rewritten as "seq=N a=plugged|unplugged b=... zlp=keep|drop"; a test
// that wrote a command waits for seq to move.
//
// Endpoint I/O uses Linux AIO; ep0 uses blocking I/O with asynchronous
// preemption off (the program re-executes itself with
// GODEBUG=asyncpreemptoff=1), because a signal that interrupts a
// FunctionFS request half way makes a plain read/write retry resend bytes.
//
// Build it static: CGO_ENABLED=0 go build ./testdata/usbrig/gadget
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	log.SetFlags(log.Lmicroseconds)
	log.SetPrefix("gadget: ")
	if !strings.Contains(os.Getenv("GODEBUG"), "asyncpreemptoff=1") {
		exe, err := os.Executable()
		if err == nil {
			env := append(os.Environ(), "GODEBUG=asyncpreemptoff=1")
			err = syscall.Exec(exe, os.Args, env)
		}
		log.Fatalf("re-exec with GODEBUG=asyncpreemptoff=1: %v", err)
	}
	if err := run(os.Args[1:]); err != nil {
		log.Fatal(err)
	}
}

type rig struct {
	mu      sync.Mutex
	ends    map[string]*end
	plugged map[string]bool
	dropZLP atomic.Bool
	seq     int
	state   string
}

func run(args []string) error {
	fs := flag.NewFlagSet("gadget", flag.ContinueOnError)
	var (
		udcA    = fs.String("udc-a", "", "UDC for end A (default: first in /sys/class/udc)")
		udcB    = fs.String("udc-b", "", "UDC for end B (default: second in /sys/class/udc)")
		vid     = fs.Uint("vid", 0x067b, "USB vendor ID")
		pid     = fs.Uint("pid", 0x25a1, "USB product ID")
		fifoCap = fs.Int("fifo", 2048, "FIFO bytes per direction")
		drop    = fs.Bool("drop-zlp", false, "drop zero-length packets")
		ctl     = fs.String("ctl", "/run/usbrig/ctl", "control FIFO path")
		state   = fs.String("state", "/run/usbrig/state", "state file path")
		ready   = fs.String("ready", "", "file to create once both ends are bound")
		uevents = fs.Bool("forward-uevents", true, "forward kernel uevents to libudev listeners (no udevd here)")
		verbose = fs.Bool("v", false, "log every control request")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *udcA == "" || *udcB == "" {
		ents, err := os.ReadDir("/sys/class/udc")
		if err != nil || len(ents) < 2 {
			return fmt.Errorf("need two UDCs in /sys/class/udc (load dummy_hcd num=2): %v", err)
		}
		names := make([]string, 0, len(ents))
		for _, e := range ents {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		if *udcA == "" {
			*udcA = names[0]
		}
		if *udcB == "" {
			*udcB = names[1]
		}
	}
	if *uevents {
		if err := forwardUevents(); err != nil {
			return err
		}
	}

	r := &rig{ends: map[string]*end{}, plugged: map[string]bool{}, state: *state}
	r.dropZLP.Store(*drop)
	a := &end{name: "a", udc: *udcA}
	b := &end{name: "b", udc: *udcB}
	a.peer, b.peer = b, a
	a.toward = newFIFO(*fifoCap, r.dropZLP.Load)
	b.toward = newFIFO(*fifoCap, r.dropZLP.Load)
	for i, e := range []*end{a, b} {
		if err := e.setup(uint16(*vid), uint16(*pid), fmt.Sprintf("USBRIG%04d", i+1)); err != nil {
			return fmt.Errorf("end %s: %w", e.name, err)
		}
		r.ends[e.name] = e
		go e.serveEP0(*verbose)
		go e.pumpOut()
		go e.pumpIn()
	}
	for _, e := range []*end{a, b} {
		if err := e.plug(); err != nil {
			return fmt.Errorf("end %s: bind to %s: %w", e.name, e.udc, err)
		}
		r.plugged[e.name] = true
	}
	if err := os.MkdirAll(filepath.Dir(*ctl), 0o755); err != nil {
		return err
	}
	r.writeState()
	log.Printf("ends bound: a=%s b=%s, %04x:%04x, fifo %d B, zlp %s", a.udc, b.udc, *vid, *pid, *fifoCap, r.zlpWord())
	if *ready != "" {
		if err := os.WriteFile(*ready, []byte("ok\n"), 0o644); err != nil {
			return err
		}
	}
	return r.serveControl(*ctl)
}

func (r *rig) zlpWord() string {
	if r.dropZLP.Load() {
		return "drop"
	}
	return "keep"
}

func (r *rig) writeState() {
	s := fmt.Sprintf("seq=%d a=%s b=%s zlp=%s\n", r.seq, plugWord(r.plugged["a"]), plugWord(r.plugged["b"]), r.zlpWord())
	tmp := r.state + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err == nil {
		_ = os.Rename(tmp, r.state)
	}
}

func plugWord(p bool) string {
	if p {
		return "plugged"
	}
	return "unplugged"
}

// serveControl reads commands from a named pipe forever.
func (r *rig) serveControl(path string) error {
	if err := unix.Mkfifo(path, 0o666); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("mkfifo %s: %w", path, err)
	}
	// Opened read-write so the pipe never reports EOF between writers.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if err := r.command(line); err != nil {
			log.Printf("command %q: %v", line, err)
		} else {
			log.Printf("command %q done", line)
		}
		r.mu.Lock()
		r.seq++
		r.writeState()
		r.mu.Unlock()
	}
	return sc.Err()
}

func (r *rig) command(line string) error {
	f := strings.Fields(line)
	if len(f) != 2 {
		return errors.New("want: unplug a|b, plug a|b, zlp drop|keep")
	}
	switch f[0] {
	case "unplug", "plug", "replug":
		e := r.ends[f[1]]
		if e == nil {
			return fmt.Errorf("no end %q (want a or b)", f[1])
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if f[0] == "unplug" {
			if !r.plugged[e.name] {
				return nil
			}
			if err := e.unplug(); err != nil {
				return err
			}
			r.plugged[e.name] = false
			return nil
		}
		if r.plugged[e.name] {
			return nil
		}
		if err := e.plug(); err != nil {
			return err
		}
		r.plugged[e.name] = true
		return nil
	case "zlp":
		switch f[1] {
		case "drop":
			r.dropZLP.Store(true)
		case "keep":
			r.dropZLP.Store(false)
		default:
			return errors.New("want zlp drop or zlp keep")
		}
		return nil
	}
	return fmt.Errorf("unknown command %q", f[0])
}
