package serialnet

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.bug.st/serial"

	"github.com/p2plink/p2plink/link"
)

// libraryPortClosed returns the error go.bug.st/serial gives a Read on a
// closed port: a *serial.PortError with code PortClosed and no Unwrap.
func libraryPortClosed(t *testing.T) error {
	p := newPty(t)
	port, err := serial.Open(p.path, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	port.Close()
	_, err = port.Read(make([]byte, 1))
	var pe *serial.PortError
	if !errors.As(err, &pe) || pe.Code() != serial.PortClosed {
		t.Fatalf("the library's read after close returned %#v, want PortError PortClosed", err)
	}
	return err
}

func TestTranslate(t *testing.T) {
	portClosed := libraryPortClosed(t)
	fileClosed := &fs.PathError{Op: "write", Path: "/dev/ttyUSB0", Err: os.ErrClosed}
	deadline := &fs.PathError{Op: "write", Path: "/dev/ttyUSB0", Err: os.ErrDeadlineExceeded}
	eio := &fs.PathError{Op: "write", Path: "/dev/ttyUSB0", Err: syscall.EIO}
	type want int
	const (
		data want = iota
		timeout
		closed
		disconnected
	)
	for _, tc := range []struct {
		name   string
		n      int
		err    error
		closed bool
		want   want
	}{
		{"bytes read", 5, nil, false, data},
		{"read timeout (0, nil) is not EOF", 0, nil, false, timeout},
		{"PortClosed after our Close", 0, portClosed, true, closed},
		{"PortClosed without our Close: hung up", 0, portClosed, false, disconnected},
		{"EIO after unplug", 0, syscall.EIO, false, disconnected},
		{"EIO from a write", 0, eio, false, disconnected},
		{"ENXIO: device gone", 0, syscall.ENXIO, false, disconnected},
		{"ENODEV: device gone", 0, syscall.ENODEV, false, disconnected},
		{"EIO after our Close", 0, syscall.EIO, true, closed},
		{"our descriptor closed by Close", 0, fileClosed, true, closed},
		{"our descriptor closed by the reader after unplug", 0, fileClosed, false, disconnected},
		{"write deadline", 0, deadline, false, timeout},
		{"io.EOF", 0, io.EOF, false, disconnected},
		{"bytes and an error", 3, syscall.EIO, false, disconnected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := translate("/dev/ttyUSB0", tc.n, tc.err, tc.closed)
			is := func(target error) bool { return errors.Is(got, target) }
			switch tc.want {
			case data:
				if got != nil {
					t.Fatalf("got %v, want nil", got)
				}
			case timeout:
				if !is(os.ErrDeadlineExceeded) || is(io.EOF) || is(link.ErrDisconnected) {
					t.Fatalf("got %v, want os.ErrDeadlineExceeded only", got)
				}
			case closed:
				if !is(net.ErrClosed) || is(link.ErrDisconnected) {
					t.Fatalf("got %v, want net.ErrClosed only", got)
				}
			case disconnected:
				if !is(link.ErrDisconnected) || is(net.ErrClosed) || is(os.ErrDeadlineExceeded) {
					t.Fatalf("got %v, want link.ErrDisconnected only", got)
				}
				if !is(tc.err) {
					t.Fatalf("got %v, which does not wrap the cause %v", got, tc.err)
				}
				if !strings.Contains(got.Error(), "/dev/ttyUSB0") {
					t.Fatalf("%q does not name the port", got)
				}
			}
		})
	}
}

func TestTranslateControl(t *testing.T) {
	for _, tc := range []struct {
		err         error
		unsupported bool
	}{
		{nil, false},
		{syscall.ENOTTY, true},
		{syscall.EINVAL, true},
		{syscall.EIO, false},
	} {
		got := translateControl(tc.err)
		if tc.err == nil {
			if got != nil {
				t.Errorf("nil → %v", got)
			}
			continue
		}
		if errors.Is(got, errors.ErrUnsupported) != tc.unsupported || !errors.Is(got, tc.err) {
			t.Errorf("%v → %v (unsupported %v)", tc.err, got, tc.unsupported)
		}
	}
}

func TestOpenErrorClassification(t *testing.T) {
	s, _ := Config{}.resolve()
	path := "/dev/ttyUSB7"
	some := func() ([]PortInfo, error) {
		return []PortInfo{
			{Path: "/dev/ttyUSB0", USB: true, VID: "0403", PID: "6001", Manufacturer: "FTDI", Product: "FT232R USB UART", SerialNumber: "A10K4L3P"},
			{Path: "/dev/ttyS0"},
		}, nil
	}
	none := func() ([]PortInfo, error) { return nil, nil }
	failing := func() ([]PortInfo, error) { return nil, errors.New("sysfs unreadable") }
	pathErr := func(e syscall.Errno) error { return &fs.PathError{Op: "open", Path: path, Err: e} }
	for _, tc := range []struct {
		name  string
		err   error
		ports func() ([]PortInfo, error)
		kind  error
		says  []string
	}{
		{"missing, others exist", pathErr(syscall.ENOENT), some, ErrNoSuchPort,
			[]string{"no such serial port", "/dev/ttyUSB0 (USB 0403:6001 FTDI FT232R USB UART, serial A10K4L3P)", "/dev/ttyS0"}},
		{"missing, none exist", pathErr(syscall.ENOENT), none, ErrNoSuchPort, []string{"no serial ports were found", "plugged in"}},
		{"missing, listing fails", pathErr(syscall.ENOENT), failing, ErrNoSuchPort, []string{"could not be listed", "sysfs unreadable"}},
		{"permission", pathErr(syscall.EACCES), none, ErrPermission, []string{"permission denied"}},
		{"busy", pathErr(syscall.EBUSY), none, ErrBusy, []string{"busy", "fuser"}},
		{"library busy", &serial.PortError{}, none, ErrBusy, []string{"busy"}},
		{"not a tty", pathErr(syscall.ENOTTY), none, ErrNotSerialPort, []string{"not a usable serial port", "115200 8N1"}},
		{"other", pathErr(syscall.EIO), none, ErrNotSerialPort, []string{"plugged in"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := openError(path, &s, tc.err, tc.ports)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("%v: does not match %v", err, tc.kind)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("%v does not wrap the cause %v", err, tc.err)
			}
			var oe *OpenError
			if !errors.As(err, &oe) || oe.Path != path {
				t.Fatalf("%#v is not an *OpenError for %s", err, path)
			}
			for _, s := range append(tc.says, path) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not say %q", err, s)
				}
			}
		})
	}
}

func TestPermissionHint(t *testing.T) {
	got := permissionHintFor("/dev/ttyUSB0", 0o660, "root", "dialout")
	if !strings.Contains(got, "sudo usermod -aG dialout $USER") {
		t.Errorf("group-writable device: %q", got)
	}
	got = permissionHintFor("/dev/ttyUSB0", 0o600, "root", "root")
	if !strings.Contains(got, "only root may open it") || strings.Contains(got, "usermod") {
		t.Errorf("owner-only device: %q", got)
	}
}

func TestOpenNoSuchPort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ttyUSB9")
	_, err := Open(path, Config{})
	if !errors.Is(err, ErrNoSuchPort) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open(%s): %v, want ErrNoSuchPort", path, err)
	}
	if !strings.Contains(err.Error(), "serial ports") {
		t.Errorf("%q does not list the ports", err)
	}
	t.Log(err)
}

func TestOpenNotSerial(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(path, []byte("not a tty"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Config{})
	if !errors.Is(err, ErrNotSerialPort) {
		t.Fatalf("Open(regular file): %v, want ErrNotSerialPort", err)
	}
	t.Log(err)
}

func TestOpenInvalidConfig(t *testing.T) {
	p := newPty(t)
	for _, tc := range []struct {
		cfg  Config
		says string
	}{
		{Config{Baud: -9600}, "baud rate -9600"},
		{Config{Baud: 1}, "baud rate 1: use 50 or more"},
		{Config{Baud: 49}, "baud rate 49: use 50 or more"},
		{Config{DataBits: 9}, "9 data bits"},
		{Config{DataBits: 4}, "4 data bits"},
		{Config{Parity: 7}, "parity 7"},
		{Config{StopBits: 5}, "stop bits 5"},
		{Config{StopBits: StopBits1Half}, "1.5 stop bits"},
		{Config{MTU: 70000}, "MTU 70000"},
		{Config{MTU: -1}, "MTU -1"},
		{Config{ReadTimeout: -time.Second}, "read timeout"},
		{Config{ReopenInterval: -time.Second}, "reopen interval"},
	} {
		_, err := Open(p.path, tc.cfg)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("Open with %+v: %v, want ErrInvalidConfig saying %q", tc.cfg, err, tc.says)
		}
	}
	// Every legal setting opens on a pty (which accepts odd rates).
	for _, cfg := range []Config{
		{Baud: 300, DataBits: 7, Parity: ParityEven, StopBits: StopBits2},
		{Baud: 1_000_000, Parity: ParityOdd},
		{Baud: 123457, Parity: ParityMark},
		{Parity: ParitySpace, MTU: 65535},
	} {
		l, err := Open(p.path, cfg)
		if err != nil {
			t.Errorf("Open with %+v: %v", cfg, err)
			continue
		}
		l.Close()
	}
}

// openAsNobody opens path with Open in a child process running as user
// nobody, and returns which sentinel the error matched and its message.
func openAsNobody(t *testing.T, path string) (kind, msg string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: it chowns a pty and opens it as user nobody")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	// The child runs a copy of this test binary that nobody can execute.
	dir, err := os.MkdirTemp("", "serialnet-child")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(dir, "serialnet.test")
	if err := os.WriteFile(child, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(child, "-test.run=^TestOpenChild$", "-test.v")
	cmd.Env = append(os.Environ(), "SERIALNET_CHILD_OPEN="+path)
	runAsNobody(cmd)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child as nobody: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if k, ok := strings.CutPrefix(line, "KIND="); ok {
			kind = k
		}
		if m, ok := strings.CutPrefix(line, "MESSAGE="); ok {
			msg = m
		}
	}
	t.Logf("as nobody: %s", msg)
	return kind, msg
}

// TestOpenChild is the child process of openAsNobody.
func TestOpenChild(t *testing.T) {
	path := os.Getenv("SERIALNET_CHILD_OPEN")
	if path == "" {
		t.Skip("child process of openAsNobody")
	}
	l, err := Open(path, Config{})
	if err == nil {
		l.Close()
	}
	kind := "other"
	for _, k := range []struct {
		name string
		err  error
	}{{"none", nil}, {"permission", ErrPermission}, {"busy", ErrBusy}, {"nosuchport", ErrNoSuchPort}} {
		if errors.Is(err, k.err) {
			kind = k.name
		}
	}
	fmt.Printf("KIND=%s\nMESSAGE=%v\n", kind, err)
}

// TestOpenPermissionDenied opens a pty as user nobody and checks that the
// error names the group to join.
func TestOpenPermissionDenied(t *testing.T) {
	p := newPty(t)
	for _, tc := range []struct {
		gid  int
		mode os.FileMode
		says string
	}{
		{20, 0o660, "usermod -aG dialout"}, // Debian's dialout
		{0, 0o600, "only root may open it"},
	} {
		if err := os.Chown(p.path, 0, tc.gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p.path, tc.mode); err != nil {
			t.Fatal(err)
		}
		kind, msg := openAsNobody(t, p.path)
		if kind != "permission" || !strings.Contains(msg, tc.says) {
			t.Errorf("mode %04o gid %d: %s error %q, want ErrPermission saying %q", tc.mode, tc.gid, kind, msg, tc.says)
		}
	}
}

// TestOpenBusy opens, as user nobody, a port a Link holds: the Link took
// exclusive access (TIOCEXCL, which root ignores, hence the child).
func TestOpenBusy(t *testing.T) {
	p := newPty(t)
	if err := os.Chown(p.path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	l := openLink(t, p.path, testConfig(t))
	kind, msg := openAsNobody(t, p.path)
	if kind != "busy" || !strings.Contains(msg, "fuser") {
		t.Errorf("second open: %s error %q, want ErrBusy", kind, msg)
	}
	l.Close()
	if kind, msg := openAsNobody(t, p.path); kind != "none" {
		t.Errorf("open after Close: %s error %q, want success", kind, msg)
	}
}

func TestPorts(t *testing.T) {
	ports, err := Ports()
	if err != nil {
		t.Fatalf("Ports: %v", err)
	}
	for _, p := range ports {
		if p.Path == "" {
			t.Errorf("port without a path: %+v", p)
		}
		t.Log(p)
	}
}

// TestOpenBusyAsRoot: a second Open of a port a Link holds is refused with
// ErrBusy even for root, whom the exclusive open of the serial library
// does not stop (two p2plinks on one port split its bytes; found by
// review); after Close the port opens again.
func TestOpenBusyAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the exclusive open already stops others than root")
	}
	p := newPty(t)
	l := openLink(t, p.path, testConfig(t))
	if l2, err := Open(p.path, testConfig(t)); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "another p2plink") {
		if l2 != nil {
			l2.Close()
		}
		t.Fatalf("second Open as root: %v, want ErrBusy naming another p2plink", err)
	}
	l.Close()
	l3, err := Open(p.path, testConfig(t))
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	l3.Close()
}
