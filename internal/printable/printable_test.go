package printable

import "testing"

func TestString(t *testing.T) {
	for in, want := range map[string]string{
		"":                            "",
		"plain reason, ünïcode":       "plain reason, ünïcode",
		"\x1b]52;c;cm0K\x07\x1b[2K\r": `\x1b]52;c;cm0K\a\x1b[2K\r`,
		"bad \xff utf-8, kept \uFFFD": `bad \xff utf-8, kept ` + "\uFFFD",
		"c1 \u009b control, tab\t":    `c1 \u009b control, tab\t`,
	} {
		if got := String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}
