//go:build !linux

package xfer

import "errors"

func mountTmpfs(dir, opts string) (unmount func(), err error) { return nil, errors.ErrUnsupported }

func remountTmpfs(dir, opts string) error { return errors.ErrUnsupported }
