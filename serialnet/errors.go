package serialnet

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"go.bug.st/serial"

	"github.com/p2plink/p2plink/link"
)

// Errors Open returns, wrapped in an *OpenError; test with errors.Is.
var (
	// ErrNoSuchPort reports a path that names no device. The OpenError lists
	// the serial ports that do exist.
	ErrNoSuchPort = errors.New("serialnet: no such serial port")
	// ErrPermission reports a device the user may not open. The OpenError
	// says which group owns it.
	ErrPermission = errors.New("serialnet: permission denied")
	// ErrBusy reports a port that another program holds exclusively.
	ErrBusy = errors.New("serialnet: serial port busy")
	// ErrNotSerialPort reports a path that is not a serial device, or one
	// that refused the line settings.
	ErrNotSerialPort = errors.New("serialnet: not a usable serial port")
	// ErrInvalidConfig reports a Config value out of range.
	ErrInvalidConfig = errors.New("serialnet: invalid configuration")
)

// OpenError is the error Open returns: what went wrong (Err, one of the
// sentinels above), the error underneath (Cause, may be nil) and what to do
// about it (Hint). errors.Is matches both Err and Cause.
type OpenError struct {
	Path  string
	Err   error
	Cause error
	// Hint tells the user what to do, in a sentence; it is part of Error().
	Hint string
	// Ports lists the serial ports that exist, for ErrNoSuchPort.
	Ports []PortInfo
}

// Error returns "serialnet: open PATH: WHAT (CAUSE); HINT".
func (e *OpenError) Error() string {
	var b strings.Builder
	b.WriteString("serialnet: open ")
	b.WriteString(e.Path)
	b.WriteString(": ")
	b.WriteString(strings.TrimPrefix(e.Err.Error(), "serialnet: "))
	if e.Cause != nil {
		b.WriteString(" (")
		b.WriteString(e.Cause.Error())
		b.WriteString(")")
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap returns Err and Cause.
func (e *OpenError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

// openError classifies an error from opening path (ours or the library's)
// and builds the OpenError that tells the user what to do. ports is called
// only for ErrNoSuchPort.
func openError(path string, s *settings, err error, ports func() ([]PortInfo, error)) error {
	var pe *serial.PortError
	isPE := errors.As(err, &pe)
	code := serial.PortErrorCode(-1)
	if isPE {
		code = pe.Code()
	}
	switch {
	case errors.Is(err, fs.ErrNotExist) || code == serial.PortNotFound:
		e := &OpenError{Path: path, Err: ErrNoSuchPort, Cause: err}
		list, lerr := ports()
		e.Ports = list
		e.Hint = noSuchPortHint(list, lerr)
		return e
	case errors.Is(err, fs.ErrPermission) || code == serial.PermissionDenied:
		return &OpenError{Path: path, Err: ErrPermission, Cause: err, Hint: permissionHint(path)}
	case errors.Is(err, syscall.EBUSY) || code == serial.PortBusy:
		return &OpenError{Path: path, Err: ErrBusy, Cause: err,
			Hint: "another program has it open exclusively; find it with `fuser -v " + path + "` and close it"}
	case code == serial.InvalidSpeed || code == serial.InvalidDataBits ||
		code == serial.InvalidParity || code == serial.InvalidStopBits:
		return &OpenError{Path: path, Err: ErrInvalidConfig, Cause: err,
			Hint: "the driver refused " + s.lineSettings() + "; pick settings the adapter supports"}
	case code == serial.InvalidSerialPort || errors.Is(err, syscall.ENOTTY):
		return &OpenError{Path: path, Err: ErrNotSerialPort, Cause: err,
			Hint: "it is not a serial device, or it refused " + s.lineSettings() +
				"; give a path like /dev/ttyUSB0 or /dev/serial/by-id/..., and settings the adapter supports"}
	}
	return &OpenError{Path: path, Err: ErrNotSerialPort, Cause: err,
		Hint: "check that the device is a serial port and that it is plugged in"}
}

// noSuchPortHint lists the ports that exist.
func noSuchPortHint(list []PortInfo, err error) string {
	if err != nil {
		return "and the serial ports could not be listed (" + err.Error() + ")"
	}
	if len(list) == 0 {
		return "no serial ports were found: is the adapter plugged in? (`dmesg | tail` shows what the kernel saw)"
	}
	var b strings.Builder
	b.WriteString("serial ports that exist: ")
	for i, p := range list {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// permissionHintFor builds the hint from a device's mode and group name.
func permissionHintFor(path string, perm fs.FileMode, owner, group string) string {
	if perm&0o060 == 0o060 && group != "root" {
		return fmt.Sprintf("%s is owned by group %s (mode %04o): add yourself to group %s with "+
			"`sudo usermod -aG %s $USER`, then log out and back in", path, group, perm, group, group)
	}
	return fmt.Sprintf("%s has mode %04o, owner %s, group %s, so only %s may open it: "+
		"add a udev rule that sets GROUP=\"dialout\", MODE=\"0660\", or run as %s", path, uint32(perm), owner, group, owner, owner)
}

// userName returns the name of user uid, or its number when it has none.
func userName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return u.Username
	}
	return id
}

// groupName returns the name of group gid, or its number when it has none.
func groupName(gid uint32) string {
	id := strconv.FormatUint(uint64(gid), 10)
	if g, err := user.LookupGroupId(id); err == nil {
		return g.Name
	}
	return id
}

// translate maps an error from the serial library or the device to the Link
// contract: (0, nil) from a read is a timeout, not an end of file; anything
// after our own Close is net.ErrClosed; a deadline stays a deadline; every
// other failure means the device went away (unplugged, hung up, vanished)
// and wraps link.ErrDisconnected. n and err are a read's or write's results;
// closed reports whether the Link was closed. It returns nil when n > 0 and
// err is nil.
func translate(path string, n int, err error, closed bool) error {
	if err == nil {
		if n > 0 {
			return nil
		}
		return os.ErrDeadlineExceeded // the library's read timeout: no data yet
	}
	if closed {
		return net.ErrClosed
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return os.ErrDeadlineExceeded
	}
	return &disconnectedError{path: path, cause: err}
}

// disconnectedError reports that the port went away. It wraps
// link.ErrDisconnected and the cause.
type disconnectedError struct {
	path  string
	cause error
}

func (e *disconnectedError) Error() string {
	what := e.cause.Error()
	var pe *serial.PortError
	if errors.As(e.cause, &pe) && pe.Code() == serial.PortClosed {
		what = "the device hung up"
	} else if errors.Is(e.cause, io.EOF) {
		what = "end of file"
	}
	return "serialnet: " + e.path + " disconnected (" + what + "); the link reopens it when it comes back"
}

func (e *disconnectedError) Unwrap() []error { return []error{link.ErrDisconnected, e.cause} }

// translateControl maps an error from a modem-line call (SetDTR, SetRTS,
// GetModemStatusBits). ENOTTY and EINVAL, which ptys and some USB adapters
// return, and the library's FunctionNotImplemented become
// errors.ErrUnsupported: the line works, it just has no modem lines.
func translateControl(err error) error {
	if err == nil {
		return nil
	}
	var pe *serial.PortError
	if errors.Is(err, syscall.ENOTTY) || errors.Is(err, syscall.EINVAL) ||
		(errors.As(err, &pe) && pe.Code() == serial.FunctionNotImplemented) {
		return fmt.Errorf("serialnet: modem control lines: %w (%w)", errors.ErrUnsupported, err)
	}
	return fmt.Errorf("serialnet: modem control lines: %w", err)
}
