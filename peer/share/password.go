package share

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters of HashPassword: 64 MiB, 3 passes, 2 lanes, a 16-byte
// salt and a 32-byte key, as RFC 9106 suggests for memory-constrained use.
const (
	argonMemory  = 64 << 10 // KiB
	argonTime    = 3
	argonThreads = 2
	argonSaltLen = 16
	argonKeyLen  = 32
)

// ErrBadHash reports a stored password hash that is not in the format
// HashPassword writes.
var ErrBadHash = errors.New("share: malformed password hash (want $argon2id$v=19$m=…,t=…,p=…$salt$key)")

type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
}

var defaultParams = argonParams{memory: argonMemory, time: argonTime, threads: argonThreads}

// HashPassword returns a slow, salted Argon2id hash of pw in the PHC string
// format, e.g. "$argon2id$v=19$m=65536,t=3,p=2$<salt>$<key>" with salt and key
// in unpadded standard base64. Only this string is ever stored.
func HashPassword(pw string) (string, error) {
	return hashPassword(pw, defaultParams)
}

func hashPassword(pw string, p argonParams) (string, error) {
	if pw == "" {
		return "", errors.New("share: empty password; give one or leave the share without a password")
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("share: salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.time, p.memory, p.threads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// passwordHash is a parsed PHC string.
type passwordHash struct {
	p         argonParams
	salt, key []byte
}

// IsPasswordHash reports whether s looks like a hash written by HashPassword
// (and so must not be hashed again).
func IsPasswordHash(s string) bool {
	_, err := parseHash(s)
	return err == nil
}

func parseHash(s string) (passwordHash, error) {
	var h passwordHash
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return h, ErrBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return h, ErrBadHash
	}
	var m, t uint32
	var p uint8
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || n != 3 {
		return h, ErrBadHash
	}
	// Refuse parameters that are too weak to be ours or big enough to be a
	// denial of service (a hash file is trusted, but typos happen).
	if m < 8*uint32(p) || m > 4<<20 || t < 1 || t > 100 || p < 1 {
		return h, ErrBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
		return h, ErrBadHash
	}
	h.p = argonParams{memory: m, time: t, threads: p}
	h.salt, h.key = salt, key
	return h, nil
}

// verify reports whether pw matches h, comparing in constant time.
func (h passwordHash) verify(pw string) bool {
	got := argon2.IDKey([]byte(pw), h.salt, h.p.time, h.p.memory, h.p.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

// VerifyPassword reports whether pw matches a hash written by HashPassword.
// The comparison is constant-time.
func VerifyPassword(hash, pw string) (bool, error) {
	h, err := parseHash(hash)
	if err != nil {
		return false, err
	}
	return h.verify(pw), nil
}

// Limiter defaults.
const (
	DefaultMaxFailures = 5
	DefaultWindow      = time.Minute
	DefaultLockout     = 5 * time.Minute
)

// limiter counts failed attempts per peer fingerprint: more than max within
// window locks the peer out for lockout. It counts one budget per peer over
// every share name, so that naming other shares (or names of no share)
// gives no more guesses. It is safe for concurrent use.
type limiter struct {
	max     int
	window  time.Duration
	lockout time.Duration
	now     func() time.Time

	mu    sync.Mutex
	peers map[string]*attempts
	ended chan struct{} // closed when an attempt ends (nil: nobody waits)
}

type attempts struct {
	fails       []failure // within the window
	pending     int       // attempts being checked now
	lockedUntil time.Time
	lockedOn    []string // the shares whose failures locked the peer out
}

// failure is one failed attempt: when, and on which share name.
type failure struct {
	at    time.Time
	share string
}

// lock reports a peer locked out: for how long still, and the share names
// of the failures that locked it out.
type lock struct {
	wait time.Duration
	on   []string
}

// begin starts an attempt by fp, counted as if it failed until end says
// otherwise: a peer that sends many requests at once (one per stream) gets
// no more tries than one that sends them in turn. While fp has its every
// remaining try in flight, begin waits for one of them to end (a peer
// sending the right password on many streams at once is served, in turn).
// It reports false, and the lock, when fp is locked out; false and a zero
// lock when ctx ended first.
func (l *limiter) begin(ctx context.Context, fp string) (bool, lock) {
	for {
		l.mu.Lock()
		now := l.now()
		a := l.peers[fp]
		if a == nil {
			a = &attempts{}
			l.peers[fp] = a
		}
		if now.Before(a.lockedUntil) {
			l.mu.Unlock()
			return false, lock{a.lockedUntil.Sub(now), a.lockedOn}
		}
		recent := 0
		for _, f := range a.fails {
			if now.Sub(f.at) < l.window {
				recent++
			}
		}
		if recent+a.pending < l.max {
			a.pending++
			l.mu.Unlock()
			return true, lock{}
		}
		if l.ended == nil {
			l.ended = make(chan struct{})
		}
		ended := l.ended
		l.mu.Unlock()
		select {
		case <-ended:
		case <-ctx.Done():
			return false, lock{}
		}
	}
}

// end ends an attempt begun by begin; failed records it as failed on share,
// and end then reports whether that locked fp out.
func (l *limiter) end(fp, share string, failed bool) bool {
	locked := failed && l.fail(fp, share)
	l.mu.Lock()
	if a := l.peers[fp]; a != nil && a.pending > 0 {
		a.pending--
	}
	if l.ended != nil {
		close(l.ended) // wake those waiting in begin
		l.ended = nil
	}
	l.mu.Unlock()
	return locked
}

// locked reports whether fp is locked out, and the lock.
func (l *limiter) locked(fp string) (bool, lock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.peers[fp]
	if a == nil {
		return false, lock{}
	}
	now := l.now()
	if now.Before(a.lockedUntil) {
		return true, lock{a.lockedUntil.Sub(now), a.lockedOn}
	}
	return false, lock{}
}

// maxLockedOn bounds the share names a lock remembers, and maxShareName the
// bytes kept of each (the names come from the peer).
const (
	maxLockedOn  = 3
	maxShareName = 64
)

// fail records a failed attempt by fp on share and reports whether it
// locked fp out.
func (l *limiter) fail(fp, share string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	a := l.peers[fp]
	if a == nil {
		a = &attempts{}
		l.peers[fp] = a
	}
	keep := a.fails[:0]
	for _, f := range a.fails {
		if now.Sub(f.at) < l.window {
			keep = append(keep, f)
		}
	}
	if len(share) > maxShareName {
		share = share[:maxShareName]
	}
	a.fails = append(keep, failure{now, share})
	if len(a.fails) >= l.max {
		a.lockedUntil = now.Add(l.lockout)
		a.lockedOn = nil
		for i := len(a.fails) - 1; i >= 0 && len(a.lockedOn) < maxLockedOn; i-- {
			if !slices.Contains(a.lockedOn, a.fails[i].share) {
				a.lockedOn = append(a.lockedOn, a.fails[i].share)
			}
		}
		a.fails = a.fails[:0]
		return true
	}
	return false
}

// prune drops records that no longer matter; called now and then.
func (l *limiter) prune() {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for fp, a := range l.peers {
		if a.pending == 0 && now.After(a.lockedUntil) && (len(a.fails) == 0 || now.Sub(a.fails[len(a.fails)-1].at) >= l.window) {
			delete(l.peers, fp)
		}
	}
}
