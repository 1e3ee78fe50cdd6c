//go:build !unix

package xfer

import "errors"

func mkfifo(path string) error { return errors.ErrUnsupported }
