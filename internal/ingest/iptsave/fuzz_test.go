package iptsave

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/ingest"
)

// FuzzParse checks that no input panics, that failures are *ingest.Error
// pointing at a real line, and that successes satisfy checkRuleset.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.save"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), uint8(4))
	}
	for _, s := range []string{
		"*filter\n:INPUT ACCEPT [0:0]\n:A - [0:0]\n-A INPUT -s ! 1.2.3.4 -p tcp --dport ! 22 -g A\n-A A -m comment --comment \"a \\\"b\\\"\" -j RETURN -c 1 2\nCOMMIT\n",
		"*nat\n:PREROUTING ACCEPT [0:0]\n[1:2] -A PREROUTING -j DNAT --to-destination [::1]:80\nCOMMIT",
		"*raw\r\n:OUTPUT DROP\r\n-A OUTPUT ! -f\r\nCOMMIT\r\n",
	} {
		f.Add(s, uint8(6))
	}
	f.Fuzz(func(t *testing.T, text string, fam uint8) {
		family := 4 + 2*int(fam&1)
		rs, err := ParseString("fuzz", text, family)
		if err != nil {
			if rs != nil {
				t.Fatalf("ruleset returned with error %v", err)
			}
			var ie *ingest.Error
			if !errors.As(err, &ie) {
				t.Fatalf("error %T %v is not *ingest.Error", err, err)
			}
			lines := strings.Split(text, "\n")
			if ie.File != "fuzz" || ie.Line < 1 || ie.Line > len(lines) {
				t.Fatalf("error line %d out of 1..%d: %v", ie.Line, len(lines), err)
			}
			if want := strings.TrimSuffix(lines[ie.Line-1], "\r"); ie.Text != want {
				t.Fatalf("error text %q, line %d is %q", ie.Text, ie.Line, want)
			}
			return
		}
		checkRuleset(t, "fuzz", text, family, rs)
	})
}
