// Package share serves named folders to peers and fetches from them: a peer
// lists another's shares, browses their folders, gets files and folders from
// them and puts files and folders into them.
//
// A share is a folder, read-only or read-write, open to everyone on the link,
// to listed peers (by fingerprint) and/or behind a password. Passwords are
// kept only as Argon2id hashes (HashPassword), checked inside the encrypted,
// authenticated peer session, and a peer that fails too often is locked out
// for a while. A share a peer may not see, a share that does not exist and a
// wrong password all get the same answer, "no such share or access denied",
// so that nobody learns what exists behind a door they may not open.
//
// Every path a peer names is resolved inside the share's folder: "..",
// absolute paths, drive letters and symbolic links that lead outside are
// refused, and so are special files (devices, fifos, sockets).
//
// Each request travels on its own stream of the peer protocol, opened for
// the "share" service: one request, one answer, then for get and put the
// data, moved by package xfer (chunked, hashed, resumable, atomic). SPEC.md
// beside this file is the wire format and the shares file format. Serve
// requests with a Server; make them with List, Ls, Get and Put.
package share
