// Package xfer sends files and folders over one reliable byte stream and
// receives them into a directory, verified and resumable.
//
// The sender announces a manifest (relative names, sizes, permission bits,
// modification times and a root hash of each file: a hash over the hashes of
// each ChunkSize chunk, BLAKE3 or SHA-256 as the two sides agree in their
// hellos); the receiver answers, per file, how much it already holds intact
// from an earlier, interrupted run; the sender then sends
// only the rest, in chunks of ChunkSize bytes, optionally compressed with zstd
// where that pays. Each side hashes every byte once: the sender as it
// reads each file to send it, giving the root with the file's end (a late
// root, when the receiver takes those: the first byte goes at once, and a
// file larger than the page cache is read once, not twice), or while it
// builds the manifest (for a receiver without late roots; or ahead of
// time, with Prepare; Hashes keeps the roots for a rerun, and with
// NewHashesIn or PrepareIn on disk for later runs of the program), the
// receiver as each chunk arrives, recording the
// chunk's hash for a later resume and checking the root over them all when the
// file ends. The receiver keeps data in <dir>/.p2plink-partial/ until the
// whole file is verified, then fsyncs it and moves it into place atomically,
// with its modification time and permission bits restored (less the
// receiver's umask). Folders the transfer makes get theirs once their
// content is in place; a folder that was already there keeps its own. SPEC.md beside this
// file is the wire format.
//
// The receiver trusts nothing it is told: names are checked (no "..", no
// absolute paths, no drive letters, no control characters, nothing outside
// the receive directory even through symbolic links), sizes and hashes are
// enforced, an existing file is never overwritten unless asked (the new one is
// stored as "name (1).ext"), and a full disk keeps what arrived so that a rerun
// resumes.
//
// Send and Receive work on any Stream: in p2plink that is a stream of the peer
// protocol opened for the "xfer" service, in tests an in-memory pipe. Pipe
// joins a stream to a reader and a writer, like netcat.
package xfer

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// Stream is a reliable, ordered, full-duplex byte stream, as the peer protocol
// provides for each service. CloseWrite half-closes it: the peer's Read returns
// io.EOF after all data written before. Close releases it and unblocks pending
// Read and Write calls; it may be called more than once, and concurrently with
// Read and Write.
type Stream interface {
	io.Reader
	io.Writer
	io.Closer
	CloseWrite() error
}

// Sentinel errors; the errors returned wrap them where they apply.
var (
	// ErrProtocol means the peer broke the protocol (a malformed or
	// unexpected message, a size or hash that does not add up).
	ErrProtocol = errors.New("xfer: protocol violation by peer")
	// ErrVersion means the peer speaks another protocol version.
	ErrVersion = errors.New("xfer: peer speaks another protocol version")
	// ErrChanged means a file changed on the sender's side while it was
	// being sent; it was not stored. Send it again once it is stable.
	ErrChanged = errors.New("xfer: file changed during transfer")
	// ErrVerify means a file's data did not match the hash the sender
	// announced, most likely because the file changed on the sender while
	// it was sent; nothing was stored and the partial data was discarded.
	// Send it again.
	ErrVerify = errors.New("xfer: data does not match the announced hash")
	// ErrUnsafeName means a received name would leave the receive directory
	// or is otherwise unusable; the file was refused.
	ErrUnsafeName = errors.New("xfer: unsafe file name")
	// ErrRefused means the receiver would not take a file (the reason is in
	// the error text).
	ErrRefused = errors.New("xfer: refused by receiver")
	// ErrPeer means the peer stopped the transfer with an error of its own
	// (the reason is in the error text).
	ErrPeer = errors.New("xfer: peer reported an error")
)

// errPartialBusy means another transfer is receiving the same file into
// the same folder right now.
var errPartialBusy = errors.New("another transfer is receiving this file into this folder right now")

// DiskFullError reports that the receiver ran out of space. The data that
// arrived intact is kept in PartialPath; free space and rerun to resume.
type DiskFullError struct {
	Name        string // the file's relative name
	Kept, Size  int64  // bytes kept, bytes in the file
	Needed      int64  // when the room was found short before the data came: the bytes asked for; 0 when the disk filled up midway
	Free        int64  // when the file was refused before the transfer began: the room there was for it
	PartialPath string // where the kept data is; "" when the file was refused before the transfer began
	Err         error  // the underlying error (wraps syscall.ENOSPC or syscall.EDQUOT)
}

func (e *DiskFullError) Error() string {
	if e.PartialPath == "" {
		return fmt.Sprintf("disk full: no room for %q: it needs %s more, and the disk of the receive folder has %s left for it; free space or receive it elsewhere, then send it again",
			e.Name, sizeText(e.Needed), sizeText(e.Free))
	}
	if e.Needed > 0 {
		return fmt.Sprintf("disk full: no room for the %d bytes %q still needs (%d of %d bytes kept in %s); free space and rerun to resume",
			e.Needed, e.Name, e.Kept, e.Size, e.PartialPath)
	}
	return fmt.Sprintf("disk full: %d bytes of %d of %q kept in %s; free space and rerun to resume",
		e.Kept, e.Size, e.Name, e.PartialPath)
}

// Unwrap returns the underlying error.
func (e *DiskFullError) Unwrap() error { return e.Err }

// Status is what became of one file.
type Status int

// Statuses of a FileResult.
const (
	StatusPending Status = iota // not reached (the transfer stopped before)
	StatusDone                  // sent and stored, verified
	StatusPresent               // the receiver already had an identical file; nothing sent
	StatusSkipped               // not sent: a symbolic link, a special file, a name the receiver would refuse (Err says which)
	StatusFailed                // failed or refused (Err says why)
)

func (s Status) String() string {
	switch s {
	case StatusPending:
		return "pending"
	case StatusDone:
		return "done"
	case StatusPresent:
		return "already present"
	case StatusSkipped:
		return "skipped"
	case StatusFailed:
		return "failed"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// FileResult describes one file or directory of a transfer.
type FileResult struct {
	Name    string // relative, slash-separated name as on the wire
	Dir     bool   // a directory entry
	Path    string // sender: local path; receiver: where it was stored, relative to the receive directory
	Stored  string // where the receiver stored it, relative to its directory (both sides; "" if not stored)
	Size    int64  // bytes in the file
	Resumed int64  // bytes the receiver already held and that were not sent again
	Sent    int64  // bytes of file data moved in this run (before compression)
	Status  Status
	Err     error // why it failed or was skipped; nil otherwise
}

// Result sums up a transfer.
type Result struct {
	Files     []FileResult
	Bytes     int64  // file data moved in this run, before compression
	WireBytes int64  // bytes of file data on the wire, after compression
	Resumed   int64  // bytes not sent because the receiver held them intact
	Hash      string // the hash the two sides agreed on: "blake3" or "sha256" ("" if they did not get so far)
}

// Progress is passed to a progress callback after each chunk.
type Progress struct {
	Name     string // relative name of the current file
	FileDone int64  // bytes of the current file held by the receiver
	FileSize int64
	Done     int64 // bytes of all files held by the receiver, including resumed and present ones
	Total    int64 // bytes of all files in the manifest
	// Kept is how much of Done this transfer did not move: resumed
	// prefixes, files already present, files given up. A rate is
	// (Done-Kept) over the time taken.
	Kept int64
}

// SendOptions configure Send. The zero value is valid.
type SendOptions struct {
	// Compress compresses each chunk with zstd when that makes it more
	// than 5 % smaller; incompressible data is sent as it is.
	Compress bool
	// Progress, if set, is called when a file's data starts and after
	// each chunk. It must not block for long.
	Progress func(Progress)
	// Logger receives warnings (skipped files). Nil means no logging.
	Logger *slog.Logger
	// Hashes, if set, holds roots of files hashed before (by Prepare, or
	// by an earlier Send given the same Hashes) and keeps those Send
	// computes.
	Hashes *Hashes

	// hashes, set by tests, replaces localHashes().
	hashes []hashAlg
	// noNotSent, set by tests, leaves featNotSent out of the hello, as
	// a sender without it does.
	noNotSent bool
	// HashFirst hashes every file (whose root Hashes does not hold)
	// before the manifest, which then holds every root, instead of as
	// the file is sent (a late root, when the receiver takes those). A
	// file whose content changes while it is sent, with its size and
	// modification time put back, then fails with ErrVerify rather than
	// being stored as it was read; it costs a read of every file before
	// the first byte goes.
	HashFirst bool
}

// ReceiveOptions configure Receive. The zero value is valid.
type ReceiveOptions struct {
	// Overwrite replaces an existing file of the same name. By default an
	// existing file is never replaced: a different file is stored beside it
	// as "name (1).ext" (or (2), …), and an identical one is not sent again.
	Overwrite bool
	// MaxEntries limits the number of manifest entries accepted, with
	// the entries the sender says it left out; 0 means 1,000,000. Their
	// names (and the reasons of those left out) may take 64 MiB in all.
	MaxEntries int
	// Progress, if set, is called when a file's data starts and after
	// each chunk written. It must not block for long.
	Progress func(Progress)
	// Logger receives notes on refused names and renamed files. Nil means
	// no logging.
	Logger *slog.Logger

	// hookFile, set by tests, wraps the file partial data is written to.
	hookFile func(partFile) partFile
	// hookName, set by tests, stands for the file system's answer to a
	// name element probeName tries (nil: it takes it).
	hookName func(elem string) error
	// hashes, set by tests, replaces localHashes().
	hashes []hashAlg
	// noLateRoots, set by tests, leaves featLateRoots out of the hello,
	// as a receiver without it does.
	noLateRoots bool
	// noNotSent, set by tests, leaves featNotSent out of the hello, as
	// a receiver without it does.
	noNotSent bool
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// failures turns the failed files of a result into one error, nil if none.
func failures(files []FileResult) error {
	var first error
	nf, nd := 0, 0
	for _, f := range files {
		if f.Status == StatusFailed {
			if first == nil {
				first = f.Err
			}
			if f.Dir {
				nd++
			} else {
				nf++
			}
		}
	}
	if nf+nd <= 1 {
		return first
	}
	return fmt.Errorf("%s failed, the first: %w", countOf(nf, "file", "files", nd, "folder", "folders"), first)
}

// countOf says "3 files and 1 folder", leaving out a count of 0.
func countOf(a int, one, many string, b int, oneB, manyB string) string {
	word := func(n int, one, many string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %s", n, many)
	}
	switch {
	case a == 0:
		return word(b, oneB, manyB)
	case b == 0:
		return word(a, one, many)
	}
	return word(a, one, many) + " and " + word(b, oneB, manyB)
}
