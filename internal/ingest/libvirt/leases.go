package libvirt

import (
	"io"
	"net"
	"net/netip"
	"strings"

	"github.com/pktflow/pktflow/internal/ingest"
	"github.com/pktflow/pktflow/internal/model"
)

// ParseLeases reads `virsh net-dhcp-leases NETWORK` output:
//
//	 Expiry Time          MAC address        Protocol  IP address                Hostname        Client ID or DUID
//	-------------------------------------------------------------------------------------------------------------------
//	 2021-11-15 17:09:48  52:54:00:01:1a:a2  ipv4      192.168.122.120/24        rhel8a          01:52:54:00:01:1a:a2
//
// A prompt line with the command ("virsh # net-dhcp-leases default",
// "[root@h ~]# virsh net-dhcp-leases default") names the network of the
// leases after it. Several listings may follow each other; a lease listed
// twice (the same network, MAC, address and expiry) is kept once. The
// output of other virsh commands is an error.
func ParseLeases(file string, r io.Reader) ([]model.DHCPLease, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, ingest.Errorf(file, 0, "", "reading: %v", err)
	}
	var out []model.DHCPLease
	network := ""
	header := false
	otherCmd := ""
	seen := map[string]bool{}
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		line := strings.TrimSuffix(raw, "\r")
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "```") {
			continue
		}
		if cmd := promptCommand(t); cmd != "" {
			f := strings.Fields(cmd)
			if len(f) > 0 && f[0] == "sudo" {
				f = f[1:]
			}
			if len(f) >= 2 && f[0] == "virsh" && f[1] == "net-dhcp-leases" {
				network, header, otherCmd = leasesNetwork(f[2:]), false, ""
				continue
			}
			if len(f) >= 1 && f[0] == "virsh" && len(f) == 1 {
				continue // "virsh #" alone
			}
			otherCmd = cmd
			continue
		}
		if otherCmd != "" {
			return nil, ingest.Errorf(file, n, line, "output of `%s` in the leases file: expected only `virsh net-dhcp-leases` output (remove the other command's lines)", otherCmd)
		}
		if strings.HasPrefix(t, "Expiry Time") {
			f := strings.Fields(t)
			if !strings.Contains(t, "MAC address") || !strings.Contains(t, "IP address") || len(f) < 7 {
				return nil, ingest.Errorf(file, n, line, "unexpected column header: expected \"Expiry Time  MAC address  Protocol  IP address  Hostname  Client ID or DUID\"")
			}
			header = true
			continue
		}
		if strings.Trim(t, "-") == "" {
			continue
		}
		if !header {
			return nil, ingest.Errorf(file, n, line, "unexpected line before the column header: expected `virsh net-dhcp-leases` output starting with \"Expiry Time  MAC address ...\"")
		}
		l, msg := leaseLine(t)
		if msg != "" {
			return nil, ingest.Errorf(file, n, line, "%s", msg)
		}
		l.Network = network
		l.Origin = model.Origin{File: file, Line: n, Text: line}
		key := strings.Join([]string{l.Network, l.MAC, l.Prefix.String(), l.Expiry}, "|")
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, l)
	}
	return out, nil
}

// leasesNetwork finds the network in net-dhcp-leases' arguments:
// "default", "--network default", "default --mac 52:54:...".
func leasesNetwork(args []string) string {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--network" && i+1 < len(args):
			return args[i+1]
		case a == "--mac":
			i++
		case strings.HasPrefix(a, "--"):
		default:
			return a
		}
	}
	return ""
}

// leaseLine reads "DATE TIME MAC PROTO ADDR/LEN HOSTNAME CLIENTID".
func leaseLine(t string) (model.DHCPLease, string) {
	const want = "expected \"DATE TIME MAC ipv4|ipv6 ADDRESS/PREFIX HOSTNAME CLIENT-ID\" (hostname and client id may be -)"
	f := strings.Fields(t)
	if len(f) < 6 || len(f) > 7 {
		return model.DHCPLease{}, "malformed lease line: " + want
	}
	if !isDate(f[0]) || !isTime(f[1]) {
		return model.DHCPLease{}, "expiry " + f[0] + " " + f[1] + ": expected YYYY-MM-DD HH:MM:SS; " + want
	}
	hw, err := net.ParseMAC(f[2])
	if err != nil || len(hw) != 6 {
		return model.DHCPLease{}, "MAC " + f[2] + " is not an Ethernet address; " + want
	}
	p, err := netip.ParsePrefix(f[4])
	if err != nil || p.Addr().Zone() != "" {
		return model.DHCPLease{}, "address " + f[4] + ": expected ADDRESS/PREFIX such as 192.168.122.120/24"
	}
	switch f[3] {
	case "ipv4":
		if !p.Addr().Is4() {
			return model.DHCPLease{}, "protocol ipv4 with the IPv6 address " + f[4]
		}
	case "ipv6":
		if p.Addr().Is4() {
			return model.DHCPLease{}, "protocol ipv6 with the IPv4 address " + f[4]
		}
	default:
		return model.DHCPLease{}, "protocol " + f[3] + ": expected ipv4 or ipv6"
	}
	l := model.DHCPLease{Expiry: f[0] + " " + f[1], MAC: hw.String(), Prefix: p}
	if f[5] != "-" {
		l.Hostname = f[5]
	}
	if len(f) == 7 && f[6] != "-" {
		l.ClientID = f[6]
	}
	return l, ""
}

func isDate(s string) bool {
	return len(s) == 10 && s[4] == '-' && s[7] == '-' && digits(s[:4]) && digits(s[5:7]) && digits(s[8:])
}

func isTime(s string) bool {
	return len(s) == 8 && s[2] == ':' && s[5] == ':' && digits(s[:2]) && digits(s[3:5]) && digits(s[6:])
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
