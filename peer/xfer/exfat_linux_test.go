package xfer

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNameOnExFAT: received onto an exFAT file system (an image on a loop
// device, mounted with exfat-fuse: the kind of a USB stick), a file whose
// name exFAT refuses (':', '?'), and a folder so named with what it holds,
// is refused before its data comes, saying so, and the others are stored.
func TestNameOnExFAT(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a file system image")
	}
	for _, tool := range []string{"mkfs.exfat", "mount.exfat-fuse", "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian packages exfatprogs, exfat-fuse, mount)", tool)
		}
	}
	img := filepath.Join(t.TempDir(), "stick.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 32<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.exfat", img).CombinedOutput(); err != nil {
		t.Skipf("cannot make an exFAT image: %v: %s", err, out)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	dst := t.TempDir()
	if out, err := exec.Command("mount.exfat-fuse", dev, dst).CombinedOutput(); err != nil {
		t.Skipf("cannot mount exFAT with FUSE: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dst).Run() })

	src := t.TempDir()
	writeFile(t, filepath.Join(src, "d", "meeting 10:30.txt"), []byte("notes"), 0o644)
	writeFile(t, filepath.Join(src, "d", "why?.txt"), []byte("because"), 0o644)
	writeFile(t, filepath.Join(src, "d", "ok.txt"), []byte("fine"), 0o644)
	writeFile(t, filepath.Join(src, "d", "at 10:30", "inside.txt"), []byte("x"), 0o644)
	o := run(t, []string{filepath.Join(src, "d")}, dst, SendOptions{}, ReceiveOptions{})
	for _, name := range []string{"d/meeting 10:30.txt", "d/why?.txt", "d/at 10:30", "d/at 10:30/inside.txt"} {
		f := statusOf(t, o.rres, name)
		if f.Status != StatusFailed || f.Err == nil || !strings.Contains(f.Err.Error(), "refuses the name") {
			t.Errorf("%s: %v %v; want refused, saying its file system refuses the name", name, f.Status, f.Err)
		}
		if f.Sent != 0 {
			t.Errorf("%s: %d bytes received for a name refused", name, f.Sent)
		}
	}
	if got, err := os.ReadFile(filepath.Join(dst, "d", "ok.txt")); err != nil || string(got) != "fine" {
		t.Errorf("ok.txt: %q %v", got, err) // exFAT keeps no permission bits: content only
	}
	if s := statusOf(t, o.sres, "d/why?.txt"); s.Status != StatusFailed || !errors.Is(s.Err, ErrRefused) {
		t.Errorf("sender: why?.txt %v %v, want refused", s.Status, s.Err)
	}
}
