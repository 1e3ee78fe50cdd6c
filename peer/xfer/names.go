package xfer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// partialDir is the folder, inside the receive directory, holding partial
// data. Received names may not start with it.
const partialDir = ".p2plink-partial"

// checkName reports why a received relative name is unsafe, or nil if it is a
// clean relative name that stays inside the receive directory. Unsafe names
// are refused, not rewritten: a correct sender never produces them.
func checkName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s", ErrUnsafeName, name, why)
	}
	switch {
	case name == "":
		return bad("empty")
	case len(name) > maxName:
		return bad("too long")
	case !utf8.ValidString(name):
		return bad("not valid UTF-8")
	case strings.HasPrefix(name, "/"):
		return bad("absolute path")
	case strings.ContainsRune(name, '\\'):
		return bad(`contains a backslash (\), which p2plink does not carry in names (Windows reads it as a folder separator)`)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return bad("contains a control character")
		}
	}
	for i, c := range strings.Split(name, "/") {
		switch {
		case c == "":
			return bad("empty path element")
		case c == "." || c == "..":
			return bad(`contains "." or ".."`)
		case len(c) >= 2 && c[1] == ':' && isLetter(c[0]):
			return bad("drive letter")
		case i == 0 && strings.EqualFold(c, partialDir):
			return bad("reserved for partial data")
		}
	}
	return nil
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// numbered returns name with " (n)" inserted before its extension:
// "a/b.tar.gz", 2 → "a/b (2).tar.gz"; "a/.profile", 1 → "a/.profile (1)".
func numbered(name string, n int) string {
	dir, base := "", name
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		dir, base = name[:i+1], name[i+1:]
	}
	stem, ext := base, ""
	if i := strings.IndexByte(base[1:], '.'); i >= 0 {
		stem, ext = base[:i+1], base[i+1:]
	}
	return fmt.Sprintf("%s%s (%d)%s", dir, stem, n, ext)
}
