//go:build !linux

package xfer

import "errors"

func mountTmpfs(dir, opts string) (unmount func(), err error) { return nil, errors.ErrUnsupported }
