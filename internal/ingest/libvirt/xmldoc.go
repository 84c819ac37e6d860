package libvirt

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"

	"github.com/pktflow/pktflow/internal/ingest"
)

// doc is one top-level XML element of an input file: virsh prints one per
// command, and a file may hold several with the commands that printed
// them.
type doc struct {
	raw  []byte
	off  int64 // offset of raw in the file
	line int   // line of the root element
	// lines maps an element path ("network/ip", "network/ip/dhcp/host")
	// to the lines of its elements in document order.
	lines map[string][]int
}

// elementLine returns the line of the k-th element at path, or the
// document's line.
func (d *doc) elementLine(path string, k int) int {
	if ls := d.lines[path]; k < len(ls) {
		return ls[k]
	}
	return d.line
}

// documents splits data into its top-level elements, which must all be
// named root. Between them only blank lines, shell or virsh prompts
// ("virsh # net-dumpxml default", "[root@h ~]# virsh dumpxml vm"), code
// fences, XML declarations and comments may appear: anything else is an
// error, as pktflow never ignores input it was given.
func documents(file string, data []byte, root, what string) ([]*doc, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var docs []*doc
	for {
		start := d.InputOffset()
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, xmlErr(file, data, start, err, what)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != root {
				return nil, ingest.ErrorAt(file, data, start, "unexpected <%s> element: expected <%s> (the output of %s)", t.Name.Local, root, what)
			}
			dc := &doc{off: start, lines: map[string][]int{}}
			dc.line, _ = ingest.LineAt(data, start)
			path := []string{root}
			for len(path) > 0 {
				off := d.InputOffset()
				tok, err := d.RawToken()
				if err != nil {
					if errors.Is(err, io.EOF) {
						return nil, ingest.ErrorAt(file, data, int64(len(data)), "the <%s> element that starts at line %d is not closed: is the paste cut short?", root, dc.line)
					}
					return nil, xmlErr(file, data, off, err, what)
				}
				switch e := tok.(type) {
				case xml.StartElement:
					path = append(path, e.Name.Local)
					p := strings.Join(path, "/")
					l, _ := ingest.LineAt(data, off)
					dc.lines[p] = append(dc.lines[p], l)
				case xml.EndElement:
					if e.Name.Local != path[len(path)-1] {
						return nil, ingest.ErrorAt(file, data, off, "</%s> closes <%s>: expected </%s>", e.Name.Local, path[len(path)-1], path[len(path)-1])
					}
					path = path[:len(path)-1]
				}
			}
			dc.raw = data[start:d.InputOffset()]
			docs = append(docs, dc)
		case xml.CharData:
			if err := between(file, data, start, t); err != nil {
				return nil, err
			}
		case xml.EndElement:
			return nil, ingest.ErrorAt(file, data, start, "</%s> without a matching <%s>", t.Name.Local, t.Name.Local)
		case xml.ProcInst, xml.Comment, xml.Directive:
		}
	}
	return docs, nil
}

// between checks text between top-level elements: only blank lines,
// prompts and code fences.
func between(file string, data []byte, off int64, text []byte) error {
	for i, ln := range strings.Split(string(text), "\n") {
		t := strings.TrimSpace(ln)
		if t == "" || strings.HasPrefix(t, "```") || isPrompt(t) {
			continue
		}
		// Offset of this line inside text.
		o := off
		for _, prev := range strings.Split(string(text), "\n")[:i] {
			o += int64(len(prev)) + 1
		}
		for o < off+int64(len(text)) && (data[o] == ' ' || data[o] == '\t') {
			o++
		}
		return ingest.ErrorAt(file, data, o, "unexpected text outside the XML: expected only XML documents, prompt lines (virsh # ...) and blank lines")
	}
	return nil
}

// xmlErr turns a decoder error into an *ingest.Error at its line.
func xmlErr(file string, data []byte, off int64, err error, what string) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) && se.Line > 0 {
		lines := strings.Split(string(data), "\n")
		text := ""
		if se.Line <= len(lines) {
			text = strings.TrimSuffix(lines[se.Line-1], "\r")
		}
		return ingest.Errorf(file, se.Line, text, "malformed XML: %s (expected the output of %s)", se.Msg, what)
	}
	return ingest.ErrorAt(file, data, off, "malformed XML: %v (expected the output of %s)", err, what)
}

// isPrompt recognises a pasted command line: "virsh # net-dumpxml
// default", "[root@mayura ~]# virsh net-dumpxml default", "$ virsh ...",
// "user@host:~$ virsh ...".
func isPrompt(t string) bool { return promptCommand(t) != "" }

// promptCommand returns the command of a prompt line, or "".
func promptCommand(t string) string { return ingest.PromptCommand(t) }
