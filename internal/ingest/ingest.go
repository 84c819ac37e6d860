// Package ingest holds what every input parser shares: the error type that
// names the file, the line and what was expected. Each input format has its
// own sub-package (iptsave, iproute, ...).
package ingest

import "fmt"

// Error is a parse error in an input file. Every parser returns *Error for
// malformed input, never panics, and never returns a partial result with a
// nil error.
type Error struct {
	File string // the file as the user named it
	Line int    // 1-based; 0 when the error is about the whole file
	// Text is the offending line as written (may be empty).
	Text string
	// Msg says what was wrong and what was expected.
	Msg string
}

func (e *Error) Error() string {
	s := e.File
	if e.Line > 0 {
		s += fmt.Sprintf(":%d", e.Line)
	}
	s += ": " + e.Msg
	if e.Text != "" {
		t := e.Text
		if len(t) > 120 {
			t = t[:117] + "..."
		}
		s += fmt.Sprintf(" (in %q)", t)
	}
	return s
}

// Errorf builds an *Error.
func Errorf(file string, line int, text, format string, args ...any) *Error {
	return &Error{File: file, Line: line, Text: text, Msg: fmt.Sprintf(format, args...)}
}

// LineAt returns the 1-based line of data that holds byte offset off (for
// the offsets JSON and XML decoders report) and that line's text without
// its line end. An offset past the end names the last line.
func LineAt(data []byte, off int64) (int, string) {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line, start := 1, 0
	for i := 0; i < int(off); i++ {
		if data[i] == '\n' {
			line++
			start = i + 1
		}
	}
	if off == int64(len(data)) && off > 0 && data[off-1] == '\n' {
		// The end of a file that ends with a newline is the last line,
		// not the empty one after it.
		line--
		start = 0
		for i := int(off) - 2; i >= 0; i-- {
			if data[i] == '\n' {
				start = i + 1
				break
			}
		}
	}
	end := start
	for end < len(data) && data[end] != '\n' {
		end++
	}
	text := string(data[start:end])
	if len(text) > 0 && text[len(text)-1] == '\r' {
		text = text[:len(text)-1]
	}
	return line, text
}

// ErrorAt builds an *Error for a byte offset of data (see LineAt).
func ErrorAt(file string, data []byte, off int64, format string, args ...any) *Error {
	line, text := LineAt(data, off)
	return Errorf(file, line, text, format, args...)
}
