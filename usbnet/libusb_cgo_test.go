//go:build cgo

package usbnet

import (
	"context"
	"errors"
	"fmt"
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

// TestClaimErrors: a failure to claim the cable is classified by the
// libusb error gousb writes into its text: no access is a permission
// problem (the udev rule's hint), busy is ErrBusy, and anything else is
// neither (every failure was ErrBusy, so a permission problem was told to
// unload the kernel driver; found by review).
func TestClaimErrors(t *testing.T) {
	for _, tc := range []struct {
		in   error
		gone bool
		want error
	}{
		{fmt.Errorf("failed to claim interface 0 on cfg: %v", gousb.ErrorAccess), false, os.ErrPermission},
		{fmt.Errorf("failed to claim interface 0 on cfg: %v", gousb.ErrorBusy), false, ErrBusy},
		{fmt.Errorf("Can't detach kernel driver of the device d and interface 0: %v", gousb.ErrorNotSupported), false, ErrBusy},
		{fmt.Errorf("interface 0 on cfg is already claimed"), false, ErrBusy},
		{fmt.Errorf("failed to claim interface 0 on cfg: %v", gousb.ErrorBusy), true, link.ErrDisconnected},
		{fmt.Errorf("configuration id 1 not found in the descriptor of the device"), false, nil},
	} {
		got := claimError("cable", tc.in, tc.gone)
		for _, s := range []error{os.ErrPermission, ErrBusy, link.ErrDisconnected} {
			if errors.Is(got, s) != (s == tc.want) {
				t.Errorf("claimError(%v, gone %v) = %v; wraps %v: %v, want only %v", tc.in, tc.gone, got, s, errors.Is(got, s), tc.want)
			}
		}
	}
}
