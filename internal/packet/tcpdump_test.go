package packet

import (
	"fmt"
	"net/netip"
	"testing"
)

// TestAppendTcpdumpMatchesFmt checks the fmt-free rendering of TCP and UDP
// against the fmt one it replaces.
func TestAppendTcpdumpMatchesFmt(t *testing.T) {
	for _, p := range []Packet{
		{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), Proto: TCP, SPort: 40000, DPort: 80, TCPFlags: SYN},
		{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), Proto: TCP, SPort: 1, DPort: 2, TCPFlags: SYN | ACK, Len: 5},
		{Src: netip.MustParseAddr("fd00::1"), Dst: netip.MustParseAddr("fd00::2"), Proto: TCP, TCPFlags: RST | ACK},
		{Src: netip.MustParseAddr("fd00::1"), Dst: netip.MustParseAddr("::ffff:10.1.2.3"), Proto: UDP, SPort: 53, DPort: 65535, Len: 32},
		{Dst: netip.MustParseAddr("10.0.0.2"), Proto: UDP, Len: -1},
		{Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), Proto: TCP, TCPFlags: 0xff},
	} {
		ip := "IP"
		if p.Is6() {
			ip = "IP6"
		}
		want := ""
		if p.Proto == TCP {
			want = fmt.Sprintf("%s %s.%d > %s.%d: Flags [%s], length %d", ip, p.Src, p.SPort, p.Dst, p.DPort, flagString(p.TCPFlags), p.Len)
		} else {
			want = fmt.Sprintf("%s %s.%d > %s.%d: UDP, length %d", ip, p.Src, p.SPort, p.Dst, p.DPort, p.Len)
		}
		if got := Tcpdump(&p); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	for f := 0; f < 256; f++ {
		if FlagString(uint8(f)) != flagString(uint8(f)) {
			t.Errorf("flags %#x", f)
		}
	}
}
