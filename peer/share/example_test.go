package share

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// A peer shares a folder read-only with everyone; another lists its shares
// and the folder. In p2plink each request travels on its own stream of the
// peer protocol, opened for Service; here an in-memory pipe stands in.
func Example() {
	dir, _ := os.MkdirTemp("", "share-example")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "report.txt"), []byte("figures\n"), 0o644)

	cfg := &Config{}
	if err := cfg.AddFlag("docs=" + dir + ":ro"); err != nil {
		fmt.Println(err)
		return
	}
	srv, err := NewServer(cfg, ServerOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	from := Peer{Name: "ann", Fingerprint: "AAAA-BBBB-CCCC-DDDD"}

	// request serves one request on a fresh stream and returns the
	// client's end.
	request := func() Stream {
		c, s := streamPair()
		go srv.Serve(ctx, s, from)
		return c
	}
	shares, _ := List(ctx, request())
	for _, s := range shares {
		fmt.Printf("share %s (read-write: %v)\n", s.Name, s.ReadWrite)
	}
	entries, _, _ := Ls(ctx, request(), "docs", "", Auth{})
	for _, e := range entries {
		fmt.Printf("%s %s %d\n", e.Type, e.Name, e.Size)
	}
	_, _, err = Ls(ctx, request(), "secret", "", Auth{})
	fmt.Println(err)
	// Output:
	// share docs (read-write: false)
	// file report.txt 8
	// share: no such share or access denied
}
