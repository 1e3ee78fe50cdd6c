package linktest

import (
	"fmt"
	"runtime"
	"time"
)

// settleGoroutines waits up to two seconds for the goroutine count to fall
// back to want or below: goroutines that are ending take a moment to go.
func settleGoroutines(want int) error {
	var n int
	for i := range 200 {
		if n = runtime.NumGoroutine(); n <= want {
			return nil
		}
		time.Sleep(time.Duration(i%10+1) * time.Millisecond)
	}
	buf := make([]byte, 1<<16)
	buf = buf[:runtime.Stack(buf, true)]
	return fmt.Errorf("%d goroutines left running, want %d or fewer:\n%s", n, want, buf)
}

// goroutineBaseline returns the goroutine count once goroutines that were
// already ending (from earlier tests) have gone: the least of samples over
// about 100 ms.
func goroutineBaseline() int {
	least := runtime.NumGoroutine()
	for range 20 {
		time.Sleep(5 * time.Millisecond)
		least = min(least, runtime.NumGoroutine())
	}
	return least
}
