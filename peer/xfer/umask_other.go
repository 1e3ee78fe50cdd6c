//go:build !unix

package xfer

import "io/fs"

// umask is zero where files have no Unix permission bits to mask.
var umask fs.FileMode
