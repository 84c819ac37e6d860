package trace

import (
	"encoding/json"
	"strings"
	"testing"
)

// The JSON contract names legs, kinds and hooks in words; the small
// numbers behind them must print and read back as those words.
func TestNamesInJSON(t *testing.T) {
	ev := Event{Leg: LegReply, Node: "n", Kind: EvConntrack, Hook: HookPostRouting, Message: "m"}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"leg":"reply","node":"n","kind":"conntrack","hook":"POSTROUTING","message":"m"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil || back != ev {
		t.Fatalf("read back %+v (%v), want %+v", back, err, ev)
	}
	// No hook: the field is left out, as an empty string was.
	b, _ = json.Marshal(Event{Leg: LegRequest, Kind: EvCapture})
	if strings.Contains(string(b), "hook") {
		t.Errorf("an event without a hook names one: %s", b)
	}
}

func TestEveryNameReadsBack(t *testing.T) {
	for l := LegRequest; l <= LegStray; l++ {
		var got Leg
		if err := got.UnmarshalText([]byte(l.String())); err != nil || got != l {
			t.Errorf("leg %q read back as %v (%v)", l, got, err)
		}
	}
	for k := EvCapture; k <= EvNote; k++ {
		var got Kind
		if err := got.UnmarshalText([]byte(k.String())); err != nil || got != k {
			t.Errorf("kind %q read back as %v (%v)", k, got, err)
		}
	}
	for h := HookPreRouting; h <= HookPostRouting; h++ {
		var got Hook
		if err := got.UnmarshalText([]byte(h.String())); err != nil || got != h {
			t.Errorf("hook %q read back as %v (%v)", h, got, err)
		}
	}
	var k Kind
	if err := json.Unmarshal([]byte(`"teleport"`), &k); err == nil {
		t.Error("an unknown kind was read without an error")
	}
	if s := Kind(200).String(); !strings.Contains(s, "200") {
		t.Errorf("Kind(200) prints %q", s)
	}
}
