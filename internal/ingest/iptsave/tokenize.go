package iptsave

// token is one word of a rule line. quoted records that some of it was
// inside double quotes: such a word is always an argument, even when it
// reads "-j" or "!", because iptables-save quotes any string that is not
// plain letters, digits, '-' and '_'.
type token struct {
	s      string
	quoted bool
}

// isOpt says whether t is an option name (-s, --dport). A lone "-" is an
// argument.
func (t token) isOpt() bool { return !t.quoted && len(t.s) > 1 && t.s[0] == '-' }

// isBang says whether t negates the option next to it.
func (t token) isBang() bool { return !t.quoted && t.s == "!" }

// tokenize splits a rule line into p.toks the way iptables-restore does:
// words are separated by blanks; a double quote opens a quoted part that
// may hold blanks and in which a backslash takes the next character
// literally (iptables-save escapes ", \ and ' that way); outside quotes a
// backslash is an ordinary character. Quotes may appear mid-word, and ""
// is an empty argument. It returns false on an unterminated quote.
//
// Unquoted words and quoted words without escapes are substrings of the
// line, so tokenizing allocates nothing in the common case.
func (p *parser) tokenize(s string) bool {
	toks := p.toks[:0]
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			p.toks = toks
			return true
		}
		start := i
		for i < len(s) && !isSpace(s[i]) && s[i] != '"' {
			i++
		}
		if i >= len(s) || s[i] != '"' {
			toks = append(toks, token{s: s[start:i]})
			continue
		}
		// The word has a quote. Most often it is exactly "..." with no
		// escapes, which needs no copy.
		if i == start {
			j := i + 1
			for j < len(s) && s[j] != '"' && s[j] != '\\' {
				j++
			}
			if j < len(s) && s[j] == '"' && (j+1 == len(s) || isSpace(s[j+1])) {
				toks = append(toks, token{s: s[i+1 : j], quoted: true})
				i = j + 1
				continue
			}
		}
		buf := append(p.qbuf[:0], s[start:i]...)
		inQuote := false
	word:
		for i < len(s) {
			c := s[i]
			switch {
			case inQuote && c == '\\' && i+1 < len(s):
				buf = append(buf, s[i+1])
				i += 2
			case c == '"':
				inQuote = !inQuote
				i++
			case !inQuote && isSpace(c):
				break word
			default:
				buf = append(buf, c)
				i++
			}
		}
		p.qbuf = buf
		if inQuote {
			p.toks = toks
			return false
		}
		toks = append(toks, token{s: string(buf), quoted: true})
	}
}
