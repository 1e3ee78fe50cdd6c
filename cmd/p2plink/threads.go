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

// receiverThreads runs a command that receives files (receive, get) on one
// thread on a machine of two CPUs or fewer, unless GOMAXPROCS is set.
// Receiving is one pipeline — frames decrypted into a stream, hashed,
// written — that one thread of this project's test machine carries at
// about 500 MB/s of file data (256 MiB on 0.48–0.56 CPU-s), above a
// 2.5 GbE line. A second thread there adds
// a hand-off between threads for every stretch of data (Go's scheduler
// wakes an idle thread for each goroutine made ready) and competes with
// the kernel's own receive and disk work for the two CPUs. With both ends
// of a 256 MiB transfer on two CPUs, one thread at the receiver took
// 0.80 × the receiver's CPU and 0.86–0.96 × the time, in three sets of 8
// to 12 alternated transfers (bench/eth/README.md). Machines with more
// CPUs keep every thread: there the second one is free to run in
// parallel, as it is on the sending side, which gains less from one.
func receiverThreads() {
	if oneThread == nil || os.Getenv("GOMAXPROCS") != "" || numCPU() > 2 {
		return
	}
	oneThread()
}
