package share

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/p2plink/p2plink/peer"
)

// Everyone in an allow list opens a share to every peer on the link.
const Everyone = "everyone"

// ConfigFile is the name of the shares file in the user's p2plink config
// directory.
const ConfigFile = "shares.json"

// Share is one named resource: a folder served to the peers it allows.
type Share struct {
	// Name is what peers ask for: letters, digits, '.', '-' and '_', not
	// starting with '.'.
	Name string `json:"name"`
	// Dir is the folder served. Everything a peer reaches is inside it.
	Dir string `json:"dir"`
	// ReadWrite lets allowed peers put files; by default a share is
	// read-only.
	ReadWrite bool `json:"rw,omitempty"`
	// Allow lists the fingerprints of the peers that may see the share, or
	// Everyone. Empty means Config.DefaultAllow.
	Allow []string `json:"allow,omitempty"`
	// PasswordHash, if set, is a hash written by HashPassword: a peer must
	// also give the password. The plaintext is never stored.
	PasswordHash string `json:"password_hash,omitempty"`

	pw   passwordHash
	root string // Dir with symbolic links resolved
}

// Config is the set of shares a peer serves.
type Config struct {
	// Shares by name.
	Shares map[string]*Share
	// DefaultAllow is the allow list of shares that have none of their
	// own. Empty means Everyone.
	DefaultAllow []string
}

// fileConfig is the JSON form of the shares file:
//
//	{
//	  "default_allow": ["KXQ4-7MZA-PL2D-T9EW"],
//	  "shares": [
//	    {"name": "docs", "dir": "/home/ann/docs"},
//	    {"name": "inbox", "dir": "/home/ann/inbox", "rw": true,
//	     "allow": ["everyone"], "password_hash": "$argon2id$v=19$m=65536,t=3,p=2$…$…"}
//	  ]
//	}
type fileConfig struct {
	DefaultAllow []string `json:"default_allow,omitempty"`
	Shares       []*Share `json:"shares"`
}

// LoadFile reads the shares file at path (the JSON form documented in
// SPEC.md). A missing file is an empty configuration, not an error.
func LoadFile(path string) (*Config, error) {
	cfg := &Config{Shares: map[string]*Share{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, err
	}
	var fc fileConfig
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return nil, fmt.Errorf("share: %s: %v (see peer/share/SPEC.md for the format)", path, err)
	}
	cfg.DefaultAllow = fc.DefaultAllow
	for _, s := range fc.Shares {
		if s == nil {
			continue
		}
		if _, dup := cfg.Shares[s.Name]; dup {
			return nil, fmt.Errorf("share: %s: share %q defined twice", path, s.Name)
		}
		cfg.Shares[s.Name] = s
	}
	return cfg, nil
}

// AddFlag adds or replaces a share from a --share value: NAME=DIR,
// NAME=DIR:ro or NAME=DIR:rw. A replaced share keeps its allow list and
// password.
func (c *Config) AddFlag(v string) error {
	name, dir, ok := strings.Cut(v, "=")
	if !ok || name == "" || dir == "" {
		return fmt.Errorf("--share %q: write NAME=DIR, NAME=DIR:ro or NAME=DIR:rw", v)
	}
	rw := false
	switch {
	case strings.HasSuffix(dir, ":rw"):
		dir, rw = strings.TrimSuffix(dir, ":rw"), true
	case strings.HasSuffix(dir, ":ro"):
		dir = strings.TrimSuffix(dir, ":ro")
	}
	if err := checkShareName(name); err != nil {
		return fmt.Errorf("--share %q: %v", v, err)
	}
	c.init()
	s := c.Shares[name]
	if s == nil {
		s = &Share{Name: name}
		c.Shares[name] = s
	}
	s.Dir, s.ReadWrite = dir, rw
	return nil
}

// AllowFlag applies an --allow value: NAME=FP[,FP…] sets the allow list of
// share NAME; FP[,FP…] without a name sets DefaultAllow. "everyone" may stand
// for a fingerprint.
func (c *Config) AllowFlag(v string) error {
	c.init()
	name, list, ok := strings.Cut(v, "=")
	if !ok {
		list = v
	}
	var fps []string
	for _, fp := range strings.Split(list, ",") {
		fp = strings.TrimSpace(fp)
		if fp == "" {
			continue
		}
		if strings.EqualFold(fp, Everyone) {
			fps = append(fps, Everyone)
			continue
		}
		n := peer.NormalizeFingerprint(fp)
		if len(n) != 16 {
			return fmt.Errorf("--allow %q: %q is not a fingerprint (16 letters and digits, as `p2plink id` prints) nor %q", v, fp, Everyone)
		}
		fps = append(fps, fp)
	}
	if len(fps) == 0 {
		return fmt.Errorf("--allow %q: name at least one fingerprint or %q", v, Everyone)
	}
	if !ok {
		c.DefaultAllow = fps
		return nil
	}
	s := c.Shares[name]
	if s == nil {
		return fmt.Errorf("--allow %q: no share %q (give --share %s=DIR first, or define it in the shares file)", v, name, name)
	}
	s.Allow = fps
	return nil
}

// PasswordFileFlag applies a --password-file value NAME=FILE: the first line
// of FILE is either the plaintext password, which is hashed now, or a hash
// written by HashPassword.
func (c *Config) PasswordFileFlag(v string) error {
	c.init()
	name, file, ok := strings.Cut(v, "=")
	if !ok || name == "" || file == "" {
		return fmt.Errorf("--password-file %q: write NAME=FILE", v)
	}
	s := c.Shares[name]
	if s == nil {
		return fmt.Errorf("--password-file %q: no share %q", v, name)
	}
	pw, err := ReadPasswordFile(file)
	if err != nil {
		return fmt.Errorf("--password-file %q: %w", v, err)
	}
	if IsPasswordHash(pw) {
		s.PasswordHash = pw
		return nil
	}
	h, err := HashPassword(pw)
	if err != nil {
		return fmt.Errorf("--password-file %q: %w", v, err)
	}
	s.PasswordHash = h
	return nil
}

// ReadPasswordFile returns the first line of a password file, without its
// line ending.
func ReadPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", errors.New("the file's first line is empty")
	}
	return line, nil
}

func (c *Config) init() {
	if c.Shares == nil {
		c.Shares = map[string]*Share{}
	}
}

// Check validates every share and prepares it for serving: the folder must
// exist, names must be valid, fingerprints well-formed, password hashes
// parseable. Serving calls it; call it first to report mistakes early.
func (c *Config) Check() error {
	for _, name := range c.Names() {
		s := c.Shares[name]
		if s.Name != name {
			s.Name = name
		}
		if err := checkShareName(name); err != nil {
			return fmt.Errorf("share %q: %v", name, err)
		}
		if s.Dir == "" {
			return fmt.Errorf("share %q: no folder (give --share %s=DIR)", name, name)
		}
		abs, err := filepath.Abs(s.Dir)
		if err != nil {
			return fmt.Errorf("share %q: %v", name, err)
		}
		root, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return fmt.Errorf("share %q: %v", name, err)
		}
		fi, err := os.Stat(root)
		if err != nil {
			return fmt.Errorf("share %q: %v", name, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("share %q: %s is not a folder", name, s.Dir)
		}
		s.root = root
		for _, fp := range s.Allow {
			if fp != Everyone && len(peer.NormalizeFingerprint(fp)) != 16 {
				return fmt.Errorf("share %q: allow list entry %q is not a fingerprint nor %q", name, fp, Everyone)
			}
		}
		if s.PasswordHash != "" {
			h, err := parseHash(s.PasswordHash)
			if err != nil {
				return fmt.Errorf("share %q: %w", name, err)
			}
			s.pw = h
		} else {
			s.pw = passwordHash{}
		}
	}
	for _, fp := range c.DefaultAllow {
		if fp != Everyone && len(peer.NormalizeFingerprint(fp)) != 16 {
			return fmt.Errorf("default_allow entry %q is not a fingerprint nor %q", fp, Everyone)
		}
	}
	return nil
}

// Names returns the share names in order.
func (c *Config) Names() []string {
	names := make([]string, 0, len(c.Shares))
	for n := range c.Shares {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// allows reports whether the peer with fingerprint fp may see s.
func (c *Config) allows(s *Share, fp string) bool {
	list := s.Allow
	if len(list) == 0 {
		list = c.DefaultAllow
	}
	if len(list) == 0 {
		return true
	}
	nfp := peer.NormalizeFingerprint(fp)
	for _, a := range list {
		if a == Everyone || (nfp != "" && peer.NormalizeFingerprint(a) == nfp) {
			return true
		}
	}
	return false
}

func checkShareName(name string) error {
	if name == "" || len(name) > 64 || name[0] == '.' {
		return errors.New("a share name is 1 to 64 letters, digits, '.', '-' or '_', not starting with '.'")
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
		default:
			return errors.New("a share name is 1 to 64 letters, digits, '.', '-' or '_', not starting with '.'")
		}
	}
	return nil
}
