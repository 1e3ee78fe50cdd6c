package share

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") || strings.Contains(h, "correct horse") {
		t.Errorf("hash %q", h)
	}
	h2, _ := HashPassword("correct horse")
	if h2 == h {
		t.Error("two hashes of one password are equal: no salt")
	}
	for pw, want := range map[string]bool{"correct horse": true, "correct horsE": false, "": false} {
		if ok, err := VerifyPassword(h, pw); ok != want || err != nil {
			t.Errorf("verify %q: %v, %v", pw, ok, err)
		}
	}
	if _, err := HashPassword(""); err == nil {
		t.Error("an empty password was hashed")
	}
	for _, bad := range []string{"", "hunter2", "$argon2i$v=19$m=65536,t=3,p=2$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=65536,t=3,p=2$!!$a2V5a2V5a2V5a2V5a2V5a2V5", "$argon2id$v=19$m=999999999,t=3,p=2$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5"} {
		if IsPasswordHash(bad) {
			t.Errorf("%q taken for a hash", bad)
		}
	}
}

func TestFlags(t *testing.T) {
	dir := t.TempDir()
	var c Config
	for _, v := range []string{"docs=" + dir, "inbox=" + dir + ":rw", "ro=" + dir + ":ro"} {
		if err := c.AddFlag(v); err != nil {
			t.Fatal(err)
		}
	}
	if c.Shares["docs"].ReadWrite || !c.Shares["inbox"].ReadWrite || c.Shares["ro"].ReadWrite || c.Shares["ro"].Dir != dir {
		t.Errorf("shares: %+v %+v %+v", c.Shares["docs"], c.Shares["inbox"], c.Shares["ro"])
	}
	for _, bad := range []string{"docs", "=x", ".hidden=" + dir, "a/b=" + dir} {
		if err := c.AddFlag(bad); err == nil {
			t.Errorf("--share %q accepted", bad)
		}
	}
	if err := c.AllowFlag("inbox=aaaa-bbbb-cccc-dddd,everyone"); err != nil {
		t.Fatal(err)
	}
	if err := c.AllowFlag(fpBob); err != nil || len(c.DefaultAllow) != 1 {
		t.Fatalf("default allow: %v %v", c.DefaultAllow, err)
	}
	for _, bad := range []string{"nope=" + fpAnn, "inbox=shorty", "inbox="} {
		if err := c.AllowFlag(bad); err == nil {
			t.Errorf("--allow %q accepted", bad)
		}
	}
	if !c.allows(c.Shares["docs"], fpBob) || c.allows(c.Shares["docs"], fpAnn) || !c.allows(c.Shares["inbox"], fpEve) {
		t.Error("allow lists not applied")
	}
	plain := filepath.Join(dir, "pw")
	os.WriteFile(plain, []byte("s3cret\n"), 0o600)
	if err := c.PasswordFileFlag("docs=" + plain); err != nil {
		t.Fatal(err)
	}
	h := c.Shares["docs"].PasswordHash
	if ok, _ := VerifyPassword(h, "s3cret"); !ok {
		t.Errorf("hash %q does not verify", h)
	}
	hashed := filepath.Join(dir, "hash")
	os.WriteFile(hashed, []byte(h+"\n"), 0o600)
	if err := c.PasswordFileFlag("inbox=" + hashed); err != nil || c.Shares["inbox"].PasswordHash != h {
		t.Errorf("an already-hashed line was not kept as it is: %v", err)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	c.Shares["gone"] = &Share{Dir: filepath.Join(dir, "missing")}
	if err := c.Check(); err == nil {
		t.Error("a missing folder passed Check")
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	c, err := LoadFile(filepath.Join(dir, "none.json"))
	if err != nil || len(c.Shares) != 0 {
		t.Fatalf("missing file: %v %v", c, err)
	}
	p := filepath.Join(dir, ConfigFile)
	h := cheapHash(t, "pw")
	os.WriteFile(p, []byte(`{"default_allow":["`+fpAnn+`"],"shares":[{"name":"docs","dir":"`+dir+`"},
		{"name":"box","dir":"`+dir+`","rw":true,"allow":["everyone"],"password_hash":"`+h+`"}]}`), 0o600)
	c, err = LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	if !c.Shares["box"].ReadWrite || c.Shares["box"].pw.key == nil || c.allows(c.Shares["docs"], fpBob) || !c.allows(c.Shares["box"], fpBob) {
		t.Errorf("loaded %+v", c)
	}
	os.WriteFile(p, []byte(`{"shares":[{"name":"docs","dir":"x","password":"plain"}]}`), 0o600)
	if _, err := LoadFile(p); err == nil {
		t.Error("an unknown field (a plaintext password) was accepted")
	}
}

func TestSplitPath(t *testing.T) {
	for p, want := range map[string]string{"": "", ".": "", "a/b": "a/b", "a//b/./c/": "a/b/c", "ab:c": "ab:c"} {
		got, err := splitPath(p)
		if err != nil || strings.Join(got, "/") != want {
			t.Errorf("%q: %q %v", p, got, err)
		}
	}
	for _, p := range []string{"..", "a/..", "/a", `a\b`, "C:", "z:/x", "a/b:c/../d", "\x7f", "a\nb", "\xff"} {
		if _, err := splitPath(p); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
}

// TestDefaultAllowChecked: an entry of default_allow that is neither a
// fingerprint nor "everyone" (a typo, "Everyone") is refused at start;
// it made every share relying on it visible to nobody. Found by review.
func TestDefaultAllowChecked(t *testing.T) {
	for _, bad := range []string{"Everyone", "KXQ4-7MZA-PL2D-T9E"} {
		cfg := &Config{}
		if err := cfg.AddFlag("docs=" + t.TempDir()); err != nil {
			t.Fatal(err)
		}
		cfg.DefaultAllow = []string{bad}
		if err := cfg.Check(); err == nil || !strings.Contains(err.Error(), "default_allow") {
			t.Errorf("default_allow %q: %v, want an error naming default_allow", bad, err)
		}
	}
	cfg := &Config{}
	cfg.AddFlag("docs=" + t.TempDir())
	cfg.DefaultAllow = []string{Everyone, fpAnn}
	if err := cfg.Check(); err != nil {
		t.Errorf("a good default_allow refused: %v", err)
	}
}
