//go:build !unix

package xfer

import "os"

// lockPartial does nothing here: two transfers of the same file into one
// folder at the same time are not kept apart.
func lockPartial(f *os.File) error { return nil }

// holdWhileStoring is false where an open file cannot be renamed (Windows).
const holdWhileStoring = false
