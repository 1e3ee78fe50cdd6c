// Package printable makes text that came from a peer fit to show on a
// terminal: control characters (C0, DEL, C1) and invalid UTF-8 are written
// as Go escapes, so that a hostile peer cannot send escape sequences (which
// can rewrite the screen, or set the clipboard with OSC 52) to the user.
package printable

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s with its control characters and invalid UTF-8 bytes
// escaped (\x1b, \r, \u009b, \xff); other text, U+FFFD included, is kept.
func String(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case unicode.IsControl(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
