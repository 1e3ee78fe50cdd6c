package xfer

import "syscall"

// mountTmpfs mounts a tmpfs with the given options on dir (root only).
func mountTmpfs(dir, opts string) (unmount func(), err error) {
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		return nil, err
	}
	return func() { syscall.Unmount(dir, 0) }, nil
}

// remountTmpfs changes the options (its size) of the tmpfs on dir.
func remountTmpfs(dir, opts string) error {
	return syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, opts)
}
