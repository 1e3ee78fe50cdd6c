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
