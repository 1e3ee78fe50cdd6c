package share

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2plink/p2plink/peer/xfer"
)

// fixture is a server's folder tree:
//
//	docs/            share "docs", everyone, read-only
//	  report.bin, sub/a.txt, fifo, inlink → sub/a.txt,
//	  out → ../outside, secret → ../outside/secret.txt
//	inbox/           share "inbox", read-write, ann only
//	vault/           share "vault", ann and bob, password "hunter2"
//	private/         share "private", ann only
//	outside/secret.txt
type fixture struct {
	root, docs, inbox, vault, private, outside string
	report                                     []byte
	cfg                                        *Config
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{root: t.TempDir()}
	f.docs = filepath.Join(f.root, "docs")
	f.inbox = filepath.Join(f.root, "inbox")
	f.vault = filepath.Join(f.root, "vault")
	f.private = filepath.Join(f.root, "private")
	f.outside = filepath.Join(f.root, "outside")
	f.report = randBytes(1, 300<<10)
	writeFile(t, filepath.Join(f.docs, "report.bin"), f.report)
	writeFile(t, filepath.Join(f.docs, "sub", "a.txt"), []byte("inside\n"))
	writeFile(t, filepath.Join(f.outside, "secret.txt"), []byte("SECRET\n"))
	writeFile(t, filepath.Join(f.vault, "gold.txt"), []byte("gold\n"))
	writeFile(t, filepath.Join(f.private, "diary.txt"), []byte("dear diary\n"))
	if err := os.MkdirAll(f.inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"inlink": "sub/a.txt",
		"out":    "../outside",
		"secret": "../outside/secret.txt",
		"abs":    f.outside,
	} {
		if err := os.Symlink(target, filepath.Join(f.docs, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := mkfifo(filepath.Join(f.docs, "fifo")); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	f.cfg = &Config{}
	for _, v := range []string{"docs=" + f.docs, "inbox=" + f.inbox + ":rw", "vault=" + f.vault, "private=" + f.private + ":ro"} {
		if err := f.cfg.AddFlag(v); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"inbox=" + fpAnn, "vault=" + fpAnn + "," + fpBob, "private=" + fpAnn} {
		if err := f.cfg.AllowFlag(v); err != nil {
			t.Fatal(err)
		}
	}
	f.cfg.Shares["vault"].PasswordHash = cheapHash(t, "hunter2")
	return f
}

func TestList(t *testing.T) {
	f := newFixture(t)
	srv, lb := newServer(t, f.cfg, ServerOptions{})
	want := map[Peer][]ShareInfo{
		ann: {{Name: "docs"}, {Name: "inbox", ReadWrite: true}, {Name: "private"}, {Name: "vault", Password: true}},
		bob: {{Name: "docs"}, {Name: "vault", Password: true}},
		eve: {{Name: "docs"}},
	}
	for p, w := range want {
		var got []ShareInfo
		var err error
		call(t, srv, p, func(st Stream) { got, err = List(context.Background(), st) })
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		if !slices.Equal(got, w) {
			t.Errorf("%s sees %+v, want %+v", p.Name, got, w)
		}
	}
	if !strings.Contains(lb.String(), "fingerprint="+fpEve) {
		t.Errorf("log does not name the peer's fingerprint:\n%s", lb)
	}
}

func TestLsAndGet(t *testing.T) {
	f := newFixture(t)
	srv, lb := newServer(t, f.cfg, ServerOptions{Compress: true})
	ctx := context.Background()
	var entries []Entry
	var err error
	call(t, srv, eve, func(st Stream) { entries, _, err = Ls(ctx, st, "docs", "", Auth{}) })
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, e := range entries {
		types[e.Name] = e.Type
	}
	wantTypes := map[string]string{"report.bin": "file", "sub": "dir", "fifo": "other", "inlink": "link", "out": "link", "secret": "link", "abs": "link"}
	for n, ty := range wantTypes {
		if types[n] != ty {
			t.Errorf("ls: %s is %q, want %q (all: %v)", n, types[n], ty, types)
		}
	}
	call(t, srv, eve, func(st Stream) { entries, _, err = Ls(ctx, st, "docs", "report.bin", Auth{}) })
	if err != nil || len(entries) != 1 || entries[0].Size != int64(len(f.report)) {
		t.Errorf("ls of a file: %+v, %v", entries, err)
	}

	dst := t.TempDir()
	var res xfer.Result
	call(t, srv, eve, func(st Stream) {
		res, err = Get(ctx, st, "docs", []string{"report.bin", "sub", "inlink"}, Auth{}, dst, xfer.ReceiveOptions{})
	})
	if err != nil {
		t.Fatalf("get: %v (%+v)", err, res)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "report.bin")); !bytes.Equal(got, f.report) {
		t.Error("report.bin differs")
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "sub", "a.txt")); string(got) != "inside\n" {
		t.Errorf("sub/a.txt: %q", got)
	}
	// A link inside the share to a file inside it is fetched as its target.
	if got, _ := os.ReadFile(filepath.Join(dst, "a.txt")); string(got) != "inside\n" {
		t.Errorf("inlink: %q", got)
	}
	if !strings.Contains(lb.String(), "op=get") || !strings.Contains(lb.String(), "get done") {
		t.Errorf("log:\n%s", lb)
	}
}

func TestPut(t *testing.T) {
	f := newFixture(t)
	srv, _ := newServer(t, f.cfg, ServerOptions{})
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "photos", "1.jpg"), randBytes(2, 100<<10))
	writeFile(t, filepath.Join(src, "photos", "2.jpg"), randBytes(3, 10<<10))
	var err error
	call(t, srv, ann, func(st Stream) {
		_, err = Put(context.Background(), st, "inbox", "2026/trip", []string{filepath.Join(src, "photos")}, Auth{}, false, xfer.SendOptions{})
	})
	if err != nil {
		t.Fatal(err)
	}
	got := listAll(t, f.inbox)
	want := []string{"2026", "2026/trip", "2026/trip/photos", "2026/trip/photos/1.jpg", "2026/trip/photos/2.jpg"}
	if !slices.Equal(got, want) {
		t.Errorf("inbox holds %v, want %v", got, want)
	}
}

// A read-only share refuses put, and nothing is written.
func TestPutReadOnly(t *testing.T) {
	f := newFixture(t)
	srv, _ := newServer(t, f.cfg, ServerOptions{})
	src := filepath.Join(t.TempDir(), "x.txt")
	writeFile(t, src, []byte("x"))
	for _, tc := range []struct {
		p     Peer
		share string
		want  error
	}{
		{ann, "docs", ErrReadOnly},
		{ann, "private", ErrReadOnly},
		{bob, "inbox", ErrDenied}, // read-write but not for bob
	} {
		var err error
		call(t, srv, tc.p, func(st Stream) {
			_, err = Put(context.Background(), st, tc.share, "", []string{src}, Auth{}, true, xfer.SendOptions{})
		})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s put to %s: %v, want %v", tc.p.Name, tc.share, err, tc.want)
		}
	}
	for _, d := range []string{f.docs, f.private, f.inbox} {
		for _, n := range listAll(t, d) {
			if strings.HasPrefix(n, "x.txt") {
				t.Errorf("%s was written into %s", n, d)
			}
		}
	}
}

// Paths that climb out of the share, special files and unclean names are
// refused by ls, get and put, and nothing from outside arrives.
func TestClimbingOutRefused(t *testing.T) {
	f := newFixture(t)
	srv, _ := newServer(t, f.cfg, ServerOptions{MaxFailures: 1000})
	ctx := context.Background()
	for _, tc := range []struct {
		path string
		want error
	}{
		{"..", ErrBadPath},
		{"../outside/secret.txt", ErrBadPath},
		{"sub/../../outside/secret.txt", ErrBadPath},
		{"/etc/passwd", ErrBadPath},
		{f.outside + "/secret.txt", ErrBadPath},
		{`..\outside\secret.txt`, ErrBadPath},
		{"C:/Windows/win.ini", ErrBadPath},
		{"c:secret", ErrBadPath},
		{"sub/D:", ErrBadPath},
		{"a\x00b", ErrBadPath},
		{"out", ErrForbidden},
		{"out/secret.txt", ErrForbidden},
		{"secret", ErrForbidden},
		{"abs/secret.txt", ErrForbidden},
		{"fifo", ErrForbidden},
		{"missing.txt", ErrNotFound},
		{".p2plink-partial", ErrBadPath},
	} {
		dst := t.TempDir()
		var lsErr, getErr error
		call(t, srv, eve, func(st Stream) { _, _, lsErr = Ls(ctx, st, "docs", tc.path, Auth{}) })
		call(t, srv, eve, func(st Stream) {
			_, getErr = Get(ctx, st, "docs", []string{"report.bin", tc.path}, Auth{}, dst, xfer.ReceiveOptions{})
		})
		if !errors.Is(lsErr, tc.want) || !errors.Is(getErr, tc.want) {
			t.Errorf("%q: ls: %v, get: %v; want %v", tc.path, lsErr, getErr, tc.want)
		}
		if got := listAll(t, dst); len(got) != 0 {
			t.Errorf("%q: received %v", tc.path, got)
		}
	}
	// The whole share: links and the fifo are left out, nothing from
	// outside arrives.
	dst := t.TempDir()
	var err error
	call(t, srv, eve, func(st Stream) { _, err = Get(ctx, st, "docs", nil, Auth{}, dst, xfer.ReceiveOptions{}) })
	if err != nil {
		t.Fatalf("get of the whole share: %v", err)
	}
	got := listAll(t, dst)
	if want := []string{"docs", "docs/report.bin", "docs/sub", "docs/sub/a.txt"}; !slices.Equal(got, want) {
		t.Errorf("whole share: received %v, want %v", got, want)
	}
	// put: into a folder outside, through a link or "..".
	src := filepath.Join(t.TempDir(), "planted.txt")
	writeFile(t, src, []byte("planted"))
	if err := os.Symlink(f.outside, filepath.Join(f.inbox, "escape")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want error
	}{
		{"..", ErrBadPath},
		{"../outside", ErrBadPath},
		{"/tmp", ErrBadPath},
		{"C:/", ErrBadPath},
		{"escape", ErrForbidden},
		{"escape/new", ErrForbidden},
		{".p2plink-partial/x", ErrBadPath},
	} {
		call(t, srv, ann, func(st Stream) {
			_, err = Put(ctx, st, "inbox", tc.path, []string{src}, Auth{}, false, xfer.SendOptions{})
		})
		if !errors.Is(err, tc.want) {
			t.Errorf("put into %q: %v, want %v", tc.path, err, tc.want)
		}
	}
	if got := listAll(t, f.outside); !slices.Equal(got, []string{"secret.txt"}) {
		t.Errorf("outside now holds %v", got)
	}
}

// A device file is refused like a fifo (needs root to make one).
func TestDeviceRefused(t *testing.T) {
	f := newFixture(t)
	dev := filepath.Join(f.docs, "null")
	if err := mknodNull(dev); err != nil {
		t.Skipf("cannot make a device node (needs root): %v", err)
	}
	srv, _ := newServer(t, f.cfg, ServerOptions{})
	var err error
	call(t, srv, eve, func(st Stream) {
		_, err = Get(context.Background(), st, "docs", []string{"null"}, Auth{}, t.TempDir(), xfer.ReceiveOptions{})
	})
	if !errors.Is(err, ErrForbidden) {
		t.Errorf("get of a device: %v, want ErrForbidden", err)
	}
}

// A peer not on the allow list is refused every operation on the share.
func TestNotOnAllowList(t *testing.T) {
	f := newFixture(t)
	srv, lb := newServer(t, f.cfg, ServerOptions{MaxFailures: 1000})
	ctx := context.Background()
	dst := t.TempDir()
	var lsErr, getErr error
	call(t, srv, bob, func(st Stream) { _, _, lsErr = Ls(ctx, st, "private", "", Auth{}) })
	call(t, srv, bob, func(st Stream) {
		_, getErr = Get(ctx, st, "private", []string{"diary.txt"}, Auth{}, dst, xfer.ReceiveOptions{})
	})
	if !errors.Is(lsErr, ErrDenied) || !errors.Is(getErr, ErrDenied) {
		t.Errorf("ls: %v, get: %v; want ErrDenied", lsErr, getErr)
	}
	if got := listAll(t, dst); len(got) != 0 {
		t.Errorf("received %v", got)
	}
	// The same peer on the list gets in.
	call(t, srv, ann, func(st Stream) { _, _, lsErr = Ls(ctx, st, "private", "", Auth{}) })
	if lsErr != nil {
		t.Errorf("ann: %v", lsErr)
	}
	if !strings.Contains(lb.String(), "fingerprint="+fpBob) || !strings.Contains(lb.String(), deniedMsg) {
		t.Errorf("refusal not logged with the peer:\n%s", lb)
	}
}

// rawAnswer sends a request and returns the server's answer bytes.
func rawAnswer(t *testing.T, srv *Server, p Peer, req request) []byte {
	t.Helper()
	var raw []byte
	call(t, srv, p, func(st Stream) {
		req.V = Version
		if err := writeMsg(st, req); err != nil {
			t.Fatal(err)
		}
		var hdr [4]byte
		if _, err := io.ReadFull(st, hdr[:]); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		io.ReadFull(st, body)
		raw = append(hdr[:], body...)
	})
	return raw
}

// A share that does not exist, one the peer may not see, a wrong password
// and a missing one get byte-for-byte the same answer.
func TestDeniedAnswersIdentical(t *testing.T) {
	f := newFixture(t)
	srv, _ := newServer(t, f.cfg, ServerOptions{MaxFailures: 1000})
	cases := []struct {
		what string
		p    Peer
		req  request
	}{
		{"no such share", bob, request{Op: OpLs, Share: "nonexistent"}},
		{"no such share, with a password", bob, request{Op: OpLs, Share: "nonexistent", Password: "hunter2"}},
		{"not on the allow list", bob, request{Op: OpLs, Share: "private"}},
		{"not allowed, right password of another share", eve, request{Op: OpLs, Share: "vault", Password: "hunter2"}},
		{"wrong password", bob, request{Op: OpLs, Share: "vault", Password: "hunter3"}},
		{"no password", bob, request{Op: OpLs, Share: "vault"}},
		{"get, wrong password", bob, request{Op: OpGet, Share: "vault", Paths: []string{"gold.txt"}, Password: "x"}},
		{"put, not allowed", bob, request{Op: OpPut, Share: "inbox", Path: ""}},
	}
	var first []byte
	for _, c := range cases {
		raw := rawAnswer(t, srv, c.p, c.req)
		var r response
		if err := readMsg(bytes.NewReader(raw), maxResponse, &r); err != nil || r.Status != StatusDenied || r.Msg != deniedMsg {
			t.Errorf("%s: answer %q (%v)", c.what, raw, err)
		}
		if first == nil {
			first = raw
		} else if !bytes.Equal(raw, first) {
			t.Errorf("%s: answer %q differs from %q", c.what, raw, first)
		}
	}
	// The right password opens the share.
	raw := rawAnswer(t, srv, bob, request{Op: OpLs, Share: "vault", Password: "hunter2"})
	var r response
	if err := readMsg(bytes.NewReader(raw), maxResponse, &r); err != nil || r.Status != StatusOK || len(r.Entries) != 1 {
		t.Errorf("right password: %+v %v", r, err)
	}
}

// Five failures in a minute lock the peer out, even from the right password
// and from shares that do not exist or it may not see, until the lockout
// ends; other peers, and shares open to it without a password, are not
// affected.
func TestPasswordLockout(t *testing.T) {
	f := newFixture(t)
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv, lb := newServer(t, f.cfg, ServerOptions{Now: clk.Now})
	ctx := context.Background()
	ls := func(p Peer, share, pw string) error {
		var err error
		call(t, srv, p, func(st Stream) { _, _, err = Ls(ctx, st, share, "", Auth{Password: pw}) })
		return err
	}
	// Failures older than the window are forgotten.
	for range 4 {
		if err := ls(bob, "vault", "guess"); !errors.Is(err, ErrDenied) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	clk.Add(DefaultWindow)
	for i := range DefaultMaxFailures {
		if err := ls(bob, "vault", "guess"); !errors.Is(err, ErrDenied) {
			t.Fatalf("attempt %d: %v, want ErrDenied", i+1, err)
		}
	}
	for _, c := range []struct{ share, pw string }{{"vault", "hunter2"}, {"nonexistent", ""}, {"private", ""}, {"nonexistent", "hunter2"}} {
		err := ls(bob, c.share, c.pw)
		if !errors.Is(err, ErrLocked) {
			t.Errorf("locked out, ls %s: %v, want ErrLocked", c.share, err)
		}
	}
	for _, pw := range []string{"", "hunter2"} {
		if err := ls(bob, "docs", pw); err != nil {
			t.Errorf("locked out, ls docs (open without a password) with password %q: %v", pw, err)
		}
	}
	if err := ls(ann, "vault", "hunter2"); err != nil {
		t.Errorf("another peer: %v", err)
	}
	clk.Add(DefaultLockout - time.Second)
	if err := ls(bob, "vault", "hunter2"); !errors.Is(err, ErrLocked) {
		t.Errorf("1 s before the end: %v", err)
	}
	clk.Add(time.Second)
	if err := ls(bob, "vault", "hunter2"); err != nil {
		t.Errorf("after the lockout: %v", err)
	}
	if !strings.Contains(lb.String(), "locked out") {
		t.Errorf("lockout not logged:\n%s", lb)
	}
}

// TestLockoutNamesShare: the lockout says which share's failed attempts
// caused it, and that open shares still work (a public share answered
// "too many failed attempts" after wrong passwords on another was
// confusing; found by a field test). Failures on several share names count
// against one budget: switching names gives no more guesses.
func TestLockoutNamesShare(t *testing.T) {
	f := newFixture(t)
	srv, _ := newServer(t, f.cfg, ServerOptions{})
	ctx := context.Background()
	ls := func(share, pw string) error {
		var err error
		call(t, srv, bob, func(st Stream) { _, _, err = Ls(ctx, st, share, "", Auth{Password: pw}) })
		return err
	}
	guesses := []struct{ share, pw string }{{"vault", "a"}, {"vault", "b"}, {"vault2", "c"}, {"vault", "d"}, {"vault3", "e"}}
	for i, g := range guesses {
		if err := ls(g.share, g.pw); !errors.Is(err, ErrDenied) {
			t.Fatalf("guess %d on %s: %v, want ErrDenied", i+1, g.share, err)
		}
	}
	err := ls("vault", "hunter2")
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("after %d guesses on three names: %v, want ErrLocked", len(guesses), err)
	}
	msg := err.Error()
	for _, want := range []string{`"vault"`, `"vault3"`, `"vault2"`, "refused for 300 s", "open without one still work"} {
		if !strings.Contains(msg, want) {
			t.Errorf("lockout message %q lacks %s", msg, want)
		}
	}
	if err := ls("docs", ""); err != nil {
		t.Errorf("ls docs while locked out of vault: %v", err)
	}
}

// An existing file is never overwritten: not on get, not on put, unless
// asked.
func TestNameCollision(t *testing.T) {
	f := newFixture(t)
	srv, _ := newServer(t, f.cfg, ServerOptions{})
	ctx := context.Background()
	dst := t.TempDir()
	writeFile(t, filepath.Join(dst, "report.bin"), []byte("mine"))
	var err error
	call(t, srv, eve, func(st Stream) {
		_, err = Get(ctx, st, "docs", []string{"report.bin"}, Auth{}, dst, xfer.ReceiveOptions{})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "report.bin")); string(got) != "mine" {
		t.Error("get overwrote an existing file")
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "report (1).bin")); !bytes.Equal(got, f.report) {
		t.Error("the fetched file is not stored beside it")
	}

	writeFile(t, filepath.Join(f.inbox, "note.txt"), []byte("old"))
	src := filepath.Join(t.TempDir(), "note.txt")
	writeFile(t, src, []byte("new"))
	put := func(overwrite bool) {
		call(t, srv, ann, func(st Stream) {
			_, err = Put(ctx, st, "inbox", "", []string{src}, Auth{}, overwrite, xfer.SendOptions{})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	put(false)
	if got, _ := os.ReadFile(filepath.Join(f.inbox, "note.txt")); string(got) != "old" {
		t.Error("put overwrote an existing file")
	}
	if got, _ := os.ReadFile(filepath.Join(f.inbox, "note (1).txt")); string(got) != "new" {
		t.Errorf("note (1).txt: %q", got)
	}
	put(true)
	if got, _ := os.ReadFile(filepath.Join(f.inbox, "note.txt")); string(got) != "new" {
		t.Error("overwrite asked for, not done")
	}
}

// A file that changes on the serving side during a get is detected and not
// stored.
func TestGetFileChanged(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(f.docs, "big.bin")
	writeFile(t, path, randBytes(4, 8*xfer.ChunkSize))
	changed := false
	opts := ServerOptions{sendProgress: func(p xfer.Progress) {
		if changed || p.FileDone < 2*xfer.ChunkSize {
			return
		}
		changed = true
		fh, _ := os.OpenFile(path, os.O_WRONLY, 0)
		fh.WriteAt([]byte("CHANGED"), 6*xfer.ChunkSize)
		fh.Close()
	}}
	srv, _ := newServer(t, f.cfg, opts)
	dst := t.TempDir()
	var err error
	serr := call(t, srv, eve, func(st Stream) {
		_, err = Get(context.Background(), st, "docs", []string{"big.bin"}, Auth{}, dst, xfer.ReceiveOptions{})
	})
	if !changed {
		t.Fatal("the file was not changed during the transfer")
	}
	if !errors.Is(err, xfer.ErrChanged) || !errors.Is(serr, xfer.ErrChanged) {
		t.Errorf("get: %v; server: %v; want xfer.ErrChanged", err, serr)
	}
	if got := listAll(t, dst); len(got) != 0 {
		t.Errorf("kept %v", got)
	}
}

// A serving peer whose data does not match what it announced (here: a byte
// changed in flight, after the manifest) fails the get, and nothing corrupt
// is stored.
func TestGetLyingServer(t *testing.T) {
	f := newFixture(t)
	srv, _ := newServer(t, f.cfg, ServerOptions{})
	dst := t.TempDir()
	var err error
	mangle := func(off int64, p []byte) {
		const at = 200 << 10 // inside report.bin's data
		if off <= at && at < off+int64(len(p)) {
			p[at-off] ^= 0x55
		}
	}
	callMangled(t, srv, eve, mangle, func(st Stream) {
		_, err = Get(context.Background(), st, "docs", []string{"report.bin"}, Auth{}, dst, xfer.ReceiveOptions{})
	})
	if err == nil {
		t.Fatal("get of corrupted data succeeded")
	}
	if !errors.Is(err, xfer.ErrVerify) && !errors.Is(err, xfer.ErrProtocol) {
		t.Errorf("get: %v, want xfer.ErrVerify or ErrProtocol", err)
	}
	if got := listAll(t, dst); len(got) != 0 {
		t.Errorf("kept %v", got)
	}
}

// A get cut in the middle resumes: the second run does not fetch again what
// arrived intact.
func TestGetResumes(t *testing.T) {
	f := newFixture(t)
	data := randBytes(5, 10*xfer.ChunkSize)
	writeFile(t, filepath.Join(f.docs, "big.bin"), data)
	srv, _ := newServer(t, f.cfg, ServerOptions{})
	dst := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var err error
	call(t, srv, eve, func(st Stream) {
		_, err = Get(ctx, st, "docs", []string{"big.bin"}, Auth{}, dst, xfer.ReceiveOptions{Progress: func(p xfer.Progress) {
			if p.FileDone >= 5*xfer.ChunkSize {
				cancel()
			}
		}})
	})
	if err == nil {
		t.Fatal("the cut get succeeded")
	}
	var res xfer.Result
	call(t, srv, eve, func(st Stream) {
		res, err = Get(context.Background(), st, "docs", []string{"big.bin"}, Auth{}, dst, xfer.ReceiveOptions{})
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed < 5*xfer.ChunkSize || res.Bytes > 5*xfer.ChunkSize {
		t.Errorf("rerun resumed %d and moved %d bytes of %d", res.Resumed, res.Bytes, len(data))
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "big.bin")); !bytes.Equal(got, data) {
		t.Error("resumed file differs")
	}
}

// A put onto a disk too small for the file is refused before the file's
// data is written, saying how much room it needs, and succeeds once there
// is room. (A disk that fills up midway keeps what arrived: xfer's
// TestDiskFullKeepsDataAndResumes.)
func TestPutDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	f := newFixture(t)
	unmount, err := mountTmpfs(f.inbox, "size=1m")
	if err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	defer unmount()
	srv, _ := newServer(t, f.cfg, ServerOptions{})
	src := filepath.Join(t.TempDir(), "big.bin")
	data := randBytes(6, 2<<20)
	writeFile(t, src, data)
	put := func() (xfer.Result, error, error) {
		var res xfer.Result
		var err error
		serr := call(t, srv, ann, func(st Stream) {
			res, err = Put(context.Background(), st, "inbox", "", []string{src}, Auth{}, false, xfer.SendOptions{})
		})
		return res, err, serr
	}
	_, err, serr := put()
	var de *xfer.DiskFullError
	if err == nil || !errors.As(serr, &de) {
		t.Fatalf("put: %v; server: %v; want a *xfer.DiskFullError on the server", err, serr)
	}
	if de.Kept != 0 || de.Needed != int64(len(data)) {
		t.Errorf("kept %d, needed %d; want the room found short before the data came (0 kept, %d needed): %v", de.Kept, de.Needed, len(data), de)
	}
	if err == nil || !strings.Contains(err.Error(), "no room for") {
		t.Errorf("put: %v; want the server's reason, that there is no room", err)
	}
	if _, err := os.Stat(filepath.Join(f.inbox, "big.bin")); err == nil {
		t.Error("incomplete file put in place")
	}
	if err := remountTmpfs(f.inbox, "size=4m"); err != nil {
		t.Skipf("cannot grow the tmpfs: %v", err)
	}
	res, err, serr := put()
	if err != nil || serr != nil {
		t.Fatalf("put after freeing space: %v; server: %v", err, serr)
	}
	if res.Bytes != int64(len(data)) {
		t.Errorf("sent %d bytes after freeing space, want %d", res.Bytes, len(data))
	}
	if got, _ := os.ReadFile(filepath.Join(f.inbox, "big.bin")); !bytes.Equal(got, data) {
		t.Error("file differs")
	}
}

// TestGetKeepsHashes: a server given a Hashes on a store folder keeps the
// hashes of a large file it sends there (xfer's TestStoredHashes checks
// that they spare reading the file again), and every get of it arrives
// intact.
func TestGetKeepsHashes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the hash store keeps nothing on disk here")
	}
	f := newFixture(t)
	data := randBytes(6, 8<<20+100)
	writeFile(t, filepath.Join(f.docs, "image.bin"), data)
	// A file changed less than 2 s ago is not stored (it may change again
	// within a tick of the file system's clock); its change time cannot
	// be set back, so the test waits.
	time.Sleep(2100 * time.Millisecond)
	store := filepath.Join(t.TempDir(), "hashes")
	srv, _ := newServer(t, f.cfg, ServerOptions{Hashes: xfer.NewHashesIn(store)})
	for range 2 {
		dst := t.TempDir()
		var err error
		call(t, srv, eve, func(st Stream) {
			_, err = Get(context.Background(), st, "docs", []string{"image.bin"}, Auth{}, dst, xfer.ReceiveOptions{})
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(dst, "image.bin")); !bytes.Equal(got, data) {
			t.Fatal("image.bin differs")
		}
		if ents, _ := os.ReadDir(store); len(ents) != 1 {
			t.Fatalf("the store holds %d entries, want 1", len(ents))
		}
	}
}

// TestServerTextPrintable: what a serving peer says (its refusals, share
// and file names) reaches the user with control characters escaped, so a
// hostile server cannot send terminal escape sequences. Found by review.
func TestServerTextPrintable(t *testing.T) {
	evil := "\x1b]52;c;cm0K\x07\x1b[2Kok"
	for _, tc := range []struct {
		resp  response
		check func(t *testing.T, st Stream)
	}{
		{response{V: Version, Status: StatusDenied, Msg: evil}, func(t *testing.T, st Stream) {
			_, err := List(context.Background(), st)
			if err == nil || strings.ContainsRune(err.Error(), 0x1b) || !strings.Contains(err.Error(), `\x1b[2Kok`) {
				t.Errorf("refusal %q: want the escapes written out", err)
			}
		}},
		{response{V: Version, Status: StatusOK, Shares: []ShareInfo{{Name: evil}}}, func(t *testing.T, st Stream) {
			infos, err := List(context.Background(), st)
			if err != nil || len(infos) != 1 || strings.ContainsRune(infos[0].Name, 0x1b) {
				t.Errorf("shares %+v (%v): want the escapes written out", infos, err)
			}
		}},
		{response{V: Version, Status: StatusOK, Entries: []Entry{{Name: evil, Type: "file"}}}, func(t *testing.T, st Stream) {
			ents, _, err := Ls(context.Background(), st, "docs", "", Auth{})
			if err != nil || len(ents) != 1 || strings.ContainsRune(ents[0].Name, 0x1b) {
				t.Errorf("entries %+v (%v): want the escapes written out", ents, err)
			}
		}},
	} {
		a, b := streamPair()
		go func() {
			var req request
			readMsg(b, 1<<20, &req)
			writeMsg(b, tc.resp)
			b.Close()
		}()
		tc.check(t, a)
	}
}

// TestGetWholeShareSkipsPartials: a get of a whole read-write share does
// not send the partial data of puts in progress or cut (.p2plink-partial
// at its root, which ls hides). Found by review.
func TestGetWholeShareSkipsPartials(t *testing.T) {
	f := newFixture(t)
	writeFile(t, filepath.Join(f.inbox, ".p2plink-partial", "0123.part"), []byte("someone's half upload"))
	writeFile(t, filepath.Join(f.inbox, "sub", ".p2plink-partial", "4567.part"), []byte("another, into sub/"))
	writeFile(t, filepath.Join(f.inbox, "done.txt"), []byte("ok"))
	srv, _ := newServer(t, f.cfg, ServerOptions{})
	dst := t.TempDir()
	var err error
	call(t, srv, ann, func(st Stream) {
		_, err = Get(context.Background(), st, "inbox", nil, Auth{}, dst, xfer.ReceiveOptions{})
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "inbox", "done.txt")); string(got) != "ok" {
		t.Errorf("done.txt: %q", got)
	}
	for _, p := range []string{".p2plink-partial", "sub/.p2plink-partial"} {
		if _, err := os.Stat(filepath.Join(dst, "inbox", p)); err == nil {
			t.Errorf("get of the whole share delivered inbox/%s", p)
		}
	}
	// Nor is it listed, or fetched by name, in a subfolder (found by
	// review: only the share's root was kept out).
	var entries []Entry
	call(t, srv, ann, func(st Stream) { entries, _, err = Ls(context.Background(), st, "inbox", "sub", Auth{}) })
	if err != nil || len(entries) != 0 {
		t.Errorf("ls inbox/sub: %+v, %v; want nothing listed", entries, err)
	}
	call(t, srv, ann, func(st Stream) {
		_, err = Get(context.Background(), st, "inbox", []string{"sub/.p2plink-partial"}, Auth{}, t.TempDir(), xfer.ReceiveOptions{})
	})
	if !errors.Is(err, ErrBadPath) {
		t.Errorf("get inbox/sub/.p2plink-partial: %v, want ErrBadPath", err)
	}
}

// TestLockoutConcurrent: requests sent at once, one per stream, get no
// more password tries than requests sent in turn: an attempt counts as
// failed until its check says otherwise, and a peer with every remaining
// try in flight is answered "locked" at once (it got as many guesses as
// streams it opened, each check taking 64 MiB; found by review).
func TestLockoutConcurrent(t *testing.T) {
	srv := slowVaultServer(t)
	const n = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	denied, locked := 0, 0
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			call(t, srv, bob, func(st Stream) {
				_, _, err = Ls(context.Background(), st, "vault", "", Auth{Password: fmt.Sprint("guess", i)})
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrDenied):
				denied++
			case errors.Is(err, ErrLocked):
				locked++
			default:
				t.Errorf("guess %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if denied > DefaultMaxFailures || denied+locked != n {
		t.Errorf("%d guesses checked and denied, %d answered locked, of %d at once; at most %d may be checked", denied, locked, n, DefaultMaxFailures)
	}
	// The right password is refused too while locked out.
	var err error
	call(t, srv, bob, func(st Stream) { _, _, err = Ls(context.Background(), st, "vault", "", Auth{Password: "hunter2"}) })
	if !errors.Is(err, ErrLocked) {
		t.Errorf("after the guesses: %v, want ErrLocked", err)
	}
}

// TestRightPasswordConcurrent: a client with the right password that sends
// its requests at once is served, all of them: attempts in flight count
// as failed only until checked, and the ones past the limit wait for them
// rather than being told "too many failed attempts" (found by review of
// the lockout).
func TestRightPasswordConcurrent(t *testing.T) {
	srv := slowVaultServer(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			call(t, srv, bob, func(st Stream) {
				_, _, err = Ls(context.Background(), st, "vault", "", Auth{Password: "hunter2"})
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a request with the right password: %v", err)
		}
	}
}

// slowVaultServer serves the fixture with the vault's password "hunter2"
// checked slowly enough (tens of milliseconds) that requests sent at once
// overlap.
func slowVaultServer(t *testing.T) *Server {
	t.Helper()
	f := newFixture(t)
	h, err := hashPassword("hunter2", argonParams{memory: 1024, time: 60, threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	f.cfg.Shares["vault"].PasswordHash = h
	srv, _ := newServer(t, f.cfg, ServerOptions{})
	return srv
}

// TestGetTellsWhatIsLeftOut: a get of a folder lists what the serving
// peer left out (links, the fifo, a name with a backslash) with the
// reason, naming each by its name in the share, not by where the share
// lies on the server. Before, only the server's log said so, and the
// client saw a get that left files out as complete (found by a field
// test).
func TestGetTellsWhatIsLeftOut(t *testing.T) {
	f := newFixture(t)
	writeFile(t, filepath.Join(f.docs, `we ird"na$me\ttab`), []byte("backslash\n"))
	srv, _ := newServer(t, f.cfg, ServerOptions{})
	dst := t.TempDir()
	var res xfer.Result
	var err error
	call(t, srv, eve, func(st Stream) {
		res, err = Get(context.Background(), st, "docs", nil, Auth{}, dst, xfer.ReceiveOptions{})
	})
	if err != nil {
		t.Fatalf("get of the whole share: %v", err)
	}
	skipped := map[string]string{}
	for _, r := range res.Files {
		if r.Status == xfer.StatusSkipped {
			skipped[r.Name] = r.Err.Error()
		}
	}
	base := filepath.Base(f.docs)
	for name, says := range map[string]string{
		"inlink": "symbolic link", "out": "symbolic link", "secret": "symbolic link", "abs": "symbolic link",
		"fifo": "special file", `we ird"na$me\ttab`: "backslash",
	} {
		why, ok := skipped[base+"/"+name]
		if !ok || !strings.Contains(why, says) {
			t.Errorf("%s: %q (listed: %v); want it skipped, saying %q", name, why, ok, says)
		}
		if strings.Contains(why, f.root) {
			t.Errorf("%s: the reason tells where the share lies: %q", name, why)
		}
	}
	if len(skipped) != 6 {
		t.Errorf("skipped %v, want 6", skipped)
	}
}

// TestBadPathSaysWhy: a path refused as unclean says what is wrong with
// it, and for a backslash, which p2plink does not carry in names, what to
// do (before, "not a clean relative path inside the share" hid the
// reason; found by a field test).
func TestBadPathSaysWhy(t *testing.T) {
	f := newFixture(t)
	writeFile(t, filepath.Join(f.docs, `we ird"na$me\ttab`), []byte("backslash\n"))
	srv, _ := newServer(t, f.cfg, ServerOptions{})
	for path, says := range map[string][]string{
		`we ird"na$me\ttab`: {`backslash (\)`, "rename"},
		`sub\a.txt`:         {`backslash (\)`, "separate folders with /"},
		"../x":              {`".."`},
		"a\x01b":            {"control character", "U+0001"},
		"C:/x":              {"drive letter (C:)"},
		".p2plink-partial":  {"unfinished puts"},
	} {
		var err error
		call(t, srv, eve, func(st Stream) {
			_, err = Get(context.Background(), st, "docs", []string{path}, Auth{}, t.TempDir(), xfer.ReceiveOptions{})
		})
		if !errors.Is(err, ErrBadPath) {
			t.Errorf("%q: %v, want ErrBadPath", path, err)
			continue
		}
		for _, s := range says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%q: %v; want it to say %q", path, err, s)
			}
		}
	}
}
