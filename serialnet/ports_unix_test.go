//go:build unix

package serialnet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUncheckedPortsAsNobody: for a user who may not open them, built-in
// ports (/dev/ttyS*, stood in for by files) are reported as not checked,
// with what to do, rather than left out silently; a port anyone may open
// is not.
func TestUncheckedPortsAsNobody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it runs a child as user nobody")
	}
	dir, err := os.MkdirTemp("", "serialnet-ports") // one nobody may read
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	for name, mode := range map[string]os.FileMode{"ttyS0": 0o600, "ttyS1": 0o600, "ttyS2": 0o666} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	cdir, err := os.MkdirTemp("", "serialnet-child")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(cdir)
	os.Chmod(cdir, 0o755)
	bin, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(cdir, "serialnet.test")
	if err := os.WriteFile(child, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(child, "-test.run=^TestUncheckedChild$", "-test.v")
	cmd.Env = append(os.Environ(), "SERIALNET_CHILD_UNCHECKED="+filepath.Join(dir, "ttyS*"))
	runAsNobody(cmd)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child as nobody: %v\n%s", err, out)
	}
	want := "UNCHECKED=" + filepath.Join(dir, "ttyS0") + "," + filepath.Join(dir, "ttyS1") + "\n"
	if !strings.Contains(string(out), want) {
		t.Errorf("child said:\n%s\nwant %q", out, want)
	}
	if !strings.Contains(string(out), "HINT=") || !strings.Contains(string(out), "only root may open it") {
		t.Errorf("child said:\n%s\nwant the hint saying who may open them", out)
	}
	if !strings.Contains(string(out), "OPEN=\n") {
		t.Errorf("child said:\n%s\nwant no hint for the port anyone may open", out)
	}
}

// TestUncheckedChild is the child process of TestUncheckedPortsAsNobody.
func TestUncheckedChild(t *testing.T) {
	glob := os.Getenv("SERIALNET_CHILD_UNCHECKED")
	if glob == "" {
		t.Skip("child process of TestUncheckedPortsAsNobody")
	}
	builtinPorts = glob
	un := Unchecked(nil)
	fmt.Printf("UNCHECKED=%s\n", strings.Join(un, ","))
	if len(un) > 0 {
		fmt.Printf("HINT=%s\n", NoAccess(un[0]))
	}
	fmt.Printf("OPEN=%s\n", NoAccess(filepath.Join(filepath.Dir(glob), "ttyS2")))
}
