package xfer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"testing/synctest"
	"time"

	"github.com/zeebo/blake3"
)

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var testMtime = time.Date(2024, 2, 29, 12, 34, 56, 789000000, time.UTC)

func writeFile(t testing.TB, path string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, testMtime, testMtime); err != nil {
		t.Fatal(err)
	}
}

type outcome struct {
	sres, rres Result
	serr, rerr error
}

// transfer runs Send and Receive against each other over a pair of streams.
func transfer(t testing.TB, a, b Stream, paths []string, dst string, so SendOptions, ro ReceiveOptions) outcome {
	t.Helper()
	var o outcome
	done := make(chan struct{})
	go func() {
		defer close(done)
		o.rres, o.rerr = Receive(context.Background(), b, dst, ro)
	}()
	o.sres, o.serr = Send(context.Background(), a, paths, so)
	<-done
	return o
}

func run(t testing.TB, paths []string, dst string, so SendOptions, ro ReceiveOptions) outcome {
	a, b := streamPair()
	return transfer(t, a, b, paths, dst, so, ro)
}

func mustOK(t *testing.T, o outcome) {
	t.Helper()
	if o.serr != nil || o.rerr != nil {
		t.Fatalf("send: %v\nreceive: %v", o.serr, o.rerr)
	}
}

func checkFile(t *testing.T, path string, want []byte, mode fs.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d sent", path, len(got), len(want))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != mode {
		t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), mode)
	}
	if !fi.ModTime().Equal(testMtime) {
		t.Errorf("%s: mtime %v, want %v", path, fi.ModTime(), testMtime)
	}
}

func statusOf(t *testing.T, r Result, name string) FileResult {
	t.Helper()
	for _, f := range r.Files {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("%q not in result %+v", name, r.Files)
	return FileResult{}
}

func noPartial(t *testing.T, dst string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dst, partialDir)); !errors.Is(err, fs.ErrNotExist) {
		ents, _ := os.ReadDir(filepath.Join(dst, partialDir))
		t.Errorf("partial data left behind: %v %v", err, ents)
	}
}

func TestSendReceiveTree(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "zstd"}[compress], func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			files := map[string][]byte{
				"tree/empty":          {},
				"tree/one":            {'x'},
				"tree/sub/almost":     randBytes(1, ChunkSize-1),
				"tree/sub/exact":      randBytes(2, ChunkSize),
				"tree/sub/more":       randBytes(3, ChunkSize+1),
				"tree/sub/deep/big":   randBytes(4, 3*ChunkSize+5),
				"tree/text.txt":       bytes.Repeat([]byte("all work and no play makes jack a dull boy\n"), 10000),
				"tree/sp ace ünï.txt": []byte("names with spaces and accents"),
			}
			for name, data := range files {
				writeFile(t, filepath.Join(src, name), data, 0o644)
			}
			writeFile(t, filepath.Join(src, "tree/run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755)
			files["tree/run.sh"] = []byte("#!/bin/sh\necho hi\n")
			if err := os.MkdirAll(filepath.Join(src, "tree/emptydir"), 0o750); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(src, "single.bin"), randBytes(5, 1000), 0o600)
			var last, rlast Progress
			started := map[string]bool{}
			o := run(t, []string{filepath.Join(src, "tree"), filepath.Join(src, "single.bin")}, dst,
				SendOptions{Compress: compress, Progress: func(p Progress) {
					if p.Done < last.Done || p.FileDone > p.FileSize {
						t.Errorf("progress %+v after %+v", p, last)
					}
					last = p
					started[p.Name] = true
				}},
				ReceiveOptions{Progress: func(p Progress) { rlast = p }})
			if len(started) != len(files)+1 {
				t.Errorf("progress for %d files, want %d (empty ones too)", len(started), len(files)+1)
			}
			mustOK(t, o)
			for name, data := range files {
				mode := fs.FileMode(0o644)
				if name == "tree/run.sh" {
					mode = 0o755
				}
				checkFile(t, filepath.Join(dst, name), data, mode)
			}
			checkFile(t, filepath.Join(dst, "single.bin"), randBytes(5, 1000), 0o600)
			if fi, err := os.Stat(filepath.Join(dst, "tree/emptydir")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
				t.Errorf("empty folder: %v %v", fi, err)
			}
			noPartial(t, dst)
			var total int64
			for _, d := range files {
				total += int64(len(d))
			}
			total += 1000
			if o.sres.Bytes != total || o.rres.Bytes != total {
				t.Errorf("bytes sent %d, received %d, want %d", o.sres.Bytes, o.rres.Bytes, total)
			}
			if last.Done != total || last.Total != total || rlast.Done != total || rlast.Total != total {
				t.Errorf("last progress: sender %+v, receiver %+v, want done = total = %d", last, rlast, total)
			}
			if compress && o.sres.WireBytes >= o.sres.Bytes*9/10 {
				t.Errorf("compressed %d bytes to %d", o.sres.Bytes, o.sres.WireBytes)
			}
			if !compress && o.sres.WireBytes != o.sres.Bytes {
				t.Errorf("uncompressed: %d bytes on the wire for %d", o.sres.WireBytes, o.sres.Bytes)
			}
			for _, r := range []Result{o.sres, o.rres} {
				for _, f := range r.Files {
					if f.Status != StatusDone {
						t.Errorf("%s: %v %v", f.Name, f.Status, f.Err)
					}
				}
			}
		})
	}
}

func TestIncompressibleNotInflated(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	data := randBytes(9, 40*ChunkSize)
	writeFile(t, filepath.Join(src, "random"), data, 0o644)
	o := run(t, []string{filepath.Join(src, "random")}, dst, SendOptions{Compress: true}, ReceiveOptions{})
	mustOK(t, o)
	if o.sres.WireBytes != o.sres.Bytes {
		t.Errorf("random data: %d bytes on the wire for %d", o.sres.WireBytes, o.sres.Bytes)
	}
	checkFile(t, filepath.Join(dst, "random"), data, 0o644)
}

func TestSymlinksAndSpecialFilesSkipped(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, "d/real"), []byte("real"), 0o644)
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "d/link")); err != nil {
		t.Fatal(err)
	}
	if err := mkfifo(filepath.Join(src, "d/fifo")); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	o := run(t, []string{filepath.Join(src, "d")}, dst, SendOptions{}, ReceiveOptions{})
	mustOK(t, o)
	checkFile(t, filepath.Join(dst, "d/real"), []byte("real"), 0o644)
	for _, name := range []string{"d/link", "d/fifo"} {
		if _, err := os.Lstat(filepath.Join(dst, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s was received: %v", name, err)
		}
		if f := statusOf(t, o.sres, name); f.Status != StatusSkipped || f.Err == nil {
			t.Errorf("%s: status %v, err %v; want skipped with a reason", name, f.Status, f.Err)
		}
	}
}

func TestExistingFileNeverOverwritten(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, "report.tar.gz"), []byte("new content"), 0o644)
	writeFile(t, filepath.Join(dst, "report.tar.gz"), []byte("old content"), 0o644)
	writeFile(t, filepath.Join(dst, "report (1).tar.gz"), []byte("older content"), 0o644)
	o := run(t, []string{filepath.Join(src, "report.tar.gz")}, dst, SendOptions{}, ReceiveOptions{})
	mustOK(t, o)
	for name, want := range map[string]string{
		"report.tar.gz": "old content", "report (1).tar.gz": "older content", "report (2).tar.gz": "new content",
	} {
		if got, err := os.ReadFile(filepath.Join(dst, name)); err != nil || string(got) != want {
			t.Errorf("%s: %q %v, want %q", name, got, err, want)
		}
	}
	if f := statusOf(t, o.rres, "report.tar.gz"); f.Path != "report (2).tar.gz" {
		t.Errorf("stored as %q, want %q", f.Path, "report (2).tar.gz")
	}
	if f := statusOf(t, o.sres, "report.tar.gz"); f.Stored != "report (2).tar.gz" {
		t.Errorf("sender told it was stored as %q, want %q", f.Stored, "report (2).tar.gz")
	}

	// Sending again: the identical copy is found and nothing is sent.
	o = run(t, []string{filepath.Join(src, "report.tar.gz")}, dst, SendOptions{}, ReceiveOptions{})
	mustOK(t, o)
	if f := statusOf(t, o.sres, "report.tar.gz"); f.Status != StatusPresent || o.sres.Bytes != 0 {
		t.Errorf("second send: %v, %d bytes; want already present, 0 bytes", f.Status, o.sres.Bytes)
	}
	if _, err := os.Stat(filepath.Join(dst, "report (3).tar.gz")); err == nil {
		t.Error("identical file stored again")
	}

	// Overwrite replaces.
	writeFile(t, filepath.Join(src, "report.tar.gz"), []byte("newest"), 0o644)
	o = run(t, []string{filepath.Join(src, "report.tar.gz")}, dst, SendOptions{}, ReceiveOptions{Overwrite: true})
	mustOK(t, o)
	checkFile(t, filepath.Join(dst, "report.tar.gz"), []byte("newest"), 0o644)
}

func TestNumbered(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"a.txt", 1, "a (1).txt"},
		{"dir/b.tar.gz", 2, "dir/b (2).tar.gz"},
		{"noext", 3, "noext (3)"},
		{"d.x/.profile", 1, "d.x/.profile (1)"},
		{".a.b", 1, ".a (1).b"},
	} {
		if got := numbered(c.in, c.n); got != c.want {
			t.Errorf("numbered(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestCheckName(t *testing.T) {
	good := []string{"a", "a/b", "a b/c.d", ".hidden", "a..b", "ünï/ç", "x/.p2plink-partial", "C", "a/bb:c"}
	bad := []string{"", "/etc/passwd", "../x", "a/../../x", "a/..", "./a", "a//b", "a/", "a\\..\\b",
		"C:", "c:evil", "a/D:x", "x\x00y", "x\ny", "x\x7fy", "x\u0085y", ".p2plink-partial/id.part",
		".P2PLINK-PARTIAL/x", "\xff", strings.Repeat("a", maxName+1)}
	for _, n := range good {
		if err := checkName(n); err != nil {
			t.Errorf("checkName(%q) = %v, want nil", n, err)
		}
	}
	for _, n := range bad {
		if err := checkName(n); !errors.Is(err, ErrUnsafeName) {
			t.Errorf("checkName(%q) = %v, want ErrUnsafeName", n, err)
		}
	}
}

// fakeSender speaks the sender's side by hand, to lie.
type fakeSender struct {
	t *testing.T
	w *writer
	r *reader
	s Stream
}

func newFakeSender(t *testing.T, s Stream) *fakeSender {
	return &fakeSender{t: t, s: s, w: &writer{bw: bufio.NewWriter(s)}, r: &reader{br: bufio.NewReader(s)}}
}

// drain reads what the other side sends until the stream ends, fails the
// test on any file data (sent to who), and returns the last '!' reason.
func (f *fakeSender) drain(who string) (said string) {
	for {
		typ, p, err := f.r.next()
		if err != nil {
			return said
		}
		if typ == msgFile || typ == msgData {
			f.t.Errorf("data message %q sent to %s", typ, who)
		}
		if typ == msgError {
			said = string(p)
		}
	}
}

// manifest sends hello and entries, and returns the receiver's replies.
func (f *fakeSender) manifest(es ...entry) []reply {
	f.t.Helper()
	var features byte
	for _, e := range es {
		if e.Late {
			features = featLateRoots
		}
	}
	f.w.hello(roleSender, []hashAlg{scriptHash}, features)
	var total int64
	for i := range es {
		f.w.entry(&es[i])
		total += es[i].Size
	}
	f.w.manifestEnd(uint32(len(es)), total)
	errc := make(chan error, 1)
	go func() { errc <- f.w.flush() }()
	typ, p, err := f.r.next()
	if err != nil || typ != msgHello {
		f.t.Fatalf("hello: %q %v", typ, err)
	}
	if _, err := parseHello(p); err != nil {
		f.t.Fatal(err)
	}
	var rs []reply
	for range es {
		typ, p, err := f.r.next()
		if err != nil || typ != msgReply {
			f.t.Fatalf("reply: %q %v", typ, err)
		}
		r, err := parseReply(p)
		if err != nil {
			f.t.Fatal(err)
		}
		rs = append(rs, r)
	}
	if err := <-errc; err != nil {
		f.t.Fatal(err)
	}
	return rs
}

// send writes messages while draining the receiver's answers.
func (f *fakeSender) send(msgs func(w *writer)) {
	go io.Copy(io.Discard, f.r.br)
	msgs(f.w)
	f.w.flush()
	f.s.CloseWrite()
}

func fileEntry(name string, data []byte) entry {
	return entry{Kind: kindFile, Name: name, Size: int64(len(data)), Mode: 0o644, Mtime: testMtime.UnixNano(), Root: specRoot(scriptHash, data)}
}

// scriptHash is the hash the scripted peers of the tests (fakeSender, the
// fuzz seeds) list in their hellos, alone: the other side then uses it.
const scriptHash = hashSHA256

// allHashes are the hashes this package computes.
var allHashes = []hashAlg{hashSHA256, hashBLAKE3}

// specSum hashes p with alg, through the hash's own package.
func specSum(alg hashAlg, p []byte) [hashLen]byte {
	switch alg {
	case hashSHA256:
		return sha256.Sum256(p)
	case hashBLAKE3:
		return blake3.Sum256(p)
	}
	panic("unknown hash")
}

// specRoot computes a root hash as SPEC.md defines it, independently of the
// package's own code: H over the H of each 64 KiB chunk.
func specRoot(alg hashAlg, data []byte) [hashLen]byte {
	var leaves []byte
	for off := 0; off < len(data); off += 65536 {
		sum := specSum(alg, data[off:min(off+65536, len(data))])
		leaves = append(leaves, sum[:]...)
	}
	return specSum(alg, leaves)
}

func sendChunks(w *writer, data []byte) {
	for len(data) > 0 {
		n := min(len(data), ChunkSize)
		w.data(0, data[:n])
		data = data[n:]
	}
}

// receiveFrom runs Receive against a fake sender.
func receiveFrom(t *testing.T, dst string, ro ReceiveOptions, fake func(f *fakeSender)) (Result, error) {
	a, b := streamPair()
	var res Result
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err = Receive(context.Background(), b, dst, ro)
	}()
	fake(newFakeSender(t, a))
	<-done
	a.Close()
	return res, err
}

func listAll(t *testing.T, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func TestUnsafeNamesRefused(t *testing.T) {
	top := t.TempDir()
	dst := filepath.Join(top, "recv")
	outside := filepath.Join(top, "outside")
	os.MkdirAll(outside, 0o755)
	os.MkdirAll(dst, 0o755)
	// A symbolic link in the receive directory that leads outside it.
	if err := os.Symlink(outside, filepath.Join(dst, "escape")); err != nil {
		t.Fatal(err)
	}
	names := []string{"../evil", "/tmp/abs", "a/../../evil", "C:evil", "x\x01y", `..\..\evil`,
		".p2plink-partial/evil", "escape/evil", "ok.txt"}
	data := []byte("payload")
	var es []entry
	for _, n := range names {
		es = append(es, fileEntry(n, data))
	}
	res, err := receiveFrom(t, dst, ReceiveOptions{}, func(f *fakeSender) {
		rs := f.manifest(es...)
		for i, r := range rs {
			want := actRefuse
			if names[i] == "ok.txt" {
				want = actSend
			}
			if r.Action != want {
				t.Errorf("%q: action %d, want %d (%s)", names[i], r.Action, want, r.Reason)
			}
		}
		f.send(func(w *writer) {
			// A lying sender sends the refused ones anyway; the receiver
			// must stop at the first.
			w.file(uint32(len(names)-1), 0)
			sendChunks(w, data)
			w.indexReason(msgEnd, uint32(len(names)-1), 0, "")
			w.file(0, 0)
			sendChunks(w, data)
			w.indexReason(msgEnd, 0, 0, "")
			w.msg(msgDone)
		})
	})
	if !errors.Is(err, ErrProtocol) {
		t.Errorf("Receive: %v, want ErrProtocol (a refused file was sent)", err)
	}
	for i, n := range names[:len(names)-1] {
		f := res.Files[i]
		if f.Status != StatusFailed || f.Err == nil {
			t.Errorf("%q: %v %v, want failed", n, f.Status, f.Err)
		}
	}
	if got := listAll(t, outside); len(got) != 0 {
		t.Errorf("written outside the receive directory: %v", got)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "ok.txt")); string(got) != "payload" {
		t.Errorf("ok.txt = %q", got)
	}
	if got := listAll(t, top); len(got) != 4 { // outside, recv, recv/escape, recv/ok.txt
		t.Errorf("files: %v", got)
	}
}

func TestLyingSender(t *testing.T) {
	data := randBytes(7, 2*ChunkSize+100)
	other := randBytes(8, len(data))
	cases := []struct {
		name string
		e    entry
		body func(w *writer)
		want error
	}{
		{"other data", fileEntry("f", data), func(w *writer) { sendChunks(w, other) }, ErrVerify},
		{"one chunk differs", fileEntry("f", data), func(w *writer) {
			sendChunks(w, data[:ChunkSize])
			sendChunks(w, other[ChunkSize:2*ChunkSize])
			sendChunks(w, data[2*ChunkSize:])
		}, ErrVerify},
		{"chunks swapped", fileEntry("f", data), func(w *writer) {
			sendChunks(w, data[ChunkSize:2*ChunkSize])
			sendChunks(w, data[:ChunkSize])
			sendChunks(w, data[2*ChunkSize:])
		}, ErrVerify},
		{"more than announced", fileEntry("f", data[:10]), func(w *writer) { sendChunks(w, data[:20]) }, ErrProtocol},
		{"less than announced", fileEntry("f", data), func(w *writer) { sendChunks(w, data[:ChunkSize]) }, ErrProtocol},
		{"short chunk inside", fileEntry("f", data), func(w *writer) { sendChunks(w, data[:100]) }, ErrProtocol},
		{"bad zstd", fileEntry("f", data), func(w *writer) {
			w.data(flagZstd, []byte("not zstd at all"))
		}, ErrProtocol},
		{"bad flags", fileEntry("f", data), func(w *writer) {
			w.data(0x80, data[:ChunkSize])
		}, ErrProtocol},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := t.TempDir()
			var written int64
			ro := ReceiveOptions{hookFile: func(f partFile) partFile { return countWrites{f, &written} }}
			res, err := receiveFrom(t, dst, ro, func(f *fakeSender) {
				f.manifest(c.e)
				f.send(func(w *writer) {
					w.file(0, 0)
					c.body(w)
					w.indexReason(msgEnd, 0, 0, "")
					w.msg(msgDone)
				})
			})
			if !errors.Is(err, c.want) {
				t.Errorf("Receive: %v, want %v", err, c.want)
			}
			if f := res.Files[0]; f.Status != StatusFailed {
				t.Errorf("status %v", f.Status)
			}
			if got := listAll(t, dst); len(got) != 0 {
				t.Errorf("kept: %v", got)
			}
			// Nothing beyond the announced size ever reaches the disk.
			if written > c.e.Size {
				t.Errorf("%d bytes written for a file of %d", written, c.e.Size)
			}
			if errors.Is(c.want, ErrVerify) && !strings.Contains(err.Error(), "send it again") {
				t.Errorf("Receive: %v; want it to say what to do", err)
			}
		})
	}
}

type countWrites struct {
	partFile
	n *int64
}

func (c countWrites) Write(p []byte) (int, error) {
	n, err := c.partFile.Write(p)
	*c.n += int64(n)
	return n, err
}

func TestFolderWhereAFileIs(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, "a/b"), []byte("new"), 0o644)
	writeFile(t, filepath.Join(dst, "a"), []byte("a file"), 0o644)
	o := run(t, []string{filepath.Join(src, "a")}, dst, SendOptions{}, ReceiveOptions{})
	for _, name := range []string{"a", "a/b"} {
		if f := statusOf(t, o.sres, name); f.Status != StatusFailed || !errors.Is(f.Err, ErrRefused) {
			t.Errorf("%s: %v %v, want refused", name, f.Status, f.Err)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "a")); string(got) != "a file" {
		t.Errorf("existing file changed: %q", got)
	}
}

// helloV1 is the hello of a version 1 peer (the same layout as version 2).
func helloV1(role byte) []byte {
	return []byte(helloMagic + "\x01\x00\x01\x00\x00" + string(role))
}

func TestVersionMismatch(t *testing.T) {
	const both = "speaks version 1, this is version 3"
	for _, hello := range [][]byte{helloV1(roleSender), []byte(helloMagic + "\x02\x00\x01\x00\x00S"), []byte(helloMagic + "\x04 longer, other layout")} {
		_, err := receiveFrom(t, t.TempDir(), ReceiveOptions{}, func(f *fakeSender) {
			f.w.msg(msgHello, hello)
			go f.w.flush()
			typ, p, _ := f.r.next()
			if typ != msgHello || p[len(helloMagic)] != 3 {
				t.Errorf("receiver's hello: %q %q, want version 3", typ, p)
			}
			typ, p, _ = f.r.next()
			if typ != msgError || !strings.Contains(string(p), "version") {
				t.Errorf("receiver said %q %q, want an error naming the version", typ, p)
			}
		})
		if !errors.Is(err, ErrVersion) {
			t.Errorf("Receive: %v, want ErrVersion", err)
		}
		if hello[len(helloMagic)] == 1 && !strings.Contains(err.Error(), both) {
			t.Errorf("Receive: %v, want both versions named", err)
		}
	}

	// A version 1 receiver: Send refuses it before sending any data.
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), []byte("data"), 0o644)
	a, b := streamPair()
	told := make(chan string, 1)
	go func() {
		f := newFakeSender(t, b) // plays a version 1 receiver
		f.w.msg(msgHello, helloV1(roleReceiver))
		f.w.flush()
		said := f.drain("a version 1 receiver")
		b.Close()
		told <- said
	}()
	res, err := Send(context.Background(), a, []string{filepath.Join(src, "f")}, SendOptions{})
	// The receiver learns why: the sender's '!' names both versions.
	if said := <-told; !strings.Contains(said, both) {
		t.Errorf("the version 1 receiver was told %q, want the versions named", said)
	}
	if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), both) {
		t.Errorf("Send: %v, want ErrVersion naming both versions", err)
	}
	if res.Bytes != 0 {
		t.Errorf("sent %d bytes to a version 1 receiver", res.Bytes)
	}
}

func TestResumeAfterCut(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	data := randBytes(11, 40*ChunkSize+123)
	writeFile(t, filepath.Join(src, "big"), data, 0o640)
	const cutAt = 20*ChunkSize + 1000
	a, b := cutPair(cutAt)
	o := transfer(t, a, b, []string{filepath.Join(src, "big")}, dst, SendOptions{}, ReceiveOptions{})
	if o.serr == nil || o.rerr == nil {
		t.Fatalf("cut transfer succeeded: %v %v", o.serr, o.rerr)
	}
	if !strings.Contains(o.rerr.Error(), "rerun") {
		t.Errorf("receive error does not say what to do: %v", o.rerr)
	}
	if _, err := os.Stat(filepath.Join(dst, "big")); err == nil {
		t.Fatal("a partial file was put in place")
	}
	o = run(t, []string{filepath.Join(src, "big")}, dst, SendOptions{}, ReceiveOptions{})
	mustOK(t, o)
	checkFile(t, filepath.Join(dst, "big"), data, 0o640)
	noPartial(t, dst)
	// Everything that arrived intact before the cut, less the chunk in
	// flight, is not sent again.
	if o.sres.Resumed < cutAt-2*ChunkSize || o.sres.Bytes != int64(len(data))-o.sres.Resumed {
		t.Errorf("resumed from %d, sent %d of %d; cut at %d", o.sres.Resumed, o.sres.Bytes, len(data), cutAt)
	}
	if o.rres.Resumed != o.sres.Resumed {
		t.Errorf("receiver resumed %d, sender %d", o.rres.Resumed, o.sres.Resumed)
	}
}

// cutOnce cuts a transfer of data after the given number of bytes and
// returns the partial data's path.
// cutSend sends src into dst with so over a stream cut after cutAt
// bytes, and returns what became of it; the transfer must fail.
func cutSend(t *testing.T, src, dst string, cutAt int64, so SendOptions) outcome {
	t.Helper()
	a, b := cutPair(cutAt)
	o := transfer(t, a, b, []string{src}, dst, so, ReceiveOptions{})
	if o.rerr == nil {
		t.Fatal("cut transfer succeeded")
	}
	return o
}

func cutOnce(t *testing.T, src, dst string, cutAt int64) string {
	t.Helper()
	cutSend(t, src, dst, cutAt, SendOptions{})
	m, _ := filepath.Glob(filepath.Join(dst, partialDir, "*.part"))
	if len(m) != 1 {
		t.Fatalf("partial files: %v", m)
	}
	return m[0]
}

// TestResumeAcrossHashes: data kept under one hash is resumed only by a
// transfer that agrees on the same hash; under another it is sent whole
// (the partial is named by the hash too) and stored intact either way.
func TestResumeAcrossHashes(t *testing.T) {
	data := randBytes(14, 12*ChunkSize+9)
	sha := []hashAlg{hashSHA256}
	for _, next := range allHashes {
		src, dst := t.TempDir(), t.TempDir()
		writeFile(t, filepath.Join(src, "f"), data, 0o644)
		a, b := cutPair(6*ChunkSize + 500)
		if o := transfer(t, a, b, []string{filepath.Join(src, "f")}, dst, SendOptions{hashes: sha}, ReceiveOptions{hashes: sha}); o.rerr == nil {
			t.Fatal("cut transfer succeeded")
		}
		o := run(t, []string{filepath.Join(src, "f")}, dst, SendOptions{hashes: []hashAlg{next}}, ReceiveOptions{hashes: allHashes})
		mustOK(t, o)
		checkFile(t, filepath.Join(dst, "f"), data, 0o644)
		if resumed := o.sres.Resumed > 0; resumed != (next == hashSHA256) {
			t.Errorf("kept under sha256, sent again under %v: resumed from %d", next, o.sres.Resumed)
		}
		// Nothing is left behind: not even the data kept under the other
		// hash, which no later run would resume (found by review).
		if left, _ := os.ReadDir(filepath.Join(dst, partialDir)); len(left) > 0 {
			t.Errorf("sent again under %v: %d files left in %s", next, len(left), partialDir)
		}
	}
}

func TestResumeChecksKeptChunks(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	data := randBytes(12, 20*ChunkSize)
	writeFile(t, filepath.Join(src, "f"), data, 0o644)
	part := cutOnce(t, filepath.Join(src, "f"), dst, 10*ChunkSize+500)
	// Damage chunk 3 of the kept data: resume must start there.
	pf, err := os.OpenFile(part, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	pf.WriteAt([]byte{^data[3*ChunkSize+7]}, 3*ChunkSize+7)
	pf.Close()
	o := run(t, []string{filepath.Join(src, "f")}, dst, SendOptions{}, ReceiveOptions{})
	mustOK(t, o)
	checkFile(t, filepath.Join(dst, "f"), data, 0o644)
	if o.sres.Resumed != 3*ChunkSize {
		t.Errorf("resumed from %d, want %d (the first damaged chunk)", o.sres.Resumed, 3*ChunkSize)
	}
}

func TestResumeSenderChecksPrefix(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	data := randBytes(13, 20*ChunkSize)
	writeFile(t, filepath.Join(src, "f"), data, 0o644)
	part := cutOnce(t, filepath.Join(src, "f"), dst, 10*ChunkSize+500)
	// Damage chunk 2 and its recorded hash consistently: the receiver
	// believes its data, the sender's check must not.
	pf, _ := os.OpenFile(part, os.O_RDWR, 0)
	bad := bytes.Repeat([]byte{0x55}, ChunkSize)
	pf.WriteAt(bad, 2*ChunkSize)
	pf.Close()
	sf, _ := os.OpenFile(strings.TrimSuffix(part, ".part")+".sums", os.O_RDWR, 0)
	sum := specSum(localHashes()[0], bad) // the hash both sides agree on by default
	sf.WriteAt(sum[:], 2*hashLen)
	sf.Close()
	o := run(t, []string{filepath.Join(src, "f")}, dst, SendOptions{}, ReceiveOptions{})
	mustOK(t, o)
	checkFile(t, filepath.Join(dst, "f"), data, 0o644)
	if o.sres.Resumed != 0 || o.sres.Bytes != int64(len(data)) {
		t.Errorf("resumed from %d, sent %d; want the whole file again", o.sres.Resumed, o.sres.Bytes)
	}
}

// fullDisk fails writes with ENOSPC once limit bytes were written.
type fullDisk struct {
	partFile
	limit *int64
}

func (d fullDisk) Write(p []byte) (int, error) {
	if int64(len(p)) <= *d.limit {
		*d.limit -= int64(len(p))
		return d.partFile.Write(p)
	}
	n, _ := d.partFile.Write(p[:*d.limit])
	*d.limit = 0
	return n, &os.PathError{Op: "write", Path: "part", Err: syscall.ENOSPC}
}

func TestDiskFullKeepsDataAndResumes(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	data := randBytes(14, 10*ChunkSize+77)
	writeFile(t, filepath.Join(src, "f"), data, 0o644)
	limit := int64(4*ChunkSize + 1234)
	ro := ReceiveOptions{hookFile: func(f partFile) partFile { return fullDisk{f, &limit} }}
	o := run(t, []string{filepath.Join(src, "f")}, dst, SendOptions{}, ro)
	var de *DiskFullError
	if !errors.As(o.rerr, &de) || !errors.Is(o.rerr, syscall.ENOSPC) {
		t.Fatalf("Receive: %v, want a *DiskFullError wrapping ENOSPC", o.rerr)
	}
	if de.Kept != 4*ChunkSize || de.Size != int64(len(data)) || !strings.Contains(de.Error(), "free space and rerun") {
		t.Errorf("DiskFullError: kept %d of %d: %q", de.Kept, de.Size, de)
	}
	if fi, err := os.Stat(de.PartialPath); err != nil || fi.Size() != de.Kept {
		t.Errorf("partial data: %v %v, want %d bytes", fi, err, de.Kept)
	}
	if !errors.Is(o.serr, ErrPeer) || !strings.Contains(o.serr.Error(), "disk full") {
		t.Errorf("Send: %v, want the receiver's disk-full message", o.serr)
	}
	o = run(t, []string{filepath.Join(src, "f")}, dst, SendOptions{}, ReceiveOptions{})
	mustOK(t, o)
	checkFile(t, filepath.Join(dst, "f"), data, 0o644)
	if o.sres.Resumed != 4*ChunkSize {
		t.Errorf("resumed from %d, want %d", o.sres.Resumed, 4*ChunkSize)
	}
}

// TestDiskFullTmpfs sends a file twice the size of a small tmpfs: the
// receiver finds the room short when the file starts (it reserves the
// file's size), before its data is written, and says how much it needs;
// once the tmpfs is made larger, the rerun stores the file.
func TestDiskFullTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dst := t.TempDir()
	unmount, err := mountTmpfs(dst, "size=1m")
	if err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	defer unmount()
	src := t.TempDir()
	data := randBytes(15, 2<<20)
	writeFile(t, filepath.Join(src, "f"), data, 0o644)
	o := run(t, []string{filepath.Join(src, "f")}, dst, SendOptions{}, ReceiveOptions{})
	var de *DiskFullError
	if !errors.As(o.rerr, &de) {
		t.Fatalf("Receive: %v, want a *DiskFullError", o.rerr)
	}
	// Refused when the replies went, before the transfer began: nothing
	// kept, no partial data made, and the room it needs and has said.
	if de.Kept != 0 || de.Needed != int64(len(data)) || de.PartialPath != "" || de.Free <= 0 || de.Free > 1<<20 {
		t.Errorf("kept %d bytes, needed %d, free %d, partial data %q; want 0 kept, %d needed, under 1 MiB free, none made", de.Kept, de.Needed, de.Free, de.PartialPath, len(data))
	}
	if !strings.Contains(de.Error(), `no room for "f": it needs 2.0 MiB more`) {
		t.Errorf("%q does not say how much room is needed", de.Error())
	}
	if ents, _ := os.ReadDir(filepath.Join(dst, partialDir)); len(ents) != 0 {
		t.Errorf("partial data made for a file refused: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(dst, "f")); err == nil {
		t.Error("incomplete file put in place")
	}
	if !errors.Is(o.serr, ErrRefused) || !strings.Contains(o.serr.Error(), "disk full") {
		t.Errorf("Send: %v, want the receiver's disk-full refusal", o.serr)
	}
	// The sender is not told where the receive folder lies.
	if strings.Contains(o.serr.Error(), dst) {
		t.Errorf("Send: %v; want the receiver's folder not named", o.serr)
	}
	t.Logf("%v", de)
	if err := remountTmpfs(dst, "size=4m"); err != nil {
		t.Skipf("cannot make the tmpfs larger: %v", err)
	}
	o = run(t, []string{filepath.Join(src, "f")}, dst, SendOptions{}, ReceiveOptions{})
	mustOK(t, o)
	checkFile(t, filepath.Join(dst, "f"), data, 0o644)
}

// TestRoomCheckedPerFile: a file the receiving disk cannot hold is refused
// before the transfer begins, and the files after it that fit are still
// stored (a field test: 300 MiB and then 20 MiB sent to a 100 MiB disk
// ended the whole transfer at the first, and the second never came).
// Room is counted for the files accepted before it too.
func TestRoomCheckedPerFile(t *testing.T) {
	free := int64(3 << 20)
	freeHook = func(string) (int64, bool) { return free, true }
	t.Cleanup(func() { freeHook = nil })
	src, dst := t.TempDir(), t.TempDir()
	big, small, second := randBytes(31, 4<<20), randBytes(32, 1<<20), randBytes(33, 2<<20+1)
	writeFile(t, filepath.Join(src, "a-big"), big, 0o644)
	writeFile(t, filepath.Join(src, "b-small"), small, 0o644)
	writeFile(t, filepath.Join(src, "c-second"), second, 0o644)
	o := run(t, []string{filepath.Join(src, "a-big"), filepath.Join(src, "b-small"), filepath.Join(src, "c-second")}, dst, SendOptions{}, ReceiveOptions{})
	checkFile(t, filepath.Join(dst, "b-small"), small, 0o644)
	var de *DiskFullError
	if !errors.As(o.rerr, &de) || de.Name != "a-big" {
		t.Fatalf("Receive: %v, want a *DiskFullError for a-big", o.rerr)
	}
	if !strings.Contains(o.rerr.Error(), "2 files failed") {
		t.Errorf("Receive: %v, want 2 files failed", o.rerr)
	}
	for _, f := range o.rres.Files {
		want := StatusFailed
		if f.Name == "b-small" {
			want = StatusDone
		}
		if f.Status != want {
			t.Errorf("%s: %v, want %v", f.Name, f.Status, want)
		}
	}
	// c-second fits the disk alone, but not beside b-small.
	for _, f := range o.rres.Files {
		if f.Name == "c-second" && (!errors.As(f.Err, &de) || de.Free != 2<<20) {
			t.Errorf("c-second: %v, want refused with the 2 MiB left beside b-small", f.Err)
		}
	}
	for _, name := range []string{"a-big", "c-second"} {
		if _, err := os.Stat(filepath.Join(dst, name)); err == nil {
			t.Errorf("%s stored though refused", name)
		}
	}
	if !errors.Is(o.serr, ErrRefused) || !strings.Contains(o.serr.Error(), "disk full") {
		t.Errorf("Send: %v, want the receiver's refusal", o.serr)
	}
}

// TestReceiveFolderRefusedToSender: a receive folder that cannot be made
// (its path names a file) is told to the sender, which otherwise saw only
// the stream end ("unexpected EOF").
func TestReceiveFolderRefusedToSender(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), []byte("data"), 0o644)
	notDir := filepath.Join(t.TempDir(), "file")
	writeFile(t, notDir, []byte("x"), 0o644)
	o := run(t, []string{filepath.Join(src, "f")}, filepath.Join(notDir, "sub"), SendOptions{}, ReceiveOptions{})
	if o.rerr == nil || !strings.Contains(o.rerr.Error(), "receive directory") {
		t.Fatalf("Receive: %v, want the receive directory's error", o.rerr)
	}
	if !errors.Is(o.serr, ErrPeer) || !strings.Contains(o.serr.Error(), "receive directory") || !strings.Contains(o.serr.Error(), "not a directory") {
		t.Errorf("Send: %v, want the receiver's reason", o.serr)
	}
}

// TestSilentEndSaysWhatToDo: a receiver that ends the stream without a
// word (stopped with Ctrl-C) leaves the sender an error that says so and
// how to resume, not a bare "unexpected EOF".
func TestSilentEndSaysWhatToDo(t *testing.T) {
	a, b := streamPair()
	go func() {
		r := newReader(b)
		r.next()       // the sender's hello
		b.CloseWrite() // as a peer stream's end reaches the other side
		b.Close()
	}()
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), []byte("data"), 0o644)
	_, err := Send(context.Background(), a, []string{filepath.Join(src, "f")}, SendOptions{})
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "ended the transfer without a word") || !strings.Contains(err.Error(), "again to resume") {
		t.Errorf("Send: %v, want it to say the other side ended without a word and how to resume", err)
	}
}

// TestFileChangedDuringSend: a file written while it is sent fails on both
// sides, nothing stored: by its new modification time, or, with the time
// put back, by the receiver's check against the root of the manifest.
// With a late root (hashed as read), a change to a part not yet read is
// simply what is read and sent: TestLateRootChangeAhead.
func TestFileChangedDuringSend(t *testing.T) {
	for _, keepMtime := range []bool{false, true} {
		t.Run(map[bool]string{false: "mtime", true: "content only"}[keepMtime], func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			data := randBytes(16, 8*ChunkSize)
			path := filepath.Join(src, "f")
			writeFile(t, path, data, 0o644)
			changed := false
			so := SendOptions{HashFirst: keepMtime, Progress: func(p Progress) {
				if changed || p.FileDone < 2*ChunkSize {
					return
				}
				changed = true
				// The sender reads each chunk as it sends it: change
				// one it has not read yet.
				f, _ := os.OpenFile(path, os.O_WRONLY, 0)
				f.WriteAt([]byte("CHANGED"), 5*ChunkSize)
				f.Close()
				if keepMtime {
					os.Chtimes(path, testMtime, testMtime)
				}
			}}
			o := run(t, []string{path}, dst, so, ReceiveOptions{})
			if !keepMtime {
				// The sender sees the new modification time.
				if !errors.Is(o.serr, ErrChanged) || !errors.Is(o.rerr, ErrChanged) {
					t.Errorf("send: %v\nreceive: %v\nwant ErrChanged on both", o.serr, o.rerr)
				}
			} else {
				// Only the receiver's root check can catch it (code 1).
				if !errors.Is(o.serr, ErrVerify) || !errors.Is(o.rerr, ErrVerify) {
					t.Errorf("send: %v\nreceive: %v\nwant ErrVerify on both", o.serr, o.rerr)
				}
				for _, err := range []error{o.serr, o.rerr} {
					if err != nil && (!strings.Contains(err.Error(), "differs from the sender's manifest") ||
						!strings.Contains(err.Error(), "send it again")) {
						t.Errorf("%v: want it to say the content differs from the manifest and to send again", err)
					}
				}
				if f := statusOf(t, o.sres, "f"); f.Status != StatusFailed || f.Stored != "" {
					t.Errorf("sender's result: %v, stored %q", f.Status, f.Stored)
				}
			}
			// Nothing stored, and the partial data discarded.
			if got := listAll(t, dst); len(got) != 0 {
				t.Errorf("kept: %v", got)
			}
			// Sent again once stable, it arrives whole.
			now, _ := os.ReadFile(path)
			o = run(t, []string{path}, dst, SendOptions{}, ReceiveOptions{})
			mustOK(t, o)
			if o.sres.Resumed != 0 {
				t.Errorf("resumed %d bytes of a file whose partial data was discarded", o.sres.Resumed)
			}
			if got, _ := os.ReadFile(filepath.Join(dst, "f")); !bytes.Equal(got, now) {
				t.Error("the file sent again differs")
			}
		})
	}
}

// TestLateRootChangeAhead: with a late root, a file changed (its time put
// back) in a part the sender has not read yet arrives as it was read, the
// change included: its root is of what was read, and the receiver stores
// exactly that.
func TestLateRootChangeAhead(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	data := randBytes(16, 8*ChunkSize)
	path := filepath.Join(src, "f")
	writeFile(t, path, data, 0o644)
	changed := false
	so := SendOptions{Progress: func(p Progress) {
		if changed || p.FileDone < 2*ChunkSize {
			return
		}
		changed = true
		f, _ := os.OpenFile(path, os.O_WRONLY, 0)
		f.WriteAt([]byte("CHANGED"), 5*ChunkSize)
		f.Close()
		os.Chtimes(path, testMtime, testMtime)
	}}
	o := run(t, []string{path}, dst, so, ReceiveOptions{})
	mustOK(t, o)
	if !changed {
		t.Fatal("the file was not changed while sent")
	}
	now, _ := os.ReadFile(path)
	if bytes.Equal(now, data) {
		t.Fatal("the change did not take")
	}
	checkFile(t, filepath.Join(dst, "f"), now, 0o644)
}

func TestFileChangedBeforeSend(t *testing.T) {
	// The manifest is built, then the file changes before its data goes.
	src, dst := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, "a"), randBytes(17, 3*ChunkSize), 0o644)
	writeFile(t, filepath.Join(src, "b"), []byte("short"), 0o644)
	so := SendOptions{Progress: func(p Progress) {
		if p.Name == "a" && p.FileDone == p.FileSize {
			os.WriteFile(filepath.Join(src, "b"), []byte("longer now"), 0o644)
		}
	}}
	o := run(t, []string{filepath.Join(src, "a"), filepath.Join(src, "b")}, dst, so, ReceiveOptions{})
	if !errors.Is(o.serr, ErrChanged) {
		t.Errorf("Send: %v, want ErrChanged", o.serr)
	}
	if f := statusOf(t, o.rres, "a"); f.Status != StatusDone {
		t.Errorf("a: %v %v", f.Status, f.Err)
	}
	if f := statusOf(t, o.rres, "b"); f.Status != StatusFailed || !errors.Is(f.Err, ErrChanged) {
		t.Errorf("b: %v %v", f.Status, f.Err)
	}
	if _, err := os.Stat(filepath.Join(dst, "b")); err == nil {
		t.Error("changed file stored")
	}
}

func TestCancel(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), randBytes(18, 4*ChunkSize), 0o644)
	a, b := streamPair()
	ctx, cancel := context.WithCancel(context.Background())
	replied := make(chan struct{})
	go func() {
		f := newFakeSender(t, b) // reads like a receiver would
		f.w.hello(roleReceiver, []hashAlg{scriptHash}, 0)
		f.w.flush()
		f.r.next() // hello
		for {
			typ, _, err := f.r.next()
			if err != nil || typ == msgManifest {
				break
			}
		}
		r := reply{Action: actSend}
		f.w.reply(&r)
		f.w.flush()
		close(replied) // and read no more
	}()
	go func() { <-replied; cancel() }()
	_, err := Send(ctx, a, []string{filepath.Join(src, "f")}, SendOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Send: %v, want context.Canceled", err)
	}
}

func TestDuplicateNamesRefusedBySender(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(a, "x"), []byte("1"), 0o644)
	writeFile(t, filepath.Join(b, "x"), []byte("2"), 0o644)
	s, _ := streamPair()
	_, err := Send(context.Background(), s, []string{filepath.Join(a, "x"), filepath.Join(b, "x")}, SendOptions{})
	if err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("Send: %v, want a clash error", err)
	}
}

func TestPipe(t *testing.T) {
	a, b := streamPair()
	up := randBytes(20, 300000)
	down := randBytes(21, 200000)
	var outA, outB bytes.Buffer
	errc := make(chan error, 1)
	go func() { errc <- Pipe(context.Background(), b, bytes.NewReader(down), &outB) }()
	if err := Pipe(context.Background(), a, bytes.NewReader(up), &outA); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(outB.Bytes(), up) || !bytes.Equal(outA.Bytes(), down) {
		t.Errorf("pipe: got %d and %d bytes, want %d and %d", outB.Len(), outA.Len(), len(up), len(down))
	}
}

func TestPipeCut(t *testing.T) {
	a, b := cutPair(100000)
	go io.Copy(io.Discard, b)
	err := Pipe(context.Background(), a, bytes.NewReader(randBytes(22, 300000)), io.Discard)
	if !errors.Is(err, errCut) {
		t.Errorf("Pipe over a cut stream: %v, want the cut", err)
	}
}

// TestNoGoroutineLeft runs transfers (one cut, one refused, one cancelled)
// in a synctest bubble, which fails if any goroutine is left blocked.
func TestNoGoroutineLeft(t *testing.T) {
	src := t.TempDir()
	data := randBytes(40, 6*ChunkSize)
	writeFile(t, filepath.Join(src, "f"), data, 0o644)
	synctest.Test(t, func(t *testing.T) {
		dst := t.TempDir()
		a, b := cutPair(3 * ChunkSize)
		if o := transfer(t, a, b, []string{filepath.Join(src, "f")}, dst, SendOptions{Compress: true}, ReceiveOptions{}); o.rerr == nil {
			t.Error("cut transfer succeeded")
		}
		o := run(t, []string{filepath.Join(src, "f")}, dst, SendOptions{}, ReceiveOptions{})
		mustOK(t, o)
		a, b = streamPair()
		go func() { Receive(context.Background(), b, dst, ReceiveOptions{}) }()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Send(ctx, a, []string{filepath.Join(src, "f")}, SendOptions{}); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Send: %v", err)
		}
	})
}

func TestPipeCancel(t *testing.T) {
	a, b := streamPair()
	go io.Copy(io.Discard, b) // a peer that never ends its side
	inR, inW := io.Pipe()
	defer inW.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- Pipe(ctx, a, inR, io.Discard) }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Pipe: %v, want context.Canceled", err)
	}
}

func TestFileRoot(t *testing.T) {
	for _, alg := range allHashes {
		empty := specSum(alg, nil)
		if got := specRoot(alg, nil); got != empty {
			t.Fatalf("%v: the spec's empty root is %x, want the hash of nothing %x", alg, got, empty)
		}
		if got := alg.sum(nil); got != empty {
			t.Fatalf("%v: the hash of nothing is %x, want %x", alg, got, empty)
		}
		buf := make([]byte, ChunkSize)
		for _, n := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 5} {
			data := randBytes(uint64(n), n)
			root, got, err := fileRoot(alg, bytes.NewReader(data), buf)
			if err != nil || got != int64(n) || root != specRoot(alg, data) {
				t.Errorf("%v, %d bytes: root %x of %d bytes, %v; want %x", alg, n, root, got, err, specRoot(alg, data))
			}
			if n > 0 && root == specSum(alg, data) {
				t.Errorf("%v, %d bytes: the root is the plain hash of the data", alg, n)
			}
			// A reader that returns little at a time gives the same root.
			root, _, _ = fileRoot(alg, iotest.HalfReader(bytes.NewReader(data)), buf)
			if root != specRoot(alg, data) {
				t.Errorf("%v, %d bytes read in halves: root %x", alg, n, root)
			}
		}
		if _, _, err := fileRoot(alg, iotest.ErrReader(syscall.EIO), buf); !errors.Is(err, syscall.EIO) {
			t.Errorf("%v: read error: %v, want EIO", alg, err)
		}
	}
	// The two hashes differ, so a test of one cannot pass on the other.
	if d := randBytes(3, 100); specRoot(hashSHA256, d) == specRoot(hashBLAKE3, d) {
		t.Fatal("SHA-256 and BLAKE3 roots agree")
	}
}

// tapStream records what one end writes.
type tapStream struct {
	*memStream
	mu  sync.Mutex
	out bytes.Buffer
}

func (s *tapStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.out.Write(p)
	s.mu.Unlock()
	return s.memStream.Write(p)
}

// TestWireVersion3: the sender's stream holds a hello of version 3 listing
// its hashes and features, entries whose root is the spec's root under the
// hash the two sides agreed on (or, for late roots, entries of kind 2
// whose end carries that root), and data messages holding flags and data
// only.
func TestWireVersion3(t *testing.T) {
	for _, late := range []bool{false, true} {
		t.Run(map[bool]string{false: "roots in the manifest", true: "late roots"}[late], func(t *testing.T) {
			testWireVersion3(t, late)
		})
	}
}

func testWireVersion3(t *testing.T, late bool) {
	data := randBytes(41, 2*ChunkSize+10)
	for _, tc := range []struct {
		send, recv []hashAlg
		want       hashAlg
	}{
		{[]hashAlg{hashBLAKE3, hashSHA256}, []hashAlg{hashSHA256, hashBLAKE3}, hashBLAKE3},
		{[]hashAlg{hashSHA256, hashBLAKE3}, []hashAlg{hashBLAKE3, hashSHA256}, hashSHA256},
		{[]hashAlg{hashBLAKE3, hashSHA256}, []hashAlg{hashSHA256}, hashSHA256},
		{[]hashAlg{99, hashBLAKE3}, []hashAlg{hashBLAKE3, 99}, hashBLAKE3}, // 99: unknown, skipped
	} {
		src, dst := t.TempDir(), t.TempDir()
		writeFile(t, filepath.Join(src, "f"), data, 0o644)
		a, b := streamPair()
		tap := &tapStream{memStream: a}
		o := transfer(t, tap, b, []string{filepath.Join(src, "f")}, dst, SendOptions{hashes: tc.send, HashFirst: !late}, ReceiveOptions{hashes: tc.recv})
		mustOK(t, o)
		checkFile(t, filepath.Join(dst, "f"), data, 0o644)
		wantFeatures := featNotSent
		if late {
			wantFeatures |= featLateRoots
		}
		ends := 0
		if o.sres.Hash != tc.want.String() || o.rres.Hash != tc.want.String() {
			t.Errorf("results name the hash %q and %q, want %q", o.sres.Hash, o.rres.Hash, tc.want)
		}
		r := &reader{br: bufio.NewReader(&tap.out)}
		var chunks [][]byte
		for {
			typ, p, err := r.next()
			if err != nil {
				break
			}
			switch typ {
			case msgHello:
				h, err := parseHello(p)
				if err != nil || h.version != 3 || h.role != roleSender || !slices.Equal(h.hashes, tc.send) || h.features != wantFeatures {
					t.Errorf("hello %+v (%v), want version 3, role S, hashes %v, features %d", h, err, tc.send, wantFeatures)
				}
			case msgEntry:
				e, err := parseEntry(p)
				switch {
				case err != nil:
					t.Errorf("entry: %v", err)
				case late && (p[0] != kindFileLate || !e.Late || e.Root != [hashLen]byte{}):
					t.Errorf("sender %v, receiver %v: entry of kind %d, root %x; want kind 2 and no root", tc.send, tc.recv, p[0], e.Root)
				case !late && (p[0] != kindFile || e.Root != specRoot(tc.want, data)):
					t.Errorf("sender %v, receiver %v: entry of kind %d, root %x, want kind 0 and the %v root %x", tc.send, tc.recv, p[0], e.Root, tc.want, specRoot(tc.want, data))
				}
			case msgEnd:
				ends++
				want := []byte{0, 0, 0, 0, 0}
				if late {
					root := specRoot(tc.want, data)
					want = append(want, root[:]...)
				}
				if !bytes.Equal(p, want) {
					t.Errorf("sender %v, receiver %v: file end %x, want %x", tc.send, tc.recv, p, want)
				}
			case msgData:
				if p[0] != 0 {
					t.Errorf("data flags %#x", p[0])
				}
				chunks = append(chunks, bytes.Clone(p[1:]))
			}
		}
		if got := bytes.Join(chunks, nil); len(chunks) != 3 || !bytes.Equal(got, data) {
			t.Errorf("%d data messages carrying %d bytes; want 3 carrying exactly the file's %d", len(chunks), len(got), len(data))
		}
		if ends != 1 {
			t.Errorf("%d file ends, want 1", ends)
		}
	}
}

// TestNoCommonHash: two sides that accept no hash in common both fail,
// saying so and naming both lists, and nothing is stored (a sender that
// closed before its hello went out left the receiver with a bare EOF: found
// by review).
func TestNoCommonHash(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, "f"), []byte("x"), 0o644)
	o := run(t, []string{filepath.Join(src, "f")}, dst,
		SendOptions{hashes: []hashAlg{hashBLAKE3}}, ReceiveOptions{hashes: []hashAlg{hashSHA256}})
	for side, err := range map[string]error{"send": o.serr, "receive": o.rerr} {
		if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "no hash in common") ||
			!strings.Contains(err.Error(), "blake3") || !strings.Contains(err.Error(), "sha256") {
			t.Errorf("%s: %v; want ErrVersion naming both sides' hashes", side, err)
		}
	}
	if len(o.sres.Files) != 0 && o.sres.Files[0].Status == StatusDone {
		t.Errorf("sender result %+v", o.sres.Files)
	}
	if _, err := os.Stat(filepath.Join(dst, "f")); err == nil {
		t.Error("the file was stored")
	}
}

// TestHelloExtension: a hello may carry bytes after its hash list (for a
// later version to add to); they are ignored. A hello that lists no hash,
// or is cut inside its list, is malformed.
func TestHelloExtension(t *testing.T) {
	base := []byte(helloMagic + "\x03\x00\x01\x00\x00S\x02\x02\x01")
	h, err := parseHello(append(bytes.Clone(base), "future"...))
	if err != nil || h.chunk != ChunkSize || h.role != roleSender || !slices.Equal(h.hashes, []hashAlg{hashBLAKE3, hashSHA256}) {
		t.Errorf("hello with an extension: %+v, %v", h, err)
	}
	for _, bad := range [][]byte{base[:len(base)-1], append(base[:len(base)-3:len(base)-3], 0)} {
		if _, err := parseHello(bad); !errors.Is(err, ErrProtocol) {
			t.Errorf("hello %q: %v, want ErrProtocol", bad, err)
		}
	}
	if h, err := parseHello([]byte(helloMagic + "\x02\x00\x01\x00\x00S")); err != nil || h.version != 2 {
		t.Errorf("a version 2 hello: %+v, %v; want version 2 and no error", h, err)
	}
}

// TestResumeFromCorruptFirstChunk: a partial whose first chunk is damaged
// offers nothing and the file is sent from 0.
func TestResumeFromCorruptFirstChunk(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	data := randBytes(42, 12*ChunkSize+3)
	writeFile(t, filepath.Join(src, "f"), data, 0o644)
	part := cutOnce(t, filepath.Join(src, "f"), dst, 8*ChunkSize)
	pf, err := os.OpenFile(part, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	pf.WriteAt([]byte{^data[5]}, 5)
	pf.Close()
	o := run(t, []string{filepath.Join(src, "f")}, dst, SendOptions{}, ReceiveOptions{})
	mustOK(t, o)
	checkFile(t, filepath.Join(dst, "f"), data, 0o644)
	noPartial(t, dst)
	if o.sres.Resumed != 0 || o.rres.Resumed != 0 || o.sres.Bytes != int64(len(data)) {
		t.Errorf("resumed %d/%d, sent %d; want the whole file from 0", o.sres.Resumed, o.rres.Resumed, o.sres.Bytes)
	}
}

// TestFailuresCountsFolders: the summary of failures counts files and
// folders apart (a field test read "10 files failed" for 7 files and 3
// folders).
func TestFailuresCountsFolders(t *testing.T) {
	first := errors.New("first")
	var fs []FileResult
	for i := range 10 {
		fs = append(fs, FileResult{Dir: i >= 7, Status: StatusFailed, Err: first})
	}
	fs = append(fs, FileResult{Status: StatusDone})
	for _, tc := range []struct {
		files []FileResult
		want  string
	}{
		{fs, "7 files and 3 folders failed, the first: first"},
		{fs[7:], "3 folders failed, the first: first"},
		{fs[6:8], "1 file and 1 folder failed, the first: first"},
		{fs[:2], "2 files failed, the first: first"},
		{fs[:1], "first"},
	} {
		if err := failures(tc.files); err == nil || err.Error() != tc.want || !errors.Is(err, first) {
			t.Errorf("failures: %v, want %q", err, tc.want)
		}
	}
	if err := failures(fs[10:]); err != nil {
		t.Errorf("failures of none: %v", err)
	}
}

// TestRefuse: a sender answered by Refuse fails at once with the reason.
func TestRefuse(t *testing.T) {
	a, b := streamPair()
	go Refuse(b, "bob is receiving from carol; try again when that is done")
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), []byte("data"), 0o644)
	_, err := Send(context.Background(), a, []string{filepath.Join(src, "f")}, SendOptions{})
	if !errors.Is(err, ErrPeer) || !strings.Contains(err.Error(), "bob is receiving from carol; try again") {
		t.Errorf("Send: %v, want the refusal's reason", err)
	}
}
