//go:build !cgo

package usbnet

import (
	"context"
	"errors"
	"testing"
)

func TestWithoutCgo(t *testing.T) {
	if _, err := Open(context.Background(), Config{}); !errors.Is(err, ErrNoLibusb) {
		t.Fatalf("Open without cgo: %v; want ErrNoLibusb", err)
	}
	if _, err := Cables(); !errors.Is(err, ErrNoLibusb) {
		t.Fatalf("Cables without cgo: %v; want ErrNoLibusb", err)
	}
}
