package xfer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"
)

// Message types on the wire; see SPEC.md.
const (
	msgHello    byte = 'H' // both ways: version, chunk size
	msgEntry    byte = 'E' // sender: one manifest entry
	msgManifest byte = 'M' // sender: end of manifest (count, total bytes)
	msgReply    byte = 'R' // receiver: what it holds of one entry
	msgFile     byte = 'F' // sender: data of one file follows, from an offset
	msgData     byte = 'D' // sender: one chunk
	msgEnd      byte = 'Z' // sender: the file is complete
	msgAbort    byte = 'X' // sender: the file could not be sent (reason)
	msgResult   byte = 'K' // receiver: the file was stored, or why not
	msgDone     byte = 'Q' // both ways: nothing more
	msgError    byte = '!' // both ways: fatal error (reason), then the stream ends
	msgNotSent  byte = 'N' // sender: an entry it leaves out (name, reason); see featNotSent
)

// Version is the protocol version spoken by this package. Version 2 named a
// file by its root hash (SHA-256 over the SHA-256 of each chunk) and sent
// chunks without a hash of their own; version 3 lets the two sides agree on
// the hash in their hellos (SHA-256 or BLAKE3) and ignores what a later
// version appends to a hello. Peers of another version are refused.
const Version = 3

// ChunkSize is the size of a data chunk: every chunk of a file but the last is
// exactly this long. The hash of each chunk is one leaf of the file's root
// hash, and the unit in which an interrupted transfer resumes.
const ChunkSize = 64 << 10

const (
	headerLen  = 5 // type byte + 4-byte big-endian payload length
	maxPayload = ChunkSize + 1024
	maxName    = 4096 // bytes of a relative name on the wire
	maxReason  = 1024 // bytes of a reason string on the wire
	hashLen    = 32   // bytes of every hash the protocol names
	maxHashes  = 16   // hashes listed in a hello
	helloMagic = "p2plink-xfer"
)

// Roles in hello.
const (
	roleSender   byte = 'S'
	roleReceiver byte = 'R'
)

// Entry kinds. On the wire a file whose root comes with its end (Z) is
// kind 2; in an entry it is kindFile with Late set.
const (
	kindFile     byte = 0
	kindDir      byte = 1
	kindFileLate byte = 2
)

// Features a hello may list, in the byte after its hashes.
const (
	// featLateRoots: the side takes (receiver) or sends (sender) files
	// whose root comes with their end, not in the manifest, so that a
	// sender starts sending at once instead of reading every file first.
	featLateRoots byte = 1
	// featNotSent: the side tells (sender) or takes (receiver) the
	// entries the sender leaves out of the manifest (symbolic links,
	// special files, names the receiver would refuse), each with the
	// reason, in msgNotSent messages among the manifest's, so that the
	// receiver's user learns what did not come and why.
	featNotSent byte = 2
)

// Reply actions.
const (
	actSend    byte = 0 // send from Offset (Root covers the held prefix)
	actPresent byte = 1 // an identical file is already there: nothing to send
	actRefuse  byte = 2 // the receiver will not take it (Reason)
	// actCheck, for a late-root file only: a file of that name and size
	// is there, of root Root; the sender compares its own and sends from
	// Offset (the size: nothing) if they are the same, from 0 otherwise.
	actCheck byte = 3
)

// Data flags.
const flagZstd byte = 1

// errProto marks a peer that broke the protocol.
var errProto = ErrProtocol

func protoErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errProto}, args...)...)
}

// entry is one manifest entry.
type entry struct {
	Kind  byte
	Mode  uint32 // permission bits (0o777)
	Size  int64
	Mtime int64         // Unix nanoseconds
	Root  [hashLen]byte // the file's root hash (fileRoot); zero for folders
	Name  string        // slash-separated relative name
	// Late: the root is not in the manifest (kind 2 on the wire) but
	// comes with the file's end message, hashed as it was sent.
	Late bool
}

// reply is the receiver's answer for one entry.
type reply struct {
	Index  uint32
	Action byte
	Offset int64
	Root   [hashLen]byte
	Reason string
}

// directIO is the size from which a message skips the writer's buffer, on
// its way to a stream that takes several buffers at once: it spares a copy
// of every byte of file data.
const directIO = 16 << 10

// newWriter frames messages onto dst through a buffer of size bytes.
func newWriter(dst io.Writer, size int) *writer {
	return &writer{bw: bufio.NewWriterSize(dst, size), dst: dst}
}

// newReader reads framed messages from src through a small buffer. It
// takes in what src has at hand (a peer that wrote several messages at once
// is not left blocked in its write), and a payload larger than the buffer
// is read mostly from src directly (bufio reads a request larger than its
// buffer so), which spares a copy of nearly every byte of file data.
func newReader(src io.Reader) *reader {
	return &reader{br: bufio.NewReaderSize(src, readBuffer)}
}

// readBuffer is the size of a reader's buffer: room for the small messages.
const readBuffer = 4 << 10

// writer frames messages onto a buffered writer. Its messages and flushes
// are whole under mu: the sender's reader goroutine may write '!' between
// two of the main goroutine's messages.
type writer struct {
	mu    sync.Mutex
	bw    *bufio.Writer
	dst   io.Writer // what bw writes to: a buffersWriter takes messages of directIO and more directly
	vec   [4][]byte // the buffers of such a message
	hdr   [headerLen]byte
	flags [1]byte
	n     int64 // bytes framed so far
}

func (w *writer) msg(typ byte, parts ...[]byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > maxPayload {
		return fmt.Errorf("xfer: internal error: message of %d bytes", n)
	}
	w.hdr[0] = typ
	binary.BigEndian.PutUint32(w.hdr[1:], uint32(n))
	if bv, ok := w.dst.(buffersWriter); ok && n >= directIO && len(parts) < len(w.vec) {
		// What is buffered goes first, then the message from where it
		// lies, header and payload in the same packets.
		if err := w.bw.Flush(); err != nil {
			return err
		}
		v := append(append(w.vec[:0], w.hdr[:]), parts...)
		_, err := bv.WriteBuffers(v...)
		clear(w.vec[:len(v)]) // keep no reference to the caller's data
		if err != nil {
			return err
		}
		w.n += int64(headerLen + n)
		return nil
	}
	if _, err := w.bw.Write(w.hdr[:]); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := w.bw.Write(p); err != nil {
			return err
		}
	}
	w.n += int64(headerLen + n)
	return nil
}

// buffersWriter writes several buffers as one write of them joined
// (peer.Stream.WriteBuffers).
type buffersWriter interface {
	WriteBuffers(bufs ...[]byte) (int, error)
}

func (w *writer) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bw.Flush()
}

// hello announces the version, the chunk size, the role, the hashes this
// side accepts, its preferred first, and the features it has.
func (w *writer) hello(role byte, hashes []hashAlg, features byte) error {
	b := make([]byte, 0, len(helloMagic)+8+len(hashes))
	b = append(b, helloMagic...)
	b = append(b, Version)
	b = binary.BigEndian.AppendUint32(b, ChunkSize)
	b = append(b, role, byte(len(hashes)))
	for _, h := range hashes {
		b = append(b, byte(h))
	}
	b = append(b, features)
	return w.msg(msgHello, b)
}

func (w *writer) entry(e *entry) error {
	b := make([]byte, 0, 1+4+8+8+hashLen+len(e.Name))
	kind, root := e.Kind, e.Root
	if e.Late {
		kind, root = kindFileLate, [hashLen]byte{}
	}
	b = append(b, kind)
	b = binary.BigEndian.AppendUint32(b, e.Mode)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Size))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Mtime))
	b = append(b, root[:]...)
	b = append(b, e.Name...)
	return w.msg(msgEntry, b)
}

func (w *writer) manifestEnd(count uint32, total int64) error {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:], count)
	binary.BigEndian.PutUint64(b[4:], uint64(total))
	return w.msg(msgManifest, b[:])
}

func (w *writer) reply(r *reply) error {
	b := make([]byte, 0, 4+1+8+hashLen+len(r.Reason))
	b = binary.BigEndian.AppendUint32(b, r.Index)
	b = append(b, r.Action)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Offset))
	b = append(b, r.Root[:]...)
	b = append(b, truncReason(r.Reason)...)
	return w.msg(msgReply, b)
}

func (w *writer) file(index uint32, offset int64) error {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:], index)
	binary.BigEndian.PutUint64(b[4:], uint64(offset))
	return w.msg(msgFile, b[:])
}

// data frames one chunk: flags, then the (possibly compressed) data.
func (w *writer) data(flags byte, p []byte) error {
	w.flags[0] = flags
	return w.msg(msgData, w.flags[:], p)
}

func (w *writer) indexReason(typ byte, index uint32, status byte, reason string) error {
	b := make([]byte, 0, 5+len(reason))
	b = binary.BigEndian.AppendUint32(b, index)
	b = append(b, status)
	b = append(b, truncReason(reason)...)
	return w.msg(typ, b)
}

// end ends a file (Z); root, for a late-root file, is its root.
func (w *writer) end(index uint32, root *[hashLen]byte) error {
	b := make([]byte, 0, 5+hashLen)
	b = binary.BigEndian.AppendUint32(b, index)
	b = append(b, 0)
	if root != nil {
		b = append(b, root[:]...)
	}
	return w.msg(msgEnd, b)
}

// notSent tells the receiver of an entry left out of the manifest (N):
// its name, cut to maxName bytes (it may not be UTF-8: it is one the
// sender would not send), and why.
func (w *writer) notSent(name, reason string) error {
	name = name[:min(len(name), maxName)]
	b := make([]byte, 0, 2+len(name)+len(reason))
	b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
	b = append(b, name...)
	b = append(b, truncReason(reason)...)
	return w.msg(msgNotSent, b)
}

func (w *writer) fatal(reason string) error {
	return w.msg(msgError, []byte(truncReason(reason)))
}

func truncReason(s string) string {
	if len(s) <= maxReason {
		return s
	}
	s = s[:maxReason]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// reader reads framed messages; the payload is valid until the next call.
type reader struct {
	br  *bufio.Reader
	buf []byte
	hdr [headerLen]byte
	n   int64 // bytes read so far
}

// next returns the next message. A clean end of stream before a header is
// io.EOF; an end inside a message is io.ErrUnexpectedEOF.
func (r *reader) next() (byte, []byte, error) {
	if _, err := io.ReadFull(r.br, r.hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(r.hdr[1:])
	if n > maxPayload {
		return 0, nil, protoErrorf("message of %d bytes (limit %d)", n, maxPayload)
	}
	if cap(r.buf) < int(n) {
		r.buf = make([]byte, n, max(int(n), 4096))
	}
	p := r.buf[:n]
	if _, err := io.ReadFull(r.br, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	r.n += int64(headerLen) + int64(n)
	return r.hdr[0], p, nil
}

// hello is a parsed hello.
type hello struct {
	version  byte
	chunk    uint32
	role     byte
	hashes   []hashAlg // as listed, unknown ones included
	features byte      // the byte after the hashes; 0 if none
}

// parseHello checks a hello. For another version it returns that version
// and no error, whatever follows it. Bytes after the hash list are ignored:
// they are for later versions to add to.
func parseHello(p []byte) (h hello, err error) {
	m := len(helloMagic)
	if len(p) < m+1 || string(p[:m]) != helloMagic {
		return h, protoErrorf("not a p2plink file transfer (bad hello)")
	}
	h.version = p[m]
	if h.version != Version {
		return h, nil
	}
	if len(p) < m+7 {
		return h, protoErrorf("malformed hello")
	}
	h.chunk = binary.BigEndian.Uint32(p[m+1:])
	h.role = p[m+5]
	n := int(p[m+6])
	if (h.role != roleSender && h.role != roleReceiver) || n == 0 || n > maxHashes || len(p) < m+7+n {
		return h, protoErrorf("malformed hello")
	}
	for _, b := range p[m+7 : m+7+n] {
		h.hashes = append(h.hashes, hashAlg(b))
	}
	if len(p) > m+7+n {
		h.features = p[m+7+n]
	}
	return h, nil
}

func parseEntry(p []byte) (entry, error) {
	var e entry
	const fixed = 1 + 4 + 8 + 8 + hashLen
	if len(p) < fixed+1 || len(p) > fixed+maxName {
		return e, protoErrorf("manifest entry of %d bytes", len(p))
	}
	e.Kind = p[0]
	e.Mode = binary.BigEndian.Uint32(p[1:])
	size := binary.BigEndian.Uint64(p[5:])
	e.Mtime = int64(binary.BigEndian.Uint64(p[13:]))
	copy(e.Root[:], p[21:fixed])
	e.Name = string(p[fixed:])
	switch e.Kind {
	case kindFile, kindDir:
	case kindFileLate:
		if e.Root != [hashLen]byte{} {
			return e, protoErrorf("manifest entry with a late root and a root")
		}
		e.Kind, e.Late = kindFile, true
	default:
		return e, protoErrorf("manifest entry of unknown kind %d", e.Kind)
	}
	if size > 1<<62 {
		return e, protoErrorf("manifest entry with size %d", size)
	}
	e.Size = int64(size)
	if e.Kind == kindDir && (e.Size != 0 || e.Root != [hashLen]byte{}) {
		return e, protoErrorf("directory entry with size %d or a root", e.Size)
	}
	if e.Mode&^0o777 != 0 {
		return e, protoErrorf("manifest entry with mode %#o", e.Mode)
	}
	return e, nil
}

// parseNotSent splits a not-sent message (N): a name of 1..maxName bytes
// and a reason of at most maxReason. Neither is checked further: the name
// is one the sender would not send (it may hold any bytes), and both are
// only shown, escaped.
func parseNotSent(p []byte) (name, reason string, err error) {
	if len(p) < 2 {
		return "", "", protoErrorf("not-sent message of %d bytes", len(p))
	}
	n := int(binary.BigEndian.Uint16(p))
	if n == 0 || n > maxName || len(p) < 2+n || len(p) > 2+n+maxReason {
		return "", "", protoErrorf("not-sent message of %d bytes with a name of %d", len(p), n)
	}
	return string(p[2 : 2+n]), string(p[2+n:]), nil
}

func parseManifestEnd(p []byte) (count uint32, total int64, err error) {
	if len(p) != 12 {
		return 0, 0, protoErrorf("manifest end of %d bytes", len(p))
	}
	return binary.BigEndian.Uint32(p), int64(binary.BigEndian.Uint64(p[4:])), nil
}

func parseReply(p []byte) (reply, error) {
	var r reply
	const fixed = 4 + 1 + 8 + hashLen
	if len(p) < fixed || len(p) > fixed+maxReason {
		return r, protoErrorf("reply of %d bytes", len(p))
	}
	r.Index = binary.BigEndian.Uint32(p)
	r.Action = p[4]
	off := binary.BigEndian.Uint64(p[5:])
	if off > 1<<62 {
		return r, protoErrorf("reply with offset %d", off)
	}
	r.Offset = int64(off)
	copy(r.Root[:], p[13:fixed])
	r.Reason = string(p[fixed:])
	if r.Action > actCheck {
		return r, protoErrorf("reply with unknown action %d", r.Action)
	}
	return r, nil
}

func parseFile(p []byte) (index uint32, offset int64, err error) {
	if len(p) != 12 {
		return 0, 0, protoErrorf("file start of %d bytes", len(p))
	}
	off := binary.BigEndian.Uint64(p[4:])
	if off > 1<<62 {
		return 0, 0, protoErrorf("file start at offset %d", off)
	}
	return binary.BigEndian.Uint32(p), int64(off), nil
}

// parseData splits a data message; the returned slice aliases p.
func parseData(p []byte) (flags byte, data []byte, err error) {
	if len(p) < 1 {
		return 0, nil, protoErrorf("empty data message")
	}
	flags = p[0]
	if flags&^flagZstd != 0 {
		return 0, nil, protoErrorf("data message with flags %#x", flags)
	}
	return flags, p[1:], nil
}

func parseIndexReason(p []byte) (index uint32, status byte, reason string, err error) {
	if len(p) < 5 || len(p) > 5+maxReason {
		return 0, 0, "", protoErrorf("message of %d bytes", len(p))
	}
	return binary.BigEndian.Uint32(p), p[4], string(p[5:]), nil
}
