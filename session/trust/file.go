package trust

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrParse is wrapped by every *ParseError.
var ErrParse = errors.New("malformed line")

// ParseError is a line of a known_servers, allow or chat_names file that
// cannot be read. It names the file and line, says what is wrong, and Hint
// says how to fix it.
type ParseError struct {
	File string
	Line int
	Err  error
	hint string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

// Hint says how to fix the line.
func (e *ParseError) Hint() string { return e.hint }

func (e *ParseError) Unwrap() []error { return []error{ErrParse, e.Err} }

// maxFileSize bounds the files read here: far more than any person writes,
// small enough that a runaway file does not take the memory.
const maxFileSize = 16 << 20

// line is one meaningful line of a file: its number and its text with the
// comment and surrounding space removed.
type line struct {
	n    int
	text string
}

// commentStyle says where "#" starts a comment.
type commentStyle int

const (
	// anywhere: "#" starts a comment wherever it is (allow files, which
	// hold only fingerprints, and those never contain "#").
	anywhere commentStyle = iota
	// lineStart: only a line whose first character other than spaces is
	// "#" is a comment (files that hold names, which may contain "#").
	lineStart
)

// readLines reads path's lines, dropping comments and blank lines. A missing
// file has no lines.
func readLines(path string, style commentStyle) ([]line, error) {
	b, err := readBounded(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return splitLines(path, b, style)
}

// readBounded reads path, reading no more than maxFileSize+1 bytes: a
// larger file is an error, not a memory hog.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("trust: read %s: %w", path, err)
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("trust: %s is larger than %d MiB: is it the right file?", path, maxFileSize>>20)
	}
	return b, nil
}

// stripComment returns a line's text without its comment and surrounding
// space.
func stripComment(t string, style commentStyle) string {
	t = strings.TrimSpace(t)
	switch {
	case strings.HasPrefix(t, "#"):
		return ""
	case style == anywhere:
		if i := strings.IndexByte(t, '#'); i >= 0 {
			t = strings.TrimSpace(t[:i])
		}
	}
	return t
}

func splitLines(path string, b []byte, style commentStyle) ([]line, error) {
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("trust: %s is larger than %d MiB: is it the right file?", path, maxFileSize>>20)
	}
	var out []line
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxFileSize)
	for n := 1; sc.Scan(); n++ {
		if t := stripComment(sc.Text(), style); t != "" {
			out = append(out, line{n, t})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("trust: read %s: %w", path, err)
	}
	return out, nil
}

// appendLine appends text and a newline to path (created with mode 0600)
// in one write, holding the file's lock, unless skip, called with the file's
// current lines under the lock, says the line is already there. Writers in
// other processes that use the lock never interleave or lose a line.
// Appending is for the files that hold names (comment style lineStart).
func appendLine(path, text string, skip func([]line) (bool, error)) error {
	unlock, err := lockFile(path)
	if err != nil {
		return err
	}
	defer unlock()
	b, err := readBounded(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if skip != nil {
		lines, err := splitLines(path, b, lineStart)
		if err != nil {
			return err
		}
		if done, err := skip(lines); done || err != nil {
			return err
		}
	}
	rec := text + "\n"
	if len(b) > 0 && b[len(b)-1] != '\n' {
		rec = "\n" + rec // a person's edit left no newline at the end
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("trust: open %s: %w", path, err)
	}
	if _, err := f.WriteString(rec); err != nil {
		_ = f.Close()
		return fmt.Errorf("trust: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("trust: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("trust: write %s: %w", path, err)
	}
	return nil
}

// rewrite replaces path, under its lock, with the lines for which keep
// (given the line number and raw text) returns true, comments and blank
// lines included as they were. The new file replaces the old in one rename,
// so a reader sees one or the other, never half.
func rewrite(path string, keep func(n int, raw string) (bool, error)) error {
	unlock, err := lockFile(path)
	if err != nil {
		return err
	}
	defer unlock()
	b, err := readBounded(path)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxFileSize)
	for n := 1; sc.Scan(); n++ {
		ok, err := keep(n, sc.Text())
		if err != nil {
			return err
		}
		if ok {
			out.Write(sc.Bytes())
			out.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("trust: read %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return fmt.Errorf("trust: rewrite %s: %w", path, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(out.Bytes()); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("trust: rewrite %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("trust: rewrite %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("trust: rewrite %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("trust: rewrite %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// readFileExists reports an error if path cannot be read (for files that
// must exist), and its size.
func readFileExists(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("trust: %w", err)
	}
	return fi.Size(), nil
}
