package xfer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Send a folder to a receiver over an in-memory stream pair (in p2plink, a
// peer-protocol stream opened for the "xfer" service).
func ExampleSend() {
	src, _ := os.MkdirTemp("", "send")
	dst, _ := os.MkdirTemp("", "recv")
	defer os.RemoveAll(src)
	defer os.RemoveAll(dst)
	os.MkdirAll(filepath.Join(src, "photos"), 0o755)
	os.WriteFile(filepath.Join(src, "photos", "a.jpg"), []byte("not really a photo"), 0o644)

	a, b := streamPair()
	done := make(chan Result)
	go func() {
		res, err := Receive(context.Background(), b, dst, ReceiveOptions{})
		if err != nil {
			fmt.Println("receive:", err)
		}
		done <- res
	}()
	sres, err := Send(context.Background(), a, []string{filepath.Join(src, "photos")}, SendOptions{Compress: true})
	if err != nil {
		fmt.Println("send:", err)
	}
	rres := <-done
	for _, f := range rres.Files {
		fmt.Printf("%s: %v, stored as %q\n", f.Name, f.Status, f.Path)
	}
	fmt.Println("bytes sent:", sres.Bytes)
	// Output:
	// photos: done, stored as "photos"
	// photos/a.jpg: done, stored as "photos/a.jpg"
	// bytes sent: 18
}
