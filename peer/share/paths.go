package share

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// Reasons a path is refused; the server answers them as StatusBadPath,
// StatusNotFound or StatusForbidden.
var (
	errBadPath = errors.New("not a clean relative path inside the share")
	errOutside = errors.New("leads outside the share")
	errSpecial = errors.New("not a regular file or folder")
)

// partialDir is where xfer keeps partial data of a put, in the folder put
// into.
const partialDir = ".p2plink-partial"

// badPathError is errBadPath saying what is wrong with the path, and what
// to do where there is something to do.
type badPathError struct{ why string }

func (e *badPathError) Error() string { return e.why }

// Is makes a badPathError errBadPath.
func (e *badPathError) Is(target error) bool { return target == errBadPath }

func badPath(format string, args ...any) error {
	return &badPathError{why: fmt.Sprintf(format, args...)}
}

// splitPath checks a path as sent on the wire ("a/b/c", slash-separated,
// relative to the share root; "" or "." is the root) and returns its
// elements. Absolute paths, "..", backslashes, drive letters, control
// characters and invalid UTF-8 are refused, each with a *badPathError
// that says which.
func splitPath(p string) ([]string, error) {
	switch {
	case len(p) > 4096:
		return nil, badPath("longer than 4096 bytes")
	case !utf8.ValidString(p):
		return nil, badPath("not valid UTF-8")
	case strings.ContainsRune(p, '\\'):
		// A Windows user's separator, or a file so named on a Unix
		// server: xfer carries neither (names.go).
		return nil, badPath(`holds a backslash (\), which p2plink does not carry in names: separate folders with /; a file whose name holds one must be renamed on the serving peer to be fetched`)
	case strings.HasPrefix(p, "/"):
		return nil, badPath("starts with /: name a path inside the share, relative to it")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return nil, badPath("holds a control character (%U)", r)
		}
	}
	var elems []string
	for _, e := range strings.Split(p, "/") {
		switch {
		case e == "" || e == ".":
			continue
		case e == "..":
			return nil, badPath(`holds "..": name a path inside the share`)
		case strings.EqualFold(e, partialDir):
			// xfer's partial data of puts, in any folder
			return nil, badPath("names %s, where unfinished puts are kept", partialDir)
		case len(e) >= 2 && e[1] == ':' && (e[0]|0x20 >= 'a' && e[0]|0x20 <= 'z'):
			// C:, C:foo — a drive on Windows
			return nil, badPath("holds a drive letter (%s): name a path inside the share, relative to it", e[:2])
		case strings.ContainsRune(e, ':') && filepath.Separator == '\\':
			// alternate data streams
			return nil, badPath("holds a colon (:), which names a stream of a file on Windows")
		}
		elems = append(elems, e)
	}
	return elems, nil
}

// within reports whether path (symbolic links resolved) is root or below it.
func within(root, path string) bool {
	if path == root {
		return true
	}
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// resolve returns the local path of an existing file or folder named by the
// wire path p inside root (whose symbolic links are already resolved), with
// every symbolic link resolved and checked to stay inside root, and its
// information. Special files (devices, fifos, sockets) are refused.
func resolve(root, p string) (string, fs.FileInfo, error) {
	elems, err := splitPath(p)
	if err != nil {
		return "", nil, err
	}
	full := filepath.Join(append([]string{root}, elems...)...)
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		// A dangling link inside, or a link outside whose target does not
		// exist, both read as not found.
		return "", nil, fs.ErrNotExist
	}
	if !within(root, real) {
		return "", nil, errOutside
	}
	fi, err := os.Lstat(real)
	if err != nil {
		return "", nil, err
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return "", nil, errSpecial
	}
	return real, fi, nil
}

// resolveDir returns the local folder named by the wire path p inside root,
// for receiving into. The longest existing prefix is resolved and checked like
// resolve; the rest are new folder names, created. It refuses a path whose
// existing part is not a folder.
func resolveDir(root, p string) (string, error) {
	elems, err := splitPath(p)
	if err != nil {
		return "", err
	}
	n := len(elems)
	for ; n > 0; n-- {
		if _, err := os.Lstat(filepath.Join(append([]string{root}, elems[:n]...)...)); err == nil {
			break
		}
	}
	base, fi, err := resolve(root, strings.Join(elems[:n], "/"))
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", errSpecial
	}
	dir := base
	for _, e := range elems[n:] {
		dir = filepath.Join(dir, e)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", err
		}
		// Whatever is there now must be a real folder, not a link planted
		// between our checks.
		fi, err := os.Lstat(dir)
		if err != nil {
			return "", err
		}
		if !fi.IsDir() {
			return "", errOutside
		}
	}
	return dir, nil
}
