package peer

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/flynn/noise"
)

// Identity is a peer's long-term key pair: an X25519 key used as the Noise
// static key. Its fingerprint names the peer to people.
type Identity struct {
	key noise.DHKey
}

// NewIdentity makes a fresh identity from crypto/rand.
func NewIdentity() (*Identity, error) {
	k, err := noise.DH25519.GenerateKeypair(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Identity{key: k}, nil
}

// PublicKey returns the identity's 32-byte public key.
func (id *Identity) PublicKey() []byte { return append([]byte(nil), id.key.Public...) }

// Fingerprint returns the identity's fingerprint.
func (id *Identity) Fingerprint() string { return Fingerprint(id.key.Public) }

// Fingerprint returns the short, readable fingerprint of a public key: the
// first 80 bits of its SHA-256 in base32, in four groups of four, e.g.
// "KXQ4-7MZA-PL2D-T9EW" (letters A–Z and digits 2–7; no 0/1/8/9 to confuse).
func Fingerprint(pub []byte) string {
	sum := sha256.Sum256(pub)
	s := base32.StdEncoding.EncodeToString(sum[:10])
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}

// NormalizeFingerprint upper-cases a fingerprint typed by a person and
// removes separators, so "kxq4 7mza-pl2d t9ew" matches.
func NormalizeFingerprint(s string) string {
	s = strings.ToUpper(s)
	return strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' || r == ':' {
			return -1
		}
		return r
	}, s)
}

const identityHeader = "p2plink-identity-v1"

// LoadOrCreateIdentity reads the identity stored in dir/identity, or makes
// one and stores it there with mode 0600 (dir is created with mode 0700).
// It refuses a key file that others may read.
func LoadOrCreateIdentity(dir string) (*Identity, bool, error) {
	path := filepath.Join(dir, "identity")
	b, err := os.ReadFile(path)
	if err == nil {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, false, err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, false, fmt.Errorf("identity %s is readable by others (mode %v): run chmod 600 %s", path, fi.Mode().Perm(), path)
		}
		id, err := parseIdentity(b)
		if err != nil {
			return nil, false, fmt.Errorf("identity %s: %w (move it away to make a new identity)", path, err)
		}
		return id, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	id, err := NewIdentity()
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("cannot create config directory: %w", err)
	}
	text := identityHeader + "\n" + hex.EncodeToString(id.key.Private) + "\n"
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("cannot store identity: %w", err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return nil, false, err
	}
	if err := f.Close(); err != nil {
		return nil, false, err
	}
	return id, true, nil
}

func parseIdentity(b []byte) (*Identity, error) {
	lines := strings.Fields(string(b))
	if len(lines) != 2 || lines[0] != identityHeader {
		return nil, errors.New("not a p2plink identity file")
	}
	priv, err := hex.DecodeString(lines[1])
	if err != nil || len(priv) != 32 {
		return nil, errors.New("damaged private key")
	}
	k, err := noise.DH25519.GenerateKeypair(fixedReader(priv))
	if err != nil {
		return nil, err
	}
	return &Identity{key: k}, nil
}

type fixedReader []byte

func (r fixedReader) Read(p []byte) (int, error) { return copy(p, r), nil }

// ErrKeyChanged reports a peer whose key differs from the one pinned for its
// name. It may be an impostor.
var ErrKeyChanged = errors.New("peer key changed")

// ErrFingerprintMismatch reports a peer whose fingerprint is not the one the
// user required.
var ErrFingerprintMismatch = errors.New("peer fingerprint is not the one required")

// KnownPeers pins peers' keys by name on first contact, like SSH's
// known_hosts. It is safe for concurrent use.
type KnownPeers struct {
	path string
	mu   sync.Mutex
}

// OpenKnownPeers uses the file at path (created on first pin). An empty path
// keeps nothing and pins nothing.
func OpenKnownPeers(path string) *KnownPeers { return &KnownPeers{path: path} }

// Check verifies pub against the key pinned for name. An unknown name is
// pinned (pinned reports true). A different key is refused with an error
// wrapping ErrKeyChanged that says whose pin it is and what to do.
func (k *KnownPeers) Check(name string, pub []byte) (pinned bool, err error) {
	pinned, _, err = k.check(name, pub, false)
	return pinned, err
}

// check is Check. byKey says that the user chose the peer by its key (a
// fingerprint): a key pinned under another name is then that peer,
// renamed, and is accepted, with knownAs the name it is pinned under; it
// is not pinned under its new name. A peer not chosen by its key that uses
// the name another key is pinned under is refused, whether or not its own
// key is pinned under another name.
func (k *KnownPeers) check(name string, pub []byte, byKey bool) (pinned bool, knownAs string, err error) {
	if k == nil || k.path == "" {
		return false, "", nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	named, keyed, err := k.lookupLocked(name, pub)
	if err != nil {
		return false, "", err
	}
	switch {
	case named.line > 0 && bytes.Equal(named.pub, pub):
		return false, "", nil
	case byKey && keyed.line > 0:
		return false, keyed.name, nil
	case named.line > 0:
		return false, "", k.nameTaken(name, named, pub, keyed)
	}
	if err := os.MkdirAll(filepath.Dir(k.path), 0o700); err != nil {
		return false, "", err
	}
	w, err := os.OpenFile(k.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return false, "", err
	}
	_, err = fmt.Fprintf(w, "%s %s %s\n", name, Fingerprint(pub), hex.EncodeToString(pub))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err == nil, "", err
}

// pin is one line of known_peers: a name, the key pinned for it, and the
// line's number (from 1; 0: no such pin).
type pin struct {
	name string
	pub  []byte
	line int
}

// lookup returns the pin of name and the pin of pub (the first line of
// each).
func (k *KnownPeers) lookup(name string, pub []byte) (named, keyed pin, err error) {
	if k == nil || k.path == "" {
		return pin{}, pin{}, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lookupLocked(name, pub)
}

func (k *KnownPeers) lookupLocked(name string, pub []byte) (named, keyed pin, err error) {
	f, err := os.Open(k.path)
	if errors.Is(err, os.ErrNotExist) {
		return pin{}, pin{}, nil
	}
	if err != nil {
		return pin{}, pin{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() && (named.line == 0 || (pub != nil && keyed.line == 0)) {
		line++
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 || strings.HasPrefix(fs[0], "#") {
			continue
		}
		key, err := hex.DecodeString(fs[2])
		if err != nil || len(key) != 32 {
			key = nil // a damaged pin still holds its name: it matches no key
		}
		if named.line == 0 && fs[0] == name {
			named = pin{fs[0], key, line}
		}
		if keyed.line == 0 && key != nil && bytes.Equal(key, pub) {
			keyed = pin{fs[0], key, line}
		}
	}
	return named, keyed, sc.Err()
}

// nameTaken is the refusal of a peer that uses name, pinned (named) to
// another key than its own, pub. It advises deleting the name's pin only
// when pub is pinned under no other name: a known peer that took another's
// name is that peer, not the named one with a new identity.
func (k *KnownPeers) nameTaken(name string, named pin, pub []byte, keyed pin) error {
	if keyed.line > 0 {
		return fmt.Errorf("%w: %q is pinned to key %s (%s line %d), but the peer now using that name has key %s, "+
			"which line %d pins as %q: %q is using another peer's name. Refused; to talk to %q, connect to it by its fingerprint, %s",
			ErrKeyChanged, name, Fingerprint(named.pub), k.path, named.line, Fingerprint(pub),
			keyed.line, keyed.name, keyed.name, keyed.name, Fingerprint(pub))
	}
	return fmt.Errorf("%w: %q is pinned to key %s (%s line %d); the peer now using that name has key %s: "+
		"an impostor, or %q got a new identity. If you trust it (check the new fingerprint with its owner), delete line %d of %s",
		ErrKeyChanged, name, Fingerprint(named.pub), k.path, named.line, Fingerprint(pub), name, named.line, k.path)
}
