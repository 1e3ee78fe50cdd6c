package serialnet

import (
	"testing"
	"time"
)

func TestLineIdleEstimate(t *testing.T) {
	s, err := Config{Baud: 10000}.resolve() // 8N1: 10 bits, 1 ms a character
	if err != nil {
		t.Fatal(err)
	}
	if s.charTime != time.Millisecond {
		t.Fatalf("character time %v, want 1ms", s.charTime)
	}
	l := &Link{s: s, idleGap: idleChars * s.charTime}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if !l.lineIdle(t0) {
		t.Fatal("a fresh line is not idle")
	}
	l.lineBusy(t0, 100) // 100 characters: busy until t0+100ms
	for _, tc := range []struct {
		at   time.Duration
		idle bool
	}{
		{0, false},
		{100 * time.Millisecond, false},
		{102 * time.Millisecond, false}, // exactly two character times
		{102*time.Millisecond + 1, true},
	} {
		if got := l.lineIdle(t0.Add(tc.at)); got != tc.idle {
			t.Errorf("at +%v: idle %v, want %v", tc.at, got, tc.idle)
		}
	}
	// Back-to-back writes queue up; the estimate runs at most a UART queue
	// ahead of now.
	for range 1000 {
		l.lineBusy(t0, 1000)
	}
	if max := t0.Add((1000 + uartQueue) * time.Millisecond); l.lineFreeAt.After(max) {
		t.Errorf("estimate %v ahead, more than a UART queue", l.lineFreeAt.Sub(t0))
	}
}
