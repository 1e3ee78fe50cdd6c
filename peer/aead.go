package peer

import (
	"crypto/cipher"
	"encoding/binary"

	"github.com/flynn/noise"
	"golang.org/x/crypto/chacha20poly1305"
)

// transportCipher seals packets with a Noise transport key and an explicit
// nonce, as Noise's ChaChaPoly does (4 zero bytes, then the nonce
// little-endian), without allocating per packet.
type transportCipher struct {
	aead  cipher.AEAD
	nonce [chacha20poly1305.NonceSize]byte
}

func newTransportCipher(cs *noise.CipherState) transportCipher {
	k := cs.UnsafeKey()
	a, err := chacha20poly1305.New(k[:])
	if err != nil {
		panic(err) // the key is always 32 bytes
	}
	return transportCipher{aead: a}
}

// seal encrypts plaintext (which may alias out[len(out):]) and appends it.
// Only the session's sender calls it.
func (c *transportCipher) seal(out []byte, n uint64, ad, plaintext []byte) []byte {
	binary.LittleEndian.PutUint64(c.nonce[4:], n)
	return c.aead.Seal(out, c.nonce[:], plaintext, ad)
}

// open decrypts and authenticates. Only the session's reader calls it.
func (c *transportCipher) open(out []byte, n uint64, ad, ciphertext []byte) ([]byte, error) {
	binary.LittleEndian.PutUint64(c.nonce[4:], n)
	return c.aead.Open(out, c.nonce[:], ciphertext, ad)
}
