//go:build cgo

package usbnet

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/google/gousb"

	"github.com/p2plink/p2plink/link"
)

func TestTranslateLibusbErrors(t *testing.T) {
	for _, tc := range []struct {
		in   error
		want error
	}{
		{gousb.ErrorAccess, os.ErrPermission},
		{gousb.ErrorNoDevice, link.ErrDisconnected},
		{gousb.ErrorBusy, ErrBusy},
		{gousb.ErrorPipe, ErrStall},
		{gousb.ErrorTimeout, os.ErrDeadlineExceeded},
		{gousb.ErrorOverflow, ErrOverflow},
		{gousb.TransferStall, ErrStall},
		{gousb.TransferNoDevice, link.ErrDisconnected},
		{gousb.TransferOverflow, ErrOverflow},
		{gousb.TransferTimedOut, os.ErrDeadlineExceeded},
		{gousb.TransferCancelled, context.Canceled},
	} {
		got := translate(tc.in)
		if !errors.Is(got, tc.want) || !errors.Is(got, tc.in) {
			t.Errorf("translate(%v) = %v; want it to wrap %v and the original", tc.in, got, tc.want)
		}
	}
	other := translate(gousb.ErrorIO)
	for _, s := range []error{os.ErrPermission, link.ErrDisconnected, ErrBusy, ErrStall} {
		if errors.Is(other, s) {
			t.Errorf("translate(ErrorIO) wraps %v", s)
		}
	}
}

// TestLibusbOnThisHost runs the real stack: on a machine without USB it
// must fail with a clear error or list nothing, never panic.
func TestLibusbOnThisHost(t *testing.T) {
	cables, err := Cables()
	if err != nil {
		t.Skipf("libusb unavailable here: %v", err)
	}
	t.Logf("bridge cables present: %v", cables)
}
