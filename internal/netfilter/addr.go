package netfilter

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
)

// addr128 is an address as two big-endian words, so that a masked compare
// is four integer operations. IPv4 addresses use lo only.
type addr128 struct{ hi, lo uint64 }

// toAddr128 converts a packet or rule address for a ruleset family: a
// v4-mapped address is unmapped for IPv4 rulesets, an IPv4 address is
// mapped for IPv6 ones (so it never equals a real IPv6 address).
func toAddr128(a netip.Addr, family int) addr128 {
	if !a.IsValid() {
		return addr128{}
	}
	if family != 6 {
		a = a.Unmap()
		if a.Is4() {
			b := a.As4()
			return addr128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
		}
	}
	b := a.As16()
	return addr128{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

func (a addr128) and(m addr128) addr128 { return addr128{a.hi & m.hi, a.lo & m.lo} }

// less compares as unsigned 128-bit numbers (address order).
func (a addr128) less(b addr128) bool {
	return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo)
}

// addr converts back to a netip.Addr for messages.
func (a addr128) addr(family int) netip.Addr {
	if family != 6 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(a.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], a.hi)
	binary.BigEndian.PutUint64(b[8:], a.lo)
	return netip.AddrFrom16(b)
}

// maskOfLen returns the mask of a prefix length.
func maskOfLen(n, family int) addr128 {
	if family != 6 {
		if n == 0 {
			return addr128{}
		}
		return addr128{lo: uint64(^uint32(0) << (32 - n))}
	}
	var m addr128
	switch {
	case n == 0:
	case n <= 64:
		m.hi = ^uint64(0) << (64 - n)
	default:
		m.hi = ^uint64(0)
		m.lo = ^uint64(0) << (128 - n)
	}
	return m
}

// prefixLen returns the length of a contiguous mask, or -1.
func (m addr128) prefixLen(family int) int {
	n := bits.OnesCount64(m.hi) + bits.OnesCount64(m.lo)
	if maskOfLen(n, family) != m {
		return -1
	}
	return n
}

// addrMask is an -s/-d style match: (a & mask) == addr. Masks need not be
// contiguous: iptables accepts any dotted mask and the kernel compares
// exactly so.
type addrMask struct {
	addr, mask addr128
}

// appendText appends the match as iptables-save prints it (10.0.0.0/8,
// or 10.0.0.3/255.0.0.255 for a non-contiguous mask).
func (m *addrMask) appendText(b []byte, family int) []byte {
	b = m.addr.addr(family).AppendTo(b)
	b = append(b, '/')
	if n := m.mask.prefixLen(family); n >= 0 {
		return strconv.AppendInt(b, int64(n), 10)
	}
	return m.mask.addr(family).AppendTo(b)
}

func (m *addrMask) match(a addr128) bool {
	return a.hi&m.mask.hi == m.addr.hi && a.lo&m.mask.lo == m.addr.lo
}

// full reports whether the mask covers the whole address (a host match).
func (m *addrMask) full(family int) bool {
	if family != 6 {
		return uint32(m.mask.lo) == ^uint32(0)
	}
	return m.mask.hi == ^uint64(0) && m.mask.lo == ^uint64(0)
}

// parseAddrMask parses address[/len|/mask]. It returns what was expected
// when s is not valid.
func parseAddrMask(s string, family int) (addrMask, string) {
	want := "an IPv4 address with an optional /prefix length or /dotted mask"
	bitsN := 32
	if family == 6 {
		want = "an IPv6 address with an optional /prefix length"
		bitsN = 128
	}
	as, ms, hasMask := strings.Cut(s, "/")
	a, err := netip.ParseAddr(as)
	if err != nil || a.Zone() != "" || (family != 6 && !a.Is4()) || (family == 6 && !a.Is6()) {
		return addrMask{}, want
	}
	var mask addr128
	if !hasMask {
		mask = maskOfLen(bitsN, family)
	} else if n, err := strconv.Atoi(ms); err == nil {
		if n < 0 || n > bitsN {
			return addrMask{}, want + " (prefix length 0-" + strconv.Itoa(bitsN) + ")"
		}
		mask = maskOfLen(n, family)
	} else {
		ma, err := netip.ParseAddr(ms)
		if err != nil || ma.Is4() != a.Is4() {
			return addrMask{}, want
		}
		mask = toAddr128(ma, family)
	}
	am := addrMask{mask: mask}
	am.addr = toAddr128(a, family).and(mask)
	return am, ""
}

// parseAddrRange parses an iprange argument: a or a-b.
func parseAddrRange(s string, family int) (lo, hi addr128, ok bool) {
	as, bs, isRange := strings.Cut(s, "-")
	a, err := netip.ParseAddr(as)
	if err != nil || (family != 6) != a.Is4() {
		return lo, hi, false
	}
	b := a
	if isRange {
		if b, err = netip.ParseAddr(bs); err != nil || (family != 6) != b.Is4() {
			return lo, hi, false
		}
	}
	return toAddr128(a, family), toAddr128(b, family), true
}

// ifaceMatch is an -i/-o (or --physdev-in/out) name: exact, or with a
// trailing "+" any device whose name starts with the rest ("eth+" matches
// eth, eth0 ...; "+" alone matches every name, even the empty one, as the
// kernel's masked compare does).
type ifaceMatch struct {
	name     string
	wildcard bool
}

func parseIface(s string) ifaceMatch {
	if strings.HasSuffix(s, "+") {
		return ifaceMatch{name: s[:len(s)-1], wildcard: true}
	}
	return ifaceMatch{name: s}
}

func (m *ifaceMatch) appendText(b []byte) []byte {
	b = append(b, m.name...)
	if m.wildcard {
		b = append(b, '+')
	}
	return b
}

func (m *ifaceMatch) match(dev string) bool {
	if m.wildcard {
		return strings.HasPrefix(dev, m.name)
	}
	return dev == m.name
}
