package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2plink/p2plink/link/linktest"
	"github.com/p2plink/p2plink/peer"
	"github.com/p2plink/p2plink/peer/share"
)

// syncBuf is a bytes.Buffer safe for the server's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sharePeers connects a client and a serving peer over an in-memory link;
// the server answers share streams with serveShares until the test ends.
func sharePeers(t *testing.T, sf *shareFlags) (cli *peer.Session, srvLog *syncBuf) {
	t.Helper()
	newCfg := func(name string) peer.Config {
		id, err := peer.NewIdentity()
		if err != nil {
			t.Fatal(err)
		}
		return peer.Config{Identity: id, Name: name}
	}
	a, b := linktest.NewFramePipe(linktest.PipeConfig{})
	ea, err := peer.NewEndpoint(a, newCfg("client"))
	if err != nil {
		t.Fatal(err)
	}
	eb, err := peer.NewEndpoint(b, newCfg("server"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var sa, sb *peer.Session
	var errA, errB error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); sa, errA = ea.Connect(ctx, nil) }()
	go func() { defer wg.Done(); sb, errB = eb.Connect(ctx, nil) }()
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("connect: %v / %v", errA, errB)
	}
	srvLog = &syncBuf{}
	se := &env{stdin: strings.NewReader(""), stdout: srvLog, stderr: srvLog}
	so := &options{configDir: t.TempDir()}
	sctx, scancel := context.WithCancel(context.Background())
	var swg sync.WaitGroup
	swg.Add(1)
	go func() {
		defer swg.Done()
		for {
			st, err := sb.AcceptStream(sctx)
			if err != nil {
				return
			}
			if st.Service() != svcShare {
				st.Close()
				continue
			}
			swg.Add(1)
			go func() {
				defer swg.Done()
				se.serveShares(sctx, so, sf, sb, st)
			}()
		}
	}()
	t.Cleanup(func() {
		scancel()
		ea.Close()
		eb.Close()
		swg.Wait()
	})
	return sa, srvLog
}

func TestShareVerbs(t *testing.T) {
	root := t.TempDir()
	docs, inbox, vault := filepath.Join(root, "docs"), filepath.Join(root, "inbox"), filepath.Join(root, "vault")
	for _, d := range []string{filepath.Join(docs, "2026"), inbox, vault} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	report := bytes.Repeat([]byte("quarterly figures\n"), 20000)
	os.WriteFile(filepath.Join(docs, "2026", "report.txt"), report, 0o644)
	os.WriteFile(filepath.Join(vault, "gold.txt"), []byte("gold\n"), 0o644)
	pwFile := filepath.Join(root, "pw")
	os.WriteFile(pwFile, []byte("hunter2\n"), 0o600)

	sf := &shareFlags{}
	sf.shares = listFlag{"docs=" + docs, "inbox=" + inbox + ":rw", "vault=" + vault}
	sf.passwordFiles = listFlag{"vault=" + pwFile}
	cli, srvLog := sharePeers(t, sf)
	ctx := context.Background()

	var out, errOut syncBuf
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut}
	dst := t.TempDir()
	o := &options{dir: dst, configDir: t.TempDir()}
	cf := &shareFlags{}

	if err := e.shareVerb(ctx, o, cf, cli, "ls", nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"docs/", "inbox/", "rw", "vault/", "password"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("ls output lacks %q:\n%s", want, out.String())
		}
	}
	out.b.Reset()
	if err := e.shareVerb(ctx, o, cf, cli, "ls", []string{"docs/2026"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "report.txt") {
		t.Errorf("ls docs/2026:\n%s", out.String())
	}

	if err := e.shareVerb(ctx, o, cf, cli, "get", []string{"docs/2026/report.txt"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "report.txt")); !bytes.Equal(got, report) {
		t.Error("get: report.txt differs")
	}

	// A password share: refused without, the same answer as a share that
	// does not exist, opened with it.
	errNo := e.shareVerb(ctx, o, cf, cli, "get", []string{"vault/gold.txt"})
	errNone := e.shareVerb(ctx, o, cf, cli, "get", []string{"nosuch/gold.txt"})
	if !errors.Is(errNo, share.ErrDenied) || !errors.Is(errNone, share.ErrDenied) {
		t.Errorf("without password: %v; no such share: %v", errNo, errNone)
	}
	cf.passwordFiles = listFlag{"vault=" + pwFile}
	if err := e.shareVerb(ctx, o, cf, cli, "get", []string{"vault/gold.txt"}); err != nil {
		t.Fatal(err)
	}

	src := filepath.Join(t.TempDir(), "photos")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "1.jpg"), []byte("jpeg"), 0o644)
	if err := e.shareVerb(ctx, o, cf, cli, "put", []string{src, "inbox/trip"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(inbox, "trip", "photos", "1.jpg")); string(got) != "jpeg" {
		t.Errorf("put: %q", got)
	}
	if err := e.shareVerb(ctx, o, cf, cli, "put", []string{src, "docs/"}); !errors.Is(err, share.ErrReadOnly) {
		t.Errorf("put to a read-only share: %v", err)
	}
	for _, want := range []string{"sharing docs", "peer=client", "op=get", "op=put", "result=ok", "no such share or access denied"} {
		if !strings.Contains(srvLog.String(), want) {
			t.Errorf("server log lacks %q:\n%s", want, srvLog.String())
		}
	}
}
