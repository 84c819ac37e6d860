package iproute

import (
	"strings"
	"testing"
)

func TestEmptyInputs(t *testing.T) {
	a, err := ParseAddr("f", strings.NewReader("\n# c\n[root@x ~]# ip a\n"))
	if err != nil || a == nil || len(a) != 0 {
		t.Fatal(a, err)
	}
	r, err := ParseRoutes("f", strings.NewReader(""), 254)
	if err != nil || len(r) != 0 {
		t.Fatal(r, err)
	}
	n, err := ParseNeigh("f", strings.NewReader(""))
	if err != nil || len(n) != 0 {
		t.Fatal(n, err)
	}
	p, err := ParseRules("f", strings.NewReader(""))
	if err != nil || len(p) != 0 {
		t.Fatal(p, err)
	}
}
