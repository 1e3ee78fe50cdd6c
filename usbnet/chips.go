package usbnet

import "fmt"

// Family is a group of bridge chips driven the same way.
type Family int

// Chip families, each with its own handshake and framing (see Chips).
const (
	// PL25A1 covers the Prolific PL-25A1 and its rebrands, and the PL-27A1:
	// Ethernet II frames, peer status by vendor request 0xFB.
	PL25A1 Family = iota + 1
	// PL2301 covers the Prolific PL-2301/2302: Ethernet II frames, the
	// QuickLink feature-bit handshake.
	PL2301
	// NET1080 covers the NetChip NET1080: Ethernet frames in a header and
	// trailer with a packet id, registers by vendor request 0x10.
	NET1080
	// GL620A covers the GeneSys GL620USB-A: Ethernet frames behind a count
	// and length header; a read may carry several frames.
	GL620A
	// CDCSubset covers the simple cables the Linux cdc_subset driver runs:
	// raw Ethernet II frames, no control requests, no peer detection.
	CDCSubset
)

// String returns the family's name, e.g. "PL-25A1".
func (f Family) String() string {
	switch f {
	case PL25A1:
		return "PL-25A1"
	case PL2301:
		return "PL-2301"
	case NET1080:
		return "NET1080"
	case GL620A:
		return "GL620A"
	case CDCSubset:
		return "cdc_subset"
	}
	return fmt.Sprintf("Family(%d)", int(f))
}

// Chip is a known bridge cable: its USB ids and how to drive it.
type Chip struct {
	Vendor, Product uint16
	Name            string
	Family          Family
	// Kernel is the Linux driver that binds the cable (and turns it into a
	// network interface that p2plink eth can use instead).
	Kernel string
	// ResetOnOpen says the chip needs a USB reset before use, at least
	// after an unplug (ALi M5632 and its rebrands).
	ResetOnOpen bool
}

// ID returns "vvvv:pppp".
func (c Chip) ID() string { return fmt.Sprintf("%04x:%04x", c.Vendor, c.Product) }

// Chips is the table of bridge cables this package knows, from
// shared/reference/usb-bridge-cables.md. The udev rules in udev/ list the
// same ids; a test keeps the two in step.
var Chips = []Chip{
	{0x067b, 0x0000, "Prolific PL-2301", PL2301, "plusb", false},
	{0x067b, 0x0001, "Prolific PL-2302", PL2301, "plusb", false},
	{0x067b, 0x25a1, "Prolific PL-25A1", PL25A1, "plusb", false},
	{0x050d, 0x258a, "Belkin F5U258/F5U279 (PL-25A1)", PL25A1, "plusb", false},
	{0x3923, 0x7825, "National Instruments host-to-host (PL-25A1)", PL25A1, "plusb", false},
	{0x067b, 0x27a1, "Prolific PL-27A1", PL25A1, "plusb", false},
	{0x0525, 0x1080, "NetChip NET1080", NET1080, "net1080", false},
	{0x06d0, 0x0622, "Laplink Gold (NET1080)", NET1080, "net1080", false},
	{0x05e3, 0x0502, "GeneSys GL620USB-A", GL620A, "gl620a", false},
	{0x050d, 0x0004, "Belkin F5U104", CDCSubset, "cdc_subset", false},
	{0x056c, 0x8100, "eTEK", CDCSubset, "cdc_subset", false},
	{0x0525, 0x9901, "Advance USBNET", CDCSubset, "cdc_subset", false},
	{0x0547, 0x2720, "AnchorChips AN2720", CDCSubset, "cdc_subset", false},
	{0x0547, 0x2727, "Xircom PGUNET", CDCSubset, "cdc_subset", false},
	{0x0402, 0x5632, "ALi M5632", CDCSubset, "cdc_subset", true},
	{0x182d, 0x207c, "SiteCom CN-124", CDCSubset, "cdc_subset", true},
	{0x050f, 0x0190, "KC Technology KC-190", CDCSubset, "cdc_subset", false},
}

// LookupChip returns the known chip with these ids.
func LookupChip(vendor, product uint16) (Chip, bool) {
	for _, c := range Chips {
		if c.Vendor == vendor && c.Product == product {
			return c, true
		}
	}
	return Chip{}, false
}
