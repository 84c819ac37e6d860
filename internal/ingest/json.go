package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// PromptCommand returns the command of a pasted shell prompt line —
// "[root@mayura ~]# ip -j addr", "user@host:~$ docker inspect web",
// "$ ip -j route", "# conntrack -L", "virsh # net-dumpxml default" — or ""
// when t (already trimmed) is not one.
func PromptCommand(t string) string {
	if rest, ok := strings.CutPrefix(t, "virsh #"); ok {
		return "virsh " + strings.TrimSpace(rest)
	}
	if strings.HasPrefix(t, "$ ") || strings.HasPrefix(t, "# ") {
		return strings.TrimSpace(t[2:])
	}
	if t != "" && t[0] == '[' {
		i := strings.IndexByte(t, ']')
		if i > 0 && i+2 < len(t) && (t[i+1] == '#' || t[i+1] == '$') && t[i+2] == ' ' && strings.Contains(t[:i], "@") {
			return strings.TrimSpace(t[i+3:])
		}
		return ""
	}
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case ' ', '\t':
			return ""
		case '#', '$':
			if i > 0 && strings.Contains(t[:i], "@") && i+1 < len(t) && t[i+1] == ' ' {
				return strings.TrimSpace(t[i+2:])
			}
			return ""
		}
	}
	return ""
}

// JSONElem is one element of a top-level JSON array, with the offset of
// its first byte in the file.
type JSONElem struct {
	Raw json.RawMessage
	Off int64
}

// JSONArrays reads the top-level JSON arrays of data — `ip -j`, `bridge
// -j`, `docker inspect` and `docker network inspect` all print one; a file
// may hold several (`ip -j route; ip -6 -j route`) — and returns their
// elements in order. Pasted prompt lines and code fences between them are
// skipped. Errors are *Error at the line of the offending byte.
func JSONArrays(file string, data []byte) ([]JSONElem, error) {
	// Blank out prompt lines and fences, keeping offsets.
	clean := bytes.Clone(data)
	for off := 0; off < len(clean); {
		end := bytes.IndexByte(clean[off:], '\n')
		if end < 0 {
			end = len(clean) - off
		}
		t := strings.TrimSpace(string(clean[off : off+end]))
		if strings.HasPrefix(t, "```") || PromptCommand(t) != "" {
			for i := off; i < off+end; i++ {
				clean[i] = ' '
			}
		}
		off += end + 1
	}
	dec := json.NewDecoder(bytes.NewReader(clean))
	var out []JSONElem
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, jsonErr(file, data, dec.InputOffset(), err)
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return nil, ErrorAt(file, data, dec.InputOffset()-1, "unexpected %v: expected a JSON array ([...]) as the command prints it", tok)
		}
		for dec.More() {
			start := dec.InputOffset()
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, jsonErr(file, data, dec.InputOffset(), err)
			}
			// start is after the previous token: skip the separator.
			for start < int64(len(clean)) && (clean[start] == ',' || clean[start] == ' ' || clean[start] == '\t' || clean[start] == '\n' || clean[start] == '\r') {
				start++
			}
			out = append(out, JSONElem{Raw: raw, Off: start})
		}
		if _, err := dec.Token(); err != nil {
			return nil, jsonErr(file, data, dec.InputOffset(), err)
		}
	}
}

// jsonErr turns a decoder error into an *Error at its line.
func jsonErr(file string, data []byte, off int64, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return ErrorAt(file, data, se.Offset-1, "malformed JSON: %v", se)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return ErrorAt(file, data, int64(len(data)), "the JSON ends early: is the paste cut short?")
	}
	return ErrorAt(file, data, off, "malformed JSON: %v", err)
}

// DecodeElem decodes one element into v. A type error names the line of
// the offending value and its JSON field.
func DecodeElem(file string, data []byte, e JSONElem, v any, what string) error {
	err := json.Unmarshal(e.Raw, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return ErrorAt(file, data, e.Off+te.Offset-1, "%s: field %s is a JSON %s, expected %s", what, te.Field, te.Value, te.Type)
	}
	return ErrorAt(file, data, e.Off, "%s: %v", what, err)
}

// ValueAt returns the offset in data of the first occurrence of a quoted
// JSON string value inside e, or e's own offset: for errors about a
// value that parsed as a string but means nothing (a bad address).
func ValueAt(e JSONElem, value string) int64 {
	q, _ := json.Marshal(value)
	if i := bytes.Index(e.Raw, q); i >= 0 {
		return e.Off + int64(i)
	}
	return e.Off
}

// FieldAt returns the offset in data of `"field": "value"` inside e (any
// blanks around the colon), falling back to ValueAt: for errors about one
// field's value when the same text may appear elsewhere in the element.
func FieldAt(e JSONElem, field, value string) int64 {
	k, _ := json.Marshal(field)
	v, _ := json.Marshal(value)
	raw := e.Raw
	for i := 0; i < len(raw); {
		j := bytes.Index(raw[i:], k)
		if j < 0 {
			break
		}
		p := i + j + len(k)
		for p < len(raw) && (raw[p] == ' ' || raw[p] == '\t' || raw[p] == '\n' || raw[p] == '\r') {
			p++
		}
		if p < len(raw) && raw[p] == ':' {
			p++
			for p < len(raw) && (raw[p] == ' ' || raw[p] == '\t' || raw[p] == '\n' || raw[p] == '\r') {
				p++
			}
			if bytes.HasPrefix(raw[p:], v) {
				return e.Off + int64(p)
			}
		}
		i += j + 1
	}
	return ValueAt(e, value)
}
