package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log"

	"golang.org/x/sys/unix"
)

// forwardUevents stands in for udevd: libusb (built with libudev) learns of
// hot-plugged devices only from udevd's monitor messages on netlink group
// 2, which nobody sends in a VM without udevd. This copies each kernel
// uevent (group 1) into a libudev-format message on group 2.
func forwardUevents() error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return fmt.Errorf("uevent socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("bind uevent socket: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	go func() {
		buf := make([]byte, 64<<10)
		dst := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 2}
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err == unix.EINTR || err == unix.ENOBUFS {
				continue
			}
			if err != nil {
				log.Printf("uevent forwarder: %v; stopping", err)
				return
			}
			msg := udevMessage(buf[:n])
			if msg == nil {
				continue
			}
			if err := unix.Sendto(fd, msg, 0, dst); err != nil && err != unix.ECONNREFUSED {
				log.Printf("uevent forwarder: send: %v", err)
			}
		}
	}()
	return nil
}

// udevMessage turns a kernel uevent ("action@devpath\0KEY=value\0...")
// into the message udevd would multicast: a 40-byte libudev header and the
// same properties.
func udevMessage(kmsg []byte) []byte {
	i := bytes.IndexByte(kmsg, 0)
	if i < 0 || !bytes.Contains(kmsg[:i], []byte("@")) {
		return nil // not a kernel uevent (or already a libudev message)
	}
	props := kmsg[i+1:]
	var subsystem, devtype []byte
	for _, kv := range bytes.Split(props, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("SUBSYSTEM=")); ok {
			subsystem = v
		} else if v, ok := bytes.CutPrefix(kv, []byte("DEVTYPE=")); ok {
			devtype = v
		}
	}
	const headerSize = 40
	h := make([]byte, headerSize, headerSize+len(props))
	copy(h, "libudev\x00")
	binary.BigEndian.PutUint32(h[8:], 0xfeedcafe)
	binary.NativeEndian.PutUint32(h[12:], headerSize)
	binary.NativeEndian.PutUint32(h[16:], headerSize)
	binary.NativeEndian.PutUint32(h[20:], uint32(len(props)))
	if subsystem != nil {
		binary.BigEndian.PutUint32(h[24:], murmur2(subsystem))
	}
	if devtype != nil {
		binary.BigEndian.PutUint32(h[28:], murmur2(devtype))
	}
	// Tag bloom filter (h[32:40]) left zero: no tags.
	return append(h, props...)
}

// murmur2 is MurmurHash2 with seed 0, the hash libudev's socket filter
// compares subsystem and devtype with.
func murmur2(data []byte) uint32 {
	const m = 0x5bd1e995
	h := uint32(len(data))
	for len(data) >= 4 {
		k := binary.LittleEndian.Uint32(data)
		k *= m
		k ^= k >> 24
		k *= m
		h *= m
		h ^= k
		data = data[4:]
	}
	switch len(data) {
	case 3:
		h ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
