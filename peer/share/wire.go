package share

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Version is the share protocol version.
const Version = 1

// Service is the name of the peer-protocol service that carries the share
// protocol: one stream per request.
const Service = "share"

// Operations.
const (
	OpList = "list"
	OpLs   = "ls"
	OpGet  = "get"
	OpPut  = "put"
)

// Size limits of a message body.
const (
	maxRequest  = 64 << 10
	maxResponse = 16 << 20
	maxEntries  = 50000
)

// Status is the outcome of a request, as carried on the wire.
type Status int

// Statuses. Their numbers are part of the wire format (SPEC.md).
const (
	StatusOK         Status = 0 // done; for get and put, xfer data follows
	StatusBadRequest Status = 1 // malformed request, unknown operation or version
	StatusDenied     Status = 2 // no such share or access denied (also: wrong password)
	StatusNotFound   Status = 3 // no such file or folder in a share the peer may see
	StatusBadPath    Status = 4 // not a clean relative path inside the share
	StatusForbidden  Status = 5 // a link leading outside the share, or a special file
	StatusReadOnly   Status = 6 // put to a read-only share
	StatusLocked     Status = 7 // too many failed attempts; wait
	StatusInternal   Status = 8 // the server failed (its log says why)
)

// The one answer for a share that does not exist, that the peer may not see,
// or whose password was wrong or missing: identical in every case.
const deniedMsg = "no such share or access denied"

// request is what a client sends first on a share stream.
type request struct {
	V         int      `json:"v"`
	Op        string   `json:"op"`
	Share     string   `json:"share,omitempty"`
	Path      string   `json:"path,omitempty"`
	Paths     []string `json:"paths,omitempty"`
	Password  string   `json:"password,omitempty"`
	Overwrite bool     `json:"overwrite,omitempty"`
	Compress  bool     `json:"compress,omitempty"`
}

// response is the server's one answer.
type response struct {
	V         int         `json:"v"`
	Status    Status      `json:"status"`
	Msg       string      `json:"msg,omitempty"`
	Shares    []ShareInfo `json:"shares,omitempty"`
	Entries   []Entry     `json:"entries,omitempty"`
	Truncated bool        `json:"truncated,omitempty"`
}

// ShareInfo describes a share to a peer that may see it.
type ShareInfo struct {
	Name      string `json:"name"`
	ReadWrite bool   `json:"rw,omitempty"`
	Password  bool   `json:"password,omitempty"` // a password is needed
}

// Entry is one item of a folder listing.
type Entry struct {
	Name  string `json:"name"`
	Type  string `json:"type"` // "file", "dir", "link" or "other"
	Size  int64  `json:"size,omitempty"`
	Mtime int64  `json:"mtime,omitempty"` // Unix nanoseconds
	Mode  uint32 `json:"mode,omitempty"`  // permission bits
}

// writeMsg writes v as one message: a 4-byte big-endian length and JSON.
func writeMsg(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf := make([]byte, 4, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	_, err = w.Write(append(buf, b...))
	return err
}

// errTooLarge reports a message over the limit.
var errTooLarge = errors.New("share: message too large")

// readMsg reads one message into v, reading exactly its bytes and no more,
// so that the stream can be handed to xfer afterwards.
func readMsg(r io.Reader, limit int, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > uint32(limit) {
		return fmt.Errorf("%w (%d bytes, limit %d)", errTooLarge, n, limit)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return json.Unmarshal(b, v)
}
