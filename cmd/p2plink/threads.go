package main

import (
	"os"
	"runtime"
)

// oneThread, set by main, runs the process's goroutines on one thread.
// Tests leave it nil: they share their process.
var oneThread func()

// numCPU is runtime.NumCPU; tests set it.
var numCPU = runtime.NumCPU

// transferThreads runs a command that moves files one way (send, put,
// receive, get) on one thread on a machine of two CPUs or fewer, unless
// GOMAXPROCS is set. Each end of a transfer is one pipeline: read, hash,
// seal and send, or take, decrypt, hash and write. On two CPUs a second
// thread adds a hand-off between threads for every stretch of data (Go's
// scheduler wakes an idle thread for each goroutine made ready, and the
// data is then read cold from the other CPU's cache) and competes with the
// kernel's own network and disk work for the two CPUs.
//
// Measured on this project's test machine, both ends of a 256 MiB
// transfer on its two CPUs (bench/eth/README.md): one thread at the
// receiver took 0.80 × the receiver's CPU and 0.86–0.96 × the time, in
// three sets of 8 to 12 alternated transfers; then one thread at the
// sender too took 0.90–1.00 × the sender's CPU (median 0.94) and
// 0.95–1.01 × the time (median 0.97), in six sets of 8 to 16 (with a
// defect, since fixed, that let Prepare's pass run to the file's end on
// one thread; the fixed build took 1.01 × the time of that one). A sender's
// hashing pass before the transfer (--hash-first, or a receiver without
// late roots) runs on that one thread too: about 0.3 s per GiB here.
//
// What it gives up: one thread carries about 500 MB/s of file data
// received, and about 425 MB/s sent over veth, whose sender also pays for
// the frames' delivery (more over a real NIC): above a 2.5 GbE line, so
// only a 5 or 10 GbE link on a two-CPU machine is held back, and its user
// can set GOMAXPROCS=2. Machines with more CPUs keep every thread, and so
// do the verbs that serve or carry traffic both ways (serve, pipe, chat).
func transferThreads() {
	if oneThread == nil || os.Getenv("GOMAXPROCS") != "" || numCPU() > 2 {
		return
	}
	oneThread()
}
