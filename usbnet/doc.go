// Package usbnet drives USB host-to-host bridge cables (Prolific PL-2301/2302,
// PL-25A1 and its Belkin and National Instruments rebrands, PL-27A1, NetChip
// NET1080, GeneSys GL620A and the cdc_subset cables) from userspace, through
// libusb, and offers each as a link.Link.
//
// # The cable
//
// Each end of a bridge cable enumerates on its own host as a USB device with
// the same ids. What one host writes to its bulk OUT endpoint comes out of
// the other host's bulk IN endpoint. Frame boundaries survive only through
// USB transfer semantics: a transfer ends at a short packet. So every transfer
// this package writes has a length that is not a multiple of the endpoint's
// wMaxPacketSize (one pad byte is added when it would be), and one completed
// IN transfer is one frame.
//
// # Frames
//
// On PL-25A1, PL-2301 and cdc_subset cables a frame on the bulk pipe is an
// Ethernet II frame with p2plink's EtherType, written by framing.EncodeEther,
// plus the pad byte when needed: exactly what the Linux kernel's plusb and
// cdc_subset drivers put on the pipe for a usb0 interface. So a host running
// `p2plink eth usb0` over the kernel driver talks to a host running
// `p2plink usb` through this package. NET1080 and GL620A cables wrap the
// same Ethernet frame in the header the kernel's net1080 and gl620a drivers
// use. USB checks every packet with a CRC-16 in hardware; the driver checks
// the EtherType, version and length and drops (and counts, in Stats)
// everything else, so a far end that speaks something else never takes the
// link down.
//
// # Per chip
//
// Open detaches the kernel driver, selects configuration 1, claims interface
// 0 alternate setting 0 and takes the bulk (and interrupt) endpoints from the
// descriptors, never from a table. Then: PL-25A1 family, the peer status
// vendor request (0xC0/0xFB) tells when the far host attaches or leaves, and
// is polled; PL-2301, the QuickLink handshake (reset, clear TX_REQ and TX_C,
// set PEER_E, watch PEER_E on the interrupt endpoint), tolerating STALLs;
// NET1080, both FIFOs flushed and STATUS bit 14 polled. Every cable has its
// stale bytes drained on open.
//
// # Transfers
//
// One reader goroutine per link keeps an IN transfer posted at all times,
// into a buffer that is a multiple of wMaxPacketSize and holds the largest
// transfer, and queues frames for ReadFrom (32 deep; when the queue is full it
// stops reading, the chip's FIFO fills and the far end's writes wait: USB's
// own flow control). Every transfer has a deadline (Config.TransferTimeout)
// through a reusable context, so the driver allocates nothing per frame.
// Several IN transfers in flight at once (as libusb allows) are not used:
// the seam's blocking ReadContext cannot order their completions.
//
// # Unplug and replug
//
// When the far end leaves or the cable is pulled, calls return errors
// wrapping link.ErrDisconnected (ReadFrom once per loss, WriteTo while it
// lasts). The link keeps polling — gousb has no hotplug — reopens the cable
// when it is back, and carries on; nothing needs reopening by the caller.
// A transfer error other than a timeout (a STALL, a wedged PL-2301) is
// handled the same way: reset, reopen, handshake again.
//
// # Building
//
// libusb is reached through cgo (github.com/google/gousb). Only the files
// tagged cgo import it; a binary built with CGO_ENABLED=0 builds and tests,
// and OpenLibusb, Cables and Open without Config.Bus return ErrNoLibusb.
//
// # Tests
//
// The driver sees USB only through the small Bus/Device/EndpointReader/
// EndpointWriter seam in seam.go. Package usbtest fills it with an in-memory
// cable that keeps USB's rules; a rig with a real kernel USB stack uses the
// libusb Bus (Config.Bus nil).
package usbnet
