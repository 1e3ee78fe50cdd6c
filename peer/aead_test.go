package peer

import (
	"bytes"
	"testing"

	"github.com/flynn/noise"

	"github.com/p2plink/p2plink/link/linktest"
)

// TestCipherNegotiation runs a session for each pair of offers and checks
// that both ends chose the same transport cipher, the expected one, and that
// data flows both ways with it.
func TestCipherNegotiation(t *testing.T) {
	both := []string{cipherAESGCM, cipherChaCha}
	chachaOnly := []string{cipherChaCha}
	older := []string{} // an older build: offers nothing, speaks ChaCha20-Poly1305
	for _, tc := range []struct {
		name   string
		a, b   []string
		expect string
	}{
		{"both have AES", both, both, cipherAESGCM},
		{"one without AES", both, chachaOnly, cipherChaCha},
		{"other without AES", chachaOnly, both, cipherChaCha},
		{"older peer", older, both, cipherChaCha},
		{"neither", chachaOnly, chachaOnly, cipherChaCha},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, cb := testConfig(t, "a"), testConfig(t, "b")
			ca.ciphers, cb.ciphers = tc.a, tc.b
			p := connect(t, linktest.PipeConfig{}, ca, cb)
			defer p.close()
			data := randBytes(7, 100<<10)
			transfer(t, p.sa, p.sb, data)
			transfer(t, p.sb, p.sa, data[:5000])
			if a, b := p.sa.Stats().Cipher, p.sb.Stats().Cipher; a != tc.expect || b != tc.expect {
				t.Fatalf("ciphers %q and %q, want %q on both ends", a, b, tc.expect)
			}
		})
	}
}

// TestTransportCiphersDiffer checks that the two ciphers really differ on
// the wire, so a negotiation that went one way on each end could not pass
// unnoticed.
func TestTransportCiphersDiffer(t *testing.T) {
	cs := testCipherState(t)
	for _, name := range []string{cipherAESGCM, cipherChaCha} {
		c := newTransportCipher(cs, name)
		ct := c.seal(nil, 42, []byte("ad"), []byte("plaintext"))
		pt, err := c.open(nil, 42, []byte("ad"), ct)
		if err != nil || !bytes.Equal(pt, []byte("plaintext")) {
			t.Fatalf("%s: round trip: %q, %v", name, pt, err)
		}
		other := cipherChaCha
		if name == cipherChaCha {
			other = cipherAESGCM
		}
		o := newTransportCipher(cs, other)
		if _, err := o.open(nil, 42, []byte("ad"), ct); err == nil {
			t.Fatalf("%s sealed a packet that %s opened", name, other)
		}
		if _, err := c.open(nil, 43, []byte("ad"), ct); err == nil {
			t.Fatalf("%s opened a packet under another nonce", name)
		}
	}
}

func testCipherState(t *testing.T) *noise.CipherState {
	t.Helper()
	var k [32]byte
	copy(k[:], "a transport key of thirty-two b.")
	return noise.UnsafeNewCipherState(cipherSuite, k, 0)
}
