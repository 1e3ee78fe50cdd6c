package xfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lateEntry is fileEntry with its root left for the end (kind 2).
func lateEntry(name string, data []byte) entry {
	e := fileEntry(name, data)
	e.Late, e.Root = true, [hashLen]byte{}
	return e
}

// TestLateRootLyingSender: a late-root file whose data does not match the
// root its end brings, or whose end brings no root, is not stored, and
// its partial data is discarded.
func TestLateRootLyingSender(t *testing.T) {
	data := randBytes(7, 2*ChunkSize+100)
	other := randBytes(8, len(data))
	root := specRoot(scriptHash, data)
	cases := []struct {
		name string
		end  func(w *writer)
		body []byte
		want error
	}{
		{"other data", func(w *writer) { w.end(0, &root) }, other, ErrVerify},
		{"no root at the end", func(w *writer) { w.end(0, nil) }, data, ErrProtocol},
		{"short root at the end", func(w *writer) { w.indexReason(msgEnd, 0, 0, "0123456789") }, data, ErrProtocol},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := t.TempDir()
			res, err := receiveFrom(t, dst, ReceiveOptions{}, func(f *fakeSender) {
				f.manifest(lateEntry("f", data))
				f.send(func(w *writer) {
					w.file(0, 0)
					sendChunks(w, c.body)
					c.end(w)
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
		})
	}
	// The same data with its root at the end is stored.
	dst := t.TempDir()
	_, err := receiveFrom(t, dst, ReceiveOptions{}, func(f *fakeSender) {
		f.manifest(lateEntry("f", data))
		f.send(func(w *writer) {
			w.file(0, 0)
			sendChunks(w, data)
			w.end(0, &root)
			w.msg(msgDone)
		})
	})
	if err != nil {
		t.Fatalf("honest late root: %v", err)
	}
	checkFile(t, filepath.Join(dst, "f"), data, 0o644)
}

// TestLateRootRefusedUnoffered: a receiver that did not offer late roots
// refuses a manifest entry without its root.
func TestLateRootRefusedUnoffered(t *testing.T) {
	data := randBytes(9, 100)
	a, b := streamPair()
	go func() {
		f := newFakeSender(t, a)
		f.w.hello(roleSender, []hashAlg{scriptHash}, featLateRoots)
		e := lateEntry("f", data)
		f.w.entry(&e)
		f.w.manifestEnd(1, e.Size)
		f.w.flush()
		f.drain("a receiver without late roots")
	}()
	_, err := Receive(context.Background(), b, t.TempDir(), ReceiveOptions{noLateRoots: true})
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "without its root") {
		t.Errorf("Receive: %v, want a protocol error naming the missing root", err)
	}
}

// TestLateRootCheck: for a late-root file of the size of one here, the
// receiver offers the roots of such files (actCheck); a sender that says
// its file is one of them (F at the size) with a root that is none of
// them is refused, and the file here is untouched; one whose root is the
// offered one leaves the file present, nothing written.
func TestLateRootCheck(t *testing.T) {
	data := randBytes(10, 3*ChunkSize+7)
	other := randBytes(11, len(data))
	for _, honest := range []bool{true, false} {
		dst := t.TempDir()
		writeFile(t, filepath.Join(dst, "f"), data, 0o644)
		writeFile(t, filepath.Join(dst, "f (1)"), other, 0o644)
		var rs []reply
		res, err := receiveFrom(t, dst, ReceiveOptions{}, func(f *fakeSender) {
			rs = f.manifest(lateEntry("f", data))
			root := specRoot(scriptHash, data)
			if !honest {
				root = specRoot(scriptHash, randBytes(12, len(data)))
			}
			f.send(func(w *writer) {
				w.file(0, int64(len(data)))
				w.end(0, &root)
				w.msg(msgDone)
			})
		})
		want := specRoot(scriptHash, data)
		alt := specRoot(scriptHash, other)
		if len(rs) != 1 || rs[0].Action != actCheck || rs[0].Offset != int64(len(data)) || rs[0].Root != want ||
			rs[0].Reason != string(alt[:]) {
			t.Fatalf("reply %+v; want actCheck at the size offering the roots of f and f (1)", rs)
		}
		if honest {
			if err != nil || res.Files[0].Status != StatusPresent || res.Files[0].Stored != "f" {
				t.Errorf("honest: %v, %+v; want f present", err, res.Files[0])
			}
		} else if !errors.Is(err, ErrProtocol) {
			t.Errorf("a root that is none offered: %v, want ErrProtocol", err)
		}
		checkFile(t, filepath.Join(dst, "f"), data, 0o644)
		if got := listAll(t, dst); len(got) != 2 {
			t.Errorf("files: %v, want f and f (1) only", got)
		}
	}
}

// noRacyWindow lets a test keep the hashes of files it just wrote.
func noRacyWindow(t *testing.T) {
	old := racyWindow
	racyWindow = 0
	t.Cleanup(func() { racyWindow = old })
}

// TestLateRootStalePrefixNotTrusted: a late-root send that was cut keeps
// the hashes of what it read; if the file is then replaced by other
// content of the same size with its time put back, the rerun with the same
// Hashes must not take the receiver's old prefix for the new file's and
// store a splice of the two under the splice's root (found by review):
// the kept hashes hold only while the file's identity is unchanged.
func TestLateRootStalePrefixNotTrusted(t *testing.T) {
	noRacyWindow(t)
	src, dst := t.TempDir(), t.TempDir()
	path := filepath.Join(src, "f")
	old := randBytes(101, 8*ChunkSize)
	writeFile(t, path, old, 0o644)
	id, ok := statID(path)
	if !ok {
		t.Skip("no file identity here: prefix hashes are not kept")
	}
	h := NewHashes()
	cutSend(t, path, dst, 4*ChunkSize+1000, SendOptions{Hashes: h})
	k := hashKey{path, int64(len(old)), testMtime.UnixNano(), localHashes()[0]}
	if _, kept := h.prefixState(k, 2*ChunkSize, nil, false); !kept {
		t.Fatal("the cut send kept no prefix hashes: the test would not test them")
	}
	fresh := randBytes(102, len(old))
	for {
		writeFile(t, path, fresh, 0o644) // same size, mtime put back
		if now, _ := statID(path); now != id {
			break
		}
	}
	o := run(t, []string{path}, dst, SendOptions{Hashes: h}, ReceiveOptions{})
	mustOK(t, o)
	checkFile(t, filepath.Join(dst, "f"), fresh, 0o644)
}

// TestAbortBeforeCheckedFile: a late-root file the receiver asked to check
// that changed on the sender before its turn is aborted (X instead of F),
// which fails that file only (found by review: the receiver took it for a
// protocol error, ending the transfer).
func TestAbortBeforeCheckedFile(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, "a"), randBytes(103, 3*ChunkSize), 0o644)
	writeFile(t, filepath.Join(src, "b"), randBytes(104, 100), 0o644)
	writeFile(t, filepath.Join(dst, "b"), randBytes(105, 100), 0o644) // same size: a check
	so := SendOptions{Progress: func(p Progress) {
		if p.Name == "a" && p.FileDone == p.FileSize {
			os.WriteFile(filepath.Join(src, "b"), randBytes(106, 100), 0o644) // a new mtime
		}
	}}
	o := run(t, []string{filepath.Join(src, "a"), filepath.Join(src, "b")}, dst, so, ReceiveOptions{})
	if errors.Is(o.rerr, ErrProtocol) || errors.Is(o.serr, ErrProtocol) {
		t.Fatalf("a changed file ended the transfer as a protocol error:\nsend: %v\nreceive: %v", o.serr, o.rerr)
	}
	if f := statusOf(t, o.rres, "b"); !errors.Is(f.Err, ErrChanged) {
		t.Errorf("b: %v %v, want ErrChanged", f.Status, f.Err)
	}
	if f := statusOf(t, o.rres, "a"); f.Status != StatusDone {
		t.Errorf("a: %v %v, want it stored", f.Status, f.Err)
	}
}

// TestReceiverToldOfItsBadCheck: a receiver that answers with a check the
// sender cannot take (for an entry whose root the manifest holds, or with
// roots of an odd length) is told why with '!' (found by review: the
// sender only closed, and the receiver said to rerun).
func TestReceiverToldOfItsBadCheck(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f"), randBytes(13, 100), 0o644)
	for _, tc := range []struct {
		late bool
		r    reply
		want string
	}{
		// A check for an entry whose root the manifest holds.
		{false, reply{Action: actCheck, Offset: 100}, "check"},
		{false, reply{Action: actCheck, Offset: 100, Reason: "odd"}, "check"},
		{true, reply{Action: actCheck, Offset: 100, Reason: "odd"}, "check"},
		// Refused by the sender's reader goroutine, not by sendFiles.
		{true, reply{Action: 7}, "unknown action"},
		{true, reply{Index: 5}, "reply for entry 5"},
	} {
		late := tc.late
		a, b := streamPair()
		said := make(chan string, 1)
		go func() {
			f := newFakeSender(t, b) // reads like a receiver would
			f.w.hello(roleReceiver, []hashAlg{scriptHash}, featLateRoots)
			f.w.flush()
			f.r.next() // hello
			for {
				typ, _, err := f.r.next()
				if err != nil || typ == msgManifest {
					break
				}
			}
			r := tc.r
			f.w.reply(&r)
			f.w.flush()
			said <- f.drain("a receiver with a bad reply")
		}()
		_, err := Send(context.Background(), a, []string{filepath.Join(src, "f")}, SendOptions{HashFirst: !late})
		if s := <-said; !strings.Contains(s, tc.want) || !errors.Is(err, ErrProtocol) {
			t.Errorf("late roots %v, reply %+v: sender: %v; receiver told %q; want a protocol error, told to the receiver", late, tc.r, err, s)
		}
	}
}

// TestCheckedThenCutResumes: a file sent whole after a check found it
// different, cut, resumes on the rerun with the same Hashes (found by
// review: its root was kept before it was sent, so the rerun announced it
// with its root, under which the receiver keeps no partial data).
func TestCheckedThenCutResumes(t *testing.T) {
	noRacyWindow(t)
	src, dst := t.TempDir(), t.TempDir()
	path := filepath.Join(src, "f")
	data := randBytes(111, 8*ChunkSize)
	writeFile(t, path, data, 0o644)
	writeFile(t, filepath.Join(dst, "f"), randBytes(112, len(data)), 0o644)
	h := NewHashes()
	cutSend(t, path, dst, 4*ChunkSize+1000, SendOptions{Hashes: h})
	o := run(t, []string{path}, dst, SendOptions{Hashes: h}, ReceiveOptions{})
	mustOK(t, o)
	checkFile(t, filepath.Join(dst, "f (1)"), data, 0o644)
	if o.sres.Resumed == 0 {
		t.Errorf("the rerun resumed nothing (partial data kept: %v)", listAll(t, dst))
	}
}

// TestLateResumeStaleFullEntry: a late-root resume takes a prefix's root
// from a whole file's kept hashes only under the file's identity. Another
// Send sharing the Hashes (a server's concurrent gets) may keep the old
// content's hashes after this one announced the file late; the file is
// then replaced at the same size with its time put back. Trusted, those
// hashes would match the receiver's old prefix and the new rest would be
// stored joined to it (found by review).
func TestLateResumeStaleFullEntry(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	path := filepath.Join(src, "f")
	old := randBytes(201, 8*ChunkSize)
	writeFile(t, path, old, 0o644)
	writeFile(t, filepath.Join(src, "a"), randBytes(202, 100), 0o644)
	cutOnce(t, path, dst, 4*ChunkSize+1000)
	alg := localHashes()[0]
	var e entry
	var oldSums [][hashLen]byte
	if err := hashFile(context.Background(), alg, path, &e, make([]byte, ChunkSize), &oldSums); err != nil {
		t.Fatal(err)
	}
	oldID, _ := statID(path)
	fresh := randBytes(203, len(old))
	writeFile(t, path, fresh, 0o644) // same size, mtime put back
	h := NewHashes()
	so := SendOptions{Hashes: h, Progress: func(p Progress) {
		if p.Name == "a" && p.FileDone == p.FileSize { // another Send keeps f's old hashes
			h.putID(hashKey{path, int64(len(old)), testMtime.UnixNano(), alg}, e.Root, oldSums, oldID, true)
		}
	}}
	o := run(t, []string{filepath.Join(src, "a"), path}, dst, so, ReceiveOptions{})
	mustOK(t, o)
	checkFile(t, filepath.Join(dst, "f"), fresh, 0o644)
}

// TestNameTheFileSystemRefuses: a name the receive folder's file system
// would refuse (FAT's ':') is refused before its data comes, saying why
// and what to do, and the other files go through; each such name element
// feature (':') is tried once per transfer, in a stand-in name. (There is
// no FAT here: the file system's answer is stood in for.)
func TestNameTheFileSystemRefuses(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, "d", "at 10:30", "a"), []byte("1"), 0o644)
	writeFile(t, filepath.Join(src, "d", "at 10:30", "b"), []byte("2"), 0o644)
	writeFile(t, filepath.Join(src, "d", "ok.txt"), []byte("3"), 0o644)
	tried := map[string]int{}
	ro := ReceiveOptions{hookName: func(c string) error {
		tried[c]++
		if strings.Contains(c, ":") {
			return errors.New("refuses")
		}
		return nil
	}}
	var written int64
	ro.hookFile = func(f partFile) partFile { return countWrites{f, &written} }
	o := run(t, []string{filepath.Join(src, "d")}, dst, SendOptions{}, ro)
	for _, name := range []string{"d/at 10:30/a", "d/at 10:30/b"} {
		f := statusOf(t, o.sres, name)
		if f.Status != StatusFailed || !errors.Is(f.Err, ErrRefused) || !strings.Contains(f.Err.Error(), "rename it on the sender") ||
			!strings.Contains(f.Err.Error(), `refuses the name "at 10:30"`) {
			t.Errorf("%s: %v %v; want refused, naming the element and what to do", name, f.Status, f.Err)
		}
	}
	if f := statusOf(t, o.rres, "d/ok.txt"); f.Status != StatusDone {
		t.Errorf("ok.txt: %v %v", f.Status, f.Err)
	}
	if written != 1 {
		t.Errorf("%d bytes written; want ok.txt's 1 only", written)
	}
	// One try per feature (here ':') whatever the names, and none for a
	// plain name.
	if tried["p2plink-probe:x"] != 1 || len(tried) != 1 {
		t.Errorf("tried %v; want a stand-in for ':' once, and nothing else", tried)
	}
	if f := statusOf(t, o.rres, "d/at 10:30"); f.Status != StatusFailed || !strings.Contains(f.Err.Error(), "rename it on the sender") {
		t.Errorf("the folder: %v %v; want refused, saying what to do", f.Status, f.Err)
	}
}

// TestRiskyNamesStoredWhereAllowed: where the file system takes them (ext4
// here), names with FAT's forbidden characters and a trailing dot are
// stored as they are, and the names tried leave nothing behind.
func TestRiskyNamesStoredWhereAllowed(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	names := []string{`notes:v2?.txt`, `q"<>|*`, "trailing.", "space "}
	for _, n := range names {
		writeFile(t, filepath.Join(src, n), []byte(n), 0o644)
	}
	var paths []string
	for _, n := range names {
		paths = append(paths, filepath.Join(src, n))
	}
	mustOK(t, run(t, paths, dst, SendOptions{}, ReceiveOptions{}))
	got := listAll(t, dst)
	if len(got) != len(names) {
		t.Errorf("received %v; want exactly %q", got, names)
	}
	for _, n := range names {
		checkFile(t, filepath.Join(dst, n), []byte(n), 0o644)
	}
}

// TestEndMessageExact: a file's end message (Z) is its index and a zero,
// then, for a late root only, the root: anything else breaks the protocol,
// and nothing is stored.
func TestEndMessageExact(t *testing.T) {
	data := randBytes(19, ChunkSize+5)
	for _, c := range []struct {
		name string
		end  func(w *writer)
	}{
		{"bytes after it", func(w *writer) { w.indexReason(msgEnd, 0, 0, "extra") }},
		{"a code", func(w *writer) { w.indexReason(msgEnd, 0, 1, "") }},
	} {
		dst := t.TempDir()
		_, err := receiveFrom(t, dst, ReceiveOptions{}, func(f *fakeSender) {
			f.manifest(fileEntry("f", data))
			f.send(func(w *writer) {
				w.file(0, 0)
				sendChunks(w, data)
				c.end(w)
				w.msg(msgDone)
			})
		})
		if !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: Receive %v, want ErrProtocol", c.name, err)
		}
		if got := listAll(t, dst); len(got) != 0 {
			t.Errorf("%s: kept %v", c.name, got)
		}
	}
}

// TestLateRootResumeAfterTouch: a late-root file's partial data is kept
// under its name, size and modification time; a rerun after the file was
// touched (same content, a new time) still resumes from it, the sender
// having checked the prefix against the file as it is; a file whose
// content changed with the new time is sent from 0, and either way the
// file stored is the sender's.
func TestLateRootResumeAfterTouch(t *testing.T) {
	for _, changed := range []bool{false, true} {
		src, dst := t.TempDir(), t.TempDir()
		path := filepath.Join(src, "f")
		data := randBytes(121, 12*ChunkSize+9)
		writeFile(t, path, data, 0o644)
		cutOnce(t, path, dst, 6*ChunkSize+1000)
		if changed {
			data = randBytes(122, len(data))
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		later := testMtime.Add(time.Hour)
		if err := os.Chtimes(path, later, later); err != nil {
			t.Fatal(err)
		}
		o := run(t, []string{path}, dst, SendOptions{}, ReceiveOptions{})
		mustOK(t, o)
		if got, err := os.ReadFile(filepath.Join(dst, "f")); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("changed %v: stored file differs from the sender's (%v)", changed, err)
		}
		if resumed := o.sres.Resumed > 0; resumed == changed {
			t.Errorf("changed %v: resumed %d bytes; want a resume only of the same content", changed, o.sres.Resumed)
		}
		if got := listAll(t, dst); len(got) != 1 {
			t.Errorf("changed %v: left %v; want the file only", changed, got)
		}
	}
}

// TestOldTimeResumesAfterTouchedCut: once a touched file's transfer resumed
// into the partial data of the earlier time and was cut in turn, a
// transfer of the file at its earlier time again still resumes from it
// (found by review: its state then named the new time, and the data was
// started over).
func TestOldTimeResumesAfterTouchedCut(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	p := filepath.Join(src, "f")
	data := randBytes(124, 24*ChunkSize+9)
	writeFile(t, p, data, 0o644)
	cutOnce(t, p, dst, 6*ChunkSize+1000)
	later := testMtime.Add(time.Hour)
	os.Chtimes(p, later, later)
	if o := cutSend(t, p, dst, 6*ChunkSize+1000, SendOptions{}); o.rres.Resumed == 0 {
		t.Fatal("the touched file's transfer did not resume")
	}
	os.Chtimes(p, testMtime, testMtime) // the earlier time again
	o := run(t, []string{p}, dst, SendOptions{}, ReceiveOptions{})
	mustOK(t, o)
	checkFile(t, filepath.Join(dst, "f"), data, 0o644)
	if o.rres.Resumed == 0 {
		t.Error("the transfer at the earlier time resumed nothing")
	}
}

// TestPartialFolderReadOnce: however many files a transfer plans and
// stores, the partial data's folder is read once (found by review: it was
// read for every late-root file and every file stored, each reading every
// state file there).
func TestPartialFolderReadOnce(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	for i := range 30 {
		writeFile(t, filepath.Join(src, "d", fmt.Sprint(i)), []byte{byte(i)}, 0o644)
	}
	if err := os.MkdirAll(filepath.Join(dst, partialDir), 0o700); err != nil {
		t.Fatal(err)
	}
	for i := range 10 { // others' partial data, of other names
		id := fmt.Sprintf("%032x", i)
		os.WriteFile(filepath.Join(dst, partialDir, id+".json"), []byte(fmt.Sprintf(`{"name":"other%d","size":1,"root":"","chunk":65536,"hash":"blake3","mtime":1}`, i)), 0o600)
	}
	before := partialScans.Load()
	mustOK(t, run(t, []string{filepath.Join(src, "d")}, dst, SendOptions{}, ReceiveOptions{}))
	if n := partialScans.Load() - before; n != 1 {
		t.Errorf("the partial data's folder was read %d times for 30 files, want once", n)
	}
}
