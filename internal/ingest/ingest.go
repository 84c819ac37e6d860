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
