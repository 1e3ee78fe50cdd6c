package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--baud", "0"}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var ports []string
	for len(ports) < 2 && sc.Scan() {
		ports = append(ports, sc.Text())
	}
	if len(ports) != 2 || !strings.HasPrefix(ports[0], "/dev/") {
		cancel()
		if err := <-done; err != nil {
			t.Skipf("no null modem here: %v", err)
		}
		t.Fatalf("printed %q, want two device paths", ports)
	}
	go io.Copy(io.Discard, pr)
	a, err := os.OpenFile(ports[0], os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := os.OpenFile(ports[1], os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a.Write([]byte("hello"))
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(b, buf); err != nil || !bytes.Equal(buf, []byte("hello")) {
		t.Fatalf("read %q, %v", buf, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRunBadFlags(t *testing.T) {
	if err := run(context.Background(), []string{"extra"}, io.Discard, io.Discard); err == nil {
		t.Fatal("stray argument accepted")
	}
}
