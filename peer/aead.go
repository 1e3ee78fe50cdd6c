package peer

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"runtime"
	"slices"

	"github.com/flynn/noise"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sys/cpu"
)

// Transport ciphers. The handshake is always Noise_XX_25519_ChaChaPoly_BLAKE2s;
// the transport keys it splits drive one of these, chosen from the lists the
// two ends exchange inside the handshake (so the choice is authenticated).
const (
	cipherChaCha = "chacha20poly1305"
	cipherAESGCM = "aes256gcm"
)

// hasAESHardware reports whether this CPU runs AES-GCM in hardware (AES and
// carry-less multiply). Without it, ChaCha20-Poly1305 is faster and has no
// timing side channels, so AES-GCM is offered only with it.
var hasAESHardware = (runtime.GOARCH == "amd64" && cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ) ||
	(runtime.GOARCH == "arm64" && cpu.ARM64.HasAES && cpu.ARM64.HasPMULL) ||
	(runtime.GOARCH == "s390x" && cpu.S390X.HasAES && cpu.S390X.HasAESGCM)

// localCiphers is what this end offers, best first.
func localCiphers() []string {
	if hasAESHardware {
		return []string{cipherAESGCM, cipherChaCha}
	}
	return []string{cipherChaCha}
}

// chooseCipher picks the transport cipher from both ends' offers. Both ends
// compute the same answer: AES-256-GCM when both offer it (both have AES
// hardware), otherwise ChaCha20-Poly1305, which every end supports (an end
// that offers nothing is an older build and speaks only ChaCha20-Poly1305).
func chooseCipher(mine, theirs []string) string {
	if slices.Contains(mine, cipherAESGCM) && slices.Contains(theirs, cipherAESGCM) {
		return cipherAESGCM
	}
	return cipherChaCha
}

// transportCipher seals packets with a Noise transport key and an explicit
// nonce, as Noise's ciphers do (4 zero bytes, then the nonce little-endian
// for ChaCha20-Poly1305, big-endian for AES-GCM), without allocating per
// packet.
type transportCipher struct {
	aead      cipher.AEAD
	bigEndian bool
	nonce     [chacha20poly1305.NonceSize]byte
}

func newTransportCipher(cs *noise.CipherState, name string) transportCipher {
	k := cs.UnsafeKey()
	if name == cipherAESGCM {
		b, err := aes.NewCipher(k[:])
		if err != nil {
			panic(err) // the key is always 32 bytes
		}
		a, err := cipher.NewGCM(b)
		if err != nil {
			panic(err)
		}
		return transportCipher{aead: a, bigEndian: true}
	}
	a, err := chacha20poly1305.New(k[:])
	if err != nil {
		panic(err) // the key is always 32 bytes
	}
	return transportCipher{aead: a}
}

func (c *transportCipher) setNonce(n uint64) {
	if c.bigEndian {
		binary.BigEndian.PutUint64(c.nonce[4:], n)
	} else {
		binary.LittleEndian.PutUint64(c.nonce[4:], n)
	}
}

// seal encrypts plaintext (which may alias out[len(out):]) and appends it.
// Only the session's sender calls it.
func (c *transportCipher) seal(out []byte, n uint64, ad, plaintext []byte) []byte {
	c.setNonce(n)
	return c.aead.Seal(out, c.nonce[:], plaintext, ad)
}

// open decrypts and authenticates. Only the session's reader calls it.
func (c *transportCipher) open(out []byte, n uint64, ad, ciphertext []byte) ([]byte, error) {
	c.setNonce(n)
	return c.aead.Open(out, c.nonce[:], ciphertext, ad)
}
