package xfer

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"runtime"
	"strings"

	"github.com/klauspost/cpuid/v2"
	"github.com/zeebo/blake3"
	"golang.org/x/sys/cpu"
)

// hashAlg names the hash a transfer's chunk hashes and roots are made with.
// Both sides list the ones they accept in their hello, and use the first of
// the sender's that the receiver lists too (pickHash). The values are on the
// wire.
type hashAlg byte

const (
	hashSHA256 hashAlg = 1 // SHA-256, FIPS 180-4; every peer accepts it
	hashBLAKE3 hashAlg = 2 // BLAKE3 with its default 32-byte output
)

// String names the hash as SPEC.md and the partial state file do.
func (a hashAlg) String() string {
	switch a {
	case hashSHA256:
		return "sha256"
	case hashBLAKE3:
		return "blake3"
	}
	return "unknown"
}

// known reports whether this side can compute a.
func (a hashAlg) known() bool { return a == hashSHA256 || a == hashBLAKE3 }

// sum returns the hash of p; it allocates nothing.
func (a hashAlg) sum(p []byte) [hashLen]byte {
	if a == hashBLAKE3 {
		return blake3.Sum256(p)
	}
	return sha256.Sum256(p)
}

// new returns a streaming hash of a.
func (a hashAlg) new() hash.Hash {
	if a == hashBLAKE3 {
		return blake3.New()
	}
	return sha256.New()
}

// localHashes lists the hashes this side accepts, the fastest here first.
// Each side hashes every byte of a transfer once, and on two cores that
// share a veth pair SHA-256 was 0.3 of the 1.6 CPU-seconds a 256 MiB
// transfer took. On this project's test machine (AMD EPYC, SHA-NI and AVX2;
// BenchmarkChunkHash):
//
//	BLAKE3 with AVX2 (zeebo/blake3)        3.6–3.9 GB/s
//	SHA-256 with SHA-NI                    1.8 GB/s
//	BLAKE3, portable Go (-tags purego)     0.47–0.57 GB/s
//	SHA-256, portable Go                   0.16–0.23 GB/s
//
// So BLAKE3 comes first unless the CPU has SHA-256 instructions and
// BLAKE3 has no vector code for it (x86-64 without AVX2, ARMv8 with SHA2).
func localHashes() []hashAlg {
	if preferBLAKE3(runtime.GOARCH, cpu.X86.HasAVX2, cpuid.CPU.Has(cpuid.SHA), cpu.ARM64.HasSHA2) {
		return []hashAlg{hashBLAKE3, hashSHA256}
	}
	return []hashAlg{hashSHA256, hashBLAKE3}
}

// preferBLAKE3 is localHashes' rule, for the CPU features given.
func preferBLAKE3(arch string, avx2, shaX86, sha2ARM64 bool) bool {
	switch arch {
	case "amd64":
		return avx2 || !shaX86
	case "arm64":
		return !sha2ARM64
	}
	return true
}

// pickHash returns the first of the sender's hashes that the receiver lists
// too; both sides compute it from the two hellos, so it needs no message of
// its own.
func pickHash(sender, receiver []hashAlg) (hashAlg, bool) {
	for _, s := range sender {
		for _, r := range receiver {
			if s == r && s.known() {
				return s, true
			}
		}
	}
	return 0, false
}

// noCommonHash is the error of two sides that accept no hash in common.
func noCommonHash(ours, theirs []hashAlg) error {
	return fmt.Errorf("%w: the two sides accept no hash in common (this side: %s; the peer: %s); use the same p2plink release on both sides",
		ErrVersion, hashNames(ours), hashNames(theirs))
}

func hashNames(hs []hashAlg) string {
	var b strings.Builder
	for i, h := range hs {
		if i > 0 {
			b.WriteString(", ")
		}
		if h.known() {
			b.WriteString(h.String())
		} else {
			fmt.Fprintf(&b, "unknown %d", byte(h))
		}
	}
	return b.String()
}

// agree checks the peer's hello h, which must come from peerRole, against
// this side's hashes and returns the hash the two sides use: the first of
// the sender's list that the receiver lists too.
func agree(h hello, peerRole byte, ours []hashAlg) (hashAlg, error) {
	peer, other := "sender", "send"
	if peerRole == roleReceiver {
		peer, other = "receiver", "receive"
	}
	if h.version != Version {
		return 0, fmt.Errorf("%w: the %s speaks version %d, this is version %d; use the same p2plink release on both sides", ErrVersion, peer, h.version, Version)
	}
	if h.role != peerRole {
		doing := map[byte]string{roleSender: "sending", roleReceiver: "receiving"}[h.role]
		return 0, fmt.Errorf("%w: both sides are %s; run %s on one of them", ErrProtocol, doing, other)
	}
	if h.chunk != ChunkSize {
		return 0, protoErrorf("chunk size %d, expected %d", h.chunk, ChunkSize)
	}
	sender, receiver := h.hashes, ours
	if peerRole == roleReceiver {
		sender, receiver = ours, h.hashes
	}
	alg, ok := pickHash(sender, receiver)
	if !ok {
		return 0, noCommonHash(ours, h.hashes)
	}
	return alg, nil
}
