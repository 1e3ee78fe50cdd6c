//go:build !unix

package main

import "time"

// cpuTime is 0 where getrusage(2) does not exist: the benchmark's CPU
// figures then read 0.
func cpuTime() time.Duration { return 0 }
