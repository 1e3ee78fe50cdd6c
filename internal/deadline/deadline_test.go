package deadline

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// isClosed reports whether c is closed, after every goroutine in the bubble
// has settled.
func isClosed(c <-chan struct{}) bool {
	synctest.Wait()
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestSetSequences runs sequences of Set and clock advances and checks,
// after each step, whether the deadline has passed and how often the hook
// ran.
func TestSetSequences(t *testing.T) {
	type step struct {
		set     time.Duration // Set(now+set); ignored when clear
		clear   bool          // Set(time.Time{})
		keep    bool          // no Set in this step
		sleep   time.Duration // then advance the fake clock by this much
		passed  bool          // Passed and the channel are both this
		hookRan int           // total hook runs so far
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"fresh deadline never passes", []step{
			{clear: true, sleep: time.Hour},
		}},
		{"fires at the time, not before", []step{
			{set: time.Second, sleep: time.Second - 1},
			{keep: true, sleep: 1, passed: true, hookRan: 1},
		}},
		{"past time fires at once", []step{
			{set: -time.Second, passed: true, hookRan: 1},
		}},
		{"now fires at once", []step{
			{set: 0, passed: true, hookRan: 1},
		}},
		{"clear before it fires", []step{
			{set: time.Second, sleep: 500 * time.Millisecond},
			{clear: true, sleep: time.Hour},
		}},
		{"clear after it fired reopens", []step{
			{set: -1, passed: true, hookRan: 1},
			{clear: true, sleep: time.Hour, hookRan: 1},
		}},
		{"moving later replaces the timer", []step{
			{set: time.Second, sleep: 500 * time.Millisecond},
			{set: time.Second, sleep: 600 * time.Millisecond},
			{set: 400 * time.Millisecond, sleep: 399 * time.Millisecond},
			{set: 1, sleep: 1, passed: true, hookRan: 1},
		}},
		{"moving earlier fires earlier", []step{
			{set: time.Hour, sleep: time.Second},
			{set: time.Second, sleep: time.Second, passed: true, hookRan: 1},
			{set: -1, sleep: time.Hour, passed: true, hookRan: 1},
		}},
		{"expired again after reopening runs the hook again", []step{
			{set: -1, passed: true, hookRan: 1},
			{set: time.Second, sleep: time.Second, passed: true, hookRan: 2},
			{set: -time.Hour, passed: true, hookRan: 2},
			{clear: true, hookRan: 2},
			{set: -1, passed: true, hookRan: 3},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := New()
				var runs atomic.Int32
				if d.Arm(func() { runs.Add(1) }) {
					t.Fatal("Arm on a fresh deadline reports it passed")
				}
				for i, s := range tc.steps {
					switch {
					case s.keep:
					case s.clear:
						d.Set(time.Time{})
					default:
						d.Set(time.Now().Add(s.set))
					}
					time.Sleep(s.sleep)
					if got := isClosed(d.Wait()); got != s.passed {
						t.Fatalf("step %d: channel closed %v, want %v", i, got, s.passed)
					}
					if got := d.Passed(); got != s.passed {
						t.Fatalf("step %d: Passed %v, want %v", i, got, s.passed)
					}
					if got := int(runs.Load()); got != s.hookRan {
						t.Fatalf("step %d: hook ran %d times, want %d", i, got, s.hookRan)
					}
				}
				d.Stop()
			})
		})
	}
}

// TestSetWhileWaiting checks that a caller blocked on Wait is released by a
// Set made after it started waiting, at the new time and not before.
func TestSetWhileWaiting(t *testing.T) {
	for _, later := range []bool{false, true} {
		name := map[bool]string{false: "from cleared", true: "moved from an hour away"}[later]
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := New()
				if later {
					d.Set(time.Now().Add(time.Hour))
				}
				released := make(chan time.Time)
				go func() {
					<-d.Wait()
					released <- time.Now()
				}()
				synctest.Wait() // the waiter is blocked
				start := time.Now()
				d.Set(start.Add(time.Minute))
				if got := <-released; got.Sub(start) != time.Minute {
					t.Fatalf("waiter released after %v, want 1m", got.Sub(start))
				}
				d.Stop()
			})
		})
	}
}

// TestReopenGivesFreshChannel checks that a waiter released by an expiry
// stays released when the deadline is moved later, while new waiters block.
func TestReopenGivesFreshChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := New()
		d.Set(time.Now().Add(-1))
		old := d.Wait()
		d.Set(time.Now().Add(time.Second))
		if !isClosed(old) {
			t.Fatal("moving the deadline later reopened a channel a waiter already saw closed")
		}
		if isClosed(d.Wait()) {
			t.Fatal("a deadline moved into the future still reads as passed")
		}
		d.Stop()
	})
}

func TestArmAfterExpiry(t *testing.T) {
	d := New()
	d.Set(time.Now().Add(-1))
	ran := false
	if !d.Arm(func() { ran = true }) {
		t.Fatal("Arm after expiry reports not passed")
	}
	d.Set(time.Now().Add(time.Hour))
	d.Set(time.Now().Add(-1))
	if ran {
		t.Fatal("a hook refused by Arm ran on a later expiry")
	}
	d.Stop()
}

func TestDisarmAndStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := New()
		var runs atomic.Int32
		d.Arm(func() { runs.Add(1) })
		d.Disarm()
		d.Set(time.Now().Add(-1))
		if runs.Load() != 0 {
			t.Fatal("a disarmed hook ran")
		}

		d = New()
		d.Arm(func() { runs.Add(1) })
		d.Set(time.Now().Add(time.Second))
		d.Stop()
		time.Sleep(time.Hour)
		if isClosed(d.Wait()) || runs.Load() != 0 {
			t.Fatalf("after Stop: passed %v, hook runs %d; want neither", d.Passed(), runs.Load())
		}
		d.Set(time.Now().Add(time.Second)) // Set after Stop arms again, without the hook
		time.Sleep(time.Second)
		if !isClosed(d.Wait()) || runs.Load() != 0 {
			t.Fatalf("Set after Stop: passed %v, hook runs %d; want passed, no hook", d.Passed(), runs.Load())
		}
		d.Stop()
	})
}

// TestHookSeesPassed checks that the hook runs after the channel is closed,
// so a canceled operation that checks Passed reports a deadline error.
func TestHookSeesPassed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := New()
		var sawPassed, sawClosed atomic.Bool
		d.Arm(func() {
			sawPassed.Store(d.Passed())
			select {
			case <-d.Wait():
				sawClosed.Store(true)
			default:
			}
		})
		d.Set(time.Now().Add(time.Second))
		time.Sleep(time.Second)
		synctest.Wait()
		if !sawPassed.Load() || !sawClosed.Load() {
			t.Fatalf("in the hook: Passed %v, channel closed %v; want both true", sawPassed.Load(), sawClosed.Load())
		}
		d.Stop()
	})
}

// TestDisarmWaitsForHook checks that once Disarm returns the hook is not
// running: an operation can reuse what the hook cancels. It runs on the real
// clock because a goroutine blocked on a mutex never settles in a synctest
// bubble.
func TestDisarmWaitsForHook(t *testing.T) {
	d := New()
	entered, leave := make(chan struct{}), make(chan struct{})
	var done atomic.Bool
	d.Arm(func() {
		close(entered)
		<-leave
		done.Store(true)
	})
	go d.Set(time.Now().Add(-1)) // runs the hook on this goroutine
	<-entered
	doneAtDisarm := make(chan bool)
	go func() {
		d.Disarm()
		doneAtDisarm <- done.Load()
	}()
	// Give Disarm a chance to return early if it is broken; the assertion
	// below does not depend on how long this takes.
	time.Sleep(10 * time.Millisecond)
	close(leave)
	if !<-doneAtDisarm {
		t.Fatal("Disarm returned while the hook was still running")
	}
	d.Stop()
}

// TestConcurrent hammers every method from several goroutines on the real
// clock; run it with -race. Each expiry closes the channel once (a double
// close panics) and runs the hook at most once.
func TestConcurrent(t *testing.T) {
	d := New()
	var hookRuns atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				switch (g + i) % 6 {
				case 0:
					d.Set(time.Now().Add(time.Duration(i%3) * time.Microsecond))
				case 1:
					d.Set(time.Time{})
				case 2:
					d.Set(time.Now().Add(-1))
				case 3:
					select {
					case <-d.Wait():
					default:
					}
					d.Passed()
				case 4:
					d.Arm(func() { hookRuns.Add(1) })
				case 5:
					d.Disarm()
				}
			}
		})
	}
	wg.Wait()
	d.Stop()
	t.Logf("%d hook runs", hookRuns.Load())
}

func BenchmarkWait(b *testing.B) {
	d := New()
	d.Set(time.Now().Add(time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		select {
		case <-d.Wait():
			b.Fatal("passed")
		default:
		}
	}
	d.Stop()
}
