package linktest

import (
	"testing"
	"time"

	"github.com/p2plink/p2plink/link"
)

func pipePair(cfg PipeConfig) MakePair {
	return func(t *testing.T) (link.Link, link.Link, func()) {
		a, b := NewFramePipe(cfg)
		return a, b, func() {}
	}
}

func hubPair(cfg PipeConfig) MakePair {
	return func(t *testing.T) (link.Link, link.Link, func()) {
		h := NewHub(cfg)
		x, y := h.Attach("x"), h.Attach("y")
		z := h.Attach("z") // a bystander that must not disturb anything
		return x, y, func() { z.Close() }
	}
}

func TestConformanceFramePipe(t *testing.T) {
	TestLink(t, pipePair(PipeConfig{}))
}

func TestConformanceFramePipeSmallMTU(t *testing.T) {
	TestLink(t, pipePair(PipeConfig{MTU: 64, QueueLen: 1}))
}

func TestConformanceFramePipeSlow(t *testing.T) {
	TestLink(t, pipePair(PipeConfig{Latency: time.Millisecond, Jitter: time.Millisecond, Bandwidth: 50_000_000}))
}

func TestConformanceFramePipeLossy(t *testing.T) {
	TestLink(t, pipePair(PipeConfig{Loss: 0.1, Duplicate: 0.05, Seed: 1, DropWhenFull: true}),
		Options{Lossy: true, Retry: 20 * time.Millisecond, Wait: 2 * time.Second})
}

func TestConformanceHub(t *testing.T) {
	TestLink(t, hubPair(PipeConfig{}))
}

func TestConformanceHubLossy(t *testing.T) {
	TestLink(t, hubPair(PipeConfig{Loss: 0.1, Seed: 2, DropWhenFull: true}),
		Options{Lossy: true, Retry: 20 * time.Millisecond, Wait: 2 * time.Second})
}
