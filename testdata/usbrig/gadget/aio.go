package main

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Linux AIO (io_setup/io_submit/io_getevents) on FunctionFS endpoint files.
//
// Plain blocking read/write on an endpoint file is not safe from Go: a signal
// that interrupts a request half way makes the kernel dequeue it, and the
// runtime's retry of the system call sends or receives the bytes again. With
// AIO the request lives in the kernel until it completes; waiting for the
// completion is the only thing a signal can interrupt, and that is retried
// without touching the request.

const (
	iocbCmdPread  = 0
	iocbCmdPwrite = 1
)

// iocb mirrors struct iocb from <linux/aio_abi.h> on little-endian 64-bit.
type iocb struct {
	data      uint64
	key       uint32
	rwFlags   uint32
	opcode    uint16
	reqprio   int16
	fildes    uint32
	buf       uint64
	nbytes    uint64
	offset    int64
	reserved2 uint64
	flags     uint32
	resfd     uint32
}

// ioEvent mirrors struct io_event.
type ioEvent struct {
	data uint64
	obj  uint64
	res  int64
	res2 int64
}

// aioFile runs one request at a time on one endpoint file through its own
// AIO context. It is used by a single goroutine.
type aioFile struct {
	fd  int
	ctx uintptr
}

func newAIOFile(fd int) (*aioFile, error) {
	var ctx uintptr
	if _, _, e := unix.Syscall(unix.SYS_IO_SETUP, 4, uintptr(unsafe.Pointer(&ctx)), 0); e != 0 {
		return nil, fmt.Errorf("io_setup: %w (is CONFIG_AIO on?)", e)
	}
	return &aioFile{fd: fd, ctx: ctx}, nil
}

// do submits one read or write of buf and waits for it to complete. buf
// must be heap memory the caller keeps referenced until do returns.
func (a *aioFile) do(opcode uint16, buf []byte) (int, error) {
	cb := iocb{opcode: opcode, fildes: uint32(a.fd), nbytes: uint64(len(buf))}
	if len(buf) > 0 {
		cb.buf = uint64(uintptr(unsafe.Pointer(&buf[0])))
	}
	list := [1]*iocb{&cb}
	for {
		n, _, e := unix.Syscall(unix.SYS_IO_SUBMIT, a.ctx, 1, uintptr(unsafe.Pointer(&list[0])))
		if e == unix.EINTR {
			continue // nothing was queued
		}
		if e != 0 {
			return 0, e
		}
		if n != 1 {
			return 0, errors.New("io_submit queued nothing")
		}
		break
	}
	var ev [1]ioEvent
	for {
		n, _, e := unix.Syscall6(unix.SYS_IO_GETEVENTS, a.ctx, 1, 1, uintptr(unsafe.Pointer(&ev[0])), 0, 0)
		if e == unix.EINTR {
			continue // the request is still in the kernel; wait again
		}
		if e != 0 {
			return 0, e
		}
		if n == 1 {
			break
		}
	}
	if ev[0].res < 0 {
		return 0, unix.Errno(-ev[0].res)
	}
	return int(ev[0].res), nil
}

func (a *aioFile) read(buf []byte) (int, error)  { return a.do(iocbCmdPread, buf) }
func (a *aioFile) write(buf []byte) (int, error) { return a.do(iocbCmdPwrite, buf) }
