package iproute

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/pktflow/pktflow/internal/ingest"
)

func open(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

// checkErr asserts err is an *ingest.Error on the wanted line whose
// message contains want.
func checkErr(t *testing.T, err error, line int, want string) {
	t.Helper()
	var ie *ingest.Error
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T) is not an *ingest.Error", err, err)
	}
	if ie.Line != line {
		t.Errorf("error %q: line %d, want %d", err, ie.Line, line)
	}
	if !strings.Contains(ie.Error(), want) {
		t.Errorf("error %q does not mention %q", err, want)
	}
}

// checkFuzzErr asserts the fuzzing contract: a failure is an
// *ingest.Error pointing at a line of the input.
func checkFuzzErr(t *testing.T, input string, err error) {
	t.Helper()
	var ie *ingest.Error
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T) is not an *ingest.Error", err, err)
	}
	n := strings.Count(input, "\n") + 1
	if ie.Line < 1 || ie.Line > n {
		t.Fatalf("error %q: line %d outside 1..%d", err, ie.Line, n)
	}
}

func testdataBytes(name string) ([]byte, error) { return os.ReadFile("testdata/" + name) }
