package main

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"
)

// jsonLines is the command's stderr under --json: every line written to it
// leaves as one JSON object, so that a script reads nothing else there.
// A line that is a JSON object already (progress, and the events the
// command writes through event) passes as it is; any other line (waiting,
// connected, a warning) becomes {"event":"note","text":…}. Before --json
// is known it passes lines through untouched.
type jsonLines struct {
	mu   sync.Mutex
	w    io.Writer
	on   bool
	part []byte // a line not yet ended
}

// Write takes any bytes; whole lines go out at once, a partial one when
// its end comes (or at flush).
func (j *jsonLines) Write(p []byte) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.on {
		return j.w.Write(p)
	}
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			j.part = append(j.part, p...)
			break
		}
		line := append(j.part, p[:i]...)
		j.part = nil
		p = p[i+1:]
		if err := j.lineLocked(line); err != nil {
			return n - len(p), err
		}
	}
	return n, nil
}

func (j *jsonLines) lineLocked(line []byte) error {
	line = bytes.TrimRight(line, "\r")
	if len(line) == 0 {
		return nil
	}
	if line[0] == '{' && json.Valid(line) {
		_, err := j.w.Write(append(line, '\n'))
		return err
	}
	// Progress lines on a terminal end in \r; under --json there are none.
	return j.eventLocked(map[string]any{"event": "note", "text": string(line)})
}

func (j *jsonLines) eventLocked(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = j.w.Write(append(b, '\n'))
	return err
}

// json reports whether --json is on.
func (j *jsonLines) json() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.on
}

// event writes v as one JSON line, after what is pending.
func (j *jsonLines) event(v any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.part) > 0 {
		j.lineLocked(j.part)
		j.part = nil
	}
	j.eventLocked(v)
}

// flush writes out a line left without its end.
func (j *jsonLines) flush() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.part) > 0 {
		j.lineLocked(j.part)
		j.part = nil
	}
}
