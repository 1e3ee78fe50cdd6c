package chat

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Two peers chat over an in-memory stream pair (in p2plink, a peer-protocol
// stream opened for the "chat" service). Alice says two lines and leaves;
// Bob's side prints them.
func ExampleRun() {
	a, b := streamPair()
	clock := func() time.Time { return time.Date(2026, 5, 1, 9, 30, 0, 0, time.UTC) }
	done := make(chan error)
	go func() {
		done <- Run(context.Background(), a, strings.NewReader("hello bob\nsee you\n"), io.Discard,
			Options{Name: "alice", Now: clock})
	}()
	bobIn, bobInW := io.Pipe()
	defer bobInW.Close()
	if err := Run(context.Background(), b, bobIn, os.Stdout, Options{Name: "bob", Now: clock}); err != nil {
		fmt.Println(err)
	}
	<-done
	// Output:
	// [09:30:00] * alice joined
	// [09:30:00] alice: hello bob
	// [09:30:00] alice: see you
	// [09:30:00] * alice left
}
