package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/pktflow/pktflow/internal/model"
	"github.com/pktflow/pktflow/internal/nsthread"
)

// setting is one sysctl to write. Baseline settings are the lab's own
// (see the package documentation); failing to write one fails Up.
type setting struct {
	Key, Value string
	Baseline   bool
}

// baseline is what the lab writes in every node's namespace before the
// snapshot's own values, so that nothing is inherited from the machine's
// root namespace by accident.
func baseline(n *model.Node, v6 bool) map[string]string {
	ttl := n.InitialTTL
	if ttl <= 0 {
		ttl = 64
	}
	// An external node stands for networks that route, so it forwards
	// unless its snapshot says otherwise, here as in the engine: a packet
	// it has no route for gets an ICMP error, as the engine predicts,
	// instead of vanishing.
	fwd := "0"
	if n.Kind == model.KindExternal {
		fwd = "1"
	}
	b := map[string]string{
		"net.ipv4.ip_forward":                        fwd,
		"net.ipv4.ip_default_ttl":                    strconv.Itoa(ttl),
		"net.ipv4.icmp_ratelimit":                    "0",
		"net.ipv6.icmp.ratelimit":                    "0",
		"net.bridge.bridge-nf-call-iptables":         "0",
		"net.bridge.bridge-nf-call-ip6tables":        "0",
		"net.bridge.bridge-nf-call-arptables":        "0",
		"net.ipv4.conf.all.rp_filter":                "0",
		"net.ipv4.conf.default.rp_filter":            "0",
		"net.ipv4.conf.all.accept_local":             "0",
		"net.ipv4.conf.default.accept_local":         "0",
		"net.ipv4.conf.all.route_localnet":           "0",
		"net.ipv4.conf.default.route_localnet":       "0",
		"net.ipv4.conf.all.proxy_arp":                "0",
		"net.ipv4.conf.default.proxy_arp":            "0",
		"net.ipv4.conf.all.send_redirects":           "1",
		"net.ipv4.conf.default.send_redirects":       "1",
		"net.ipv6.conf.all.forwarding":               fwd,
		"net.ipv6.conf.all.disable_ipv6":             "1",
		"net.ipv6.conf.default.disable_ipv6":         "1",
		"net.ipv6.conf.all.accept_dad":               "0",
		"net.ipv6.conf.default.accept_dad":           "0",
		"net.ipv6.conf.default.router_solicitations": "0",
	}
	if v6 {
		b["net.ipv6.conf.all.disable_ipv6"] = "0"
		b["net.ipv6.conf.default.disable_ipv6"] = "0"
		// The node's initial TTL is its IPv6 hop limit too. IPv6 reads
		// it per device, so every device gets it, and default covers
		// devices made later.
		b["net.ipv6.conf.all.hop_limit"] = strconv.Itoa(ttl)
		b["net.ipv6.conf.default.hop_limit"] = strconv.Itoa(ttl)
		for _, i := range n.Interfaces {
			b["net.ipv6.conf."+i.Name+".hop_limit"] = strconv.Itoa(ttl)
		}
	}
	return b
}

// segmentSysctls is the baseline of a hidden segment namespace: a plain
// switch, no IP stack of its own, no netfilter on bridged frames.
func segmentSysctls() []setting {
	return []setting{
		{"net.ipv4.ip_forward", "0", true},
		{"net.ipv6.conf.all.disable_ipv6", "1", true},
		{"net.ipv6.conf.default.disable_ipv6", "1", true},
		{"net.bridge.bridge-nf-call-iptables", "0", true},
		{"net.bridge.bridge-nf-call-ip6tables", "0", true},
		{"net.bridge.bridge-nf-call-arptables", "0", true},
	}
}

// first are written before every other key because writing them resets
// per-device values (ip_forward rewrites every device's forwarding).
var first = []string{"net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding", "net.ipv6.conf.all.forwarding"}

// nodeSysctls merges the baseline with the snapshot's net.* sysctls,
// ordered: the forwarding switches first, then the rest by name.
func nodeSysctls(n *model.Node, v6 bool) []setting {
	vals := map[string]setting{}
	for k, v := range baseline(n, v6) {
		vals[k] = setting{k, v, true}
	}
	for k, v := range n.Sysctls {
		k = strings.TrimSpace(k)
		vals[k] = setting{k, strings.TrimSpace(v.Value), false}
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		for i, f := range first {
			if k == f {
				return i
			}
		}
		return len(first)
	}
	sort.Slice(keys, func(i, j int) bool {
		ri, rj := rank(keys[i]), rank(keys[j])
		if ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	out := make([]setting, 0, len(keys))
	for _, k := range keys {
		out = append(out, vals[k])
	}
	return out
}

// perDevice are the sysctl directories that hold one entry per device.
var perDevice = []string{"net.ipv4.conf.", "net.ipv6.conf.", "net.ipv4.neigh.", "net.ipv6.neigh."}

// sysctlPath turns a key into its /proc/sys path and tells which device
// it belongs to ("" for a namespace-wide key; all and default count as
// namespace-wide). Device names may contain dots (eth0.100): a key in
// sysctl(8)'s slash form (net.ipv4.conf.eth0/100.rp_filter) is
// understood, and so is the dotted form when the device is one of ifs.
func sysctlPath(key string, ifs []string) (path, dev string) {
	if strings.Contains(key, "/") {
		swapped := strings.Map(func(r rune) rune {
			switch r {
			case '.':
				return '/'
			case '/':
				return '.'
			}
			return r
		}, key)
		parts := strings.Split(swapped, "/")
		if len(parts) > 4 && parts[0] == "net" && (parts[2] == "conf" || parts[2] == "neigh") {
			dev = parts[3]
		}
		if dev == "all" || dev == "default" {
			dev = ""
		}
		return "/proc/sys/" + swapped, dev
	}
	for _, p := range perDevice {
		if !strings.HasPrefix(key, p) {
			continue
		}
		rest := key[len(p):]
		dev = ""
		for _, i := range ifs {
			if strings.HasPrefix(rest, i+".") && len(i) > len(dev) {
				dev = i
			}
		}
		if dev == "" {
			dev, _, _ = strings.Cut(rest, ".")
		}
		tail := strings.TrimPrefix(rest, dev)
		tail = strings.TrimPrefix(tail, ".")
		path = "/proc/sys/" + strings.ReplaceAll(p, ".", "/") + dev + "/" + strings.ReplaceAll(tail, ".", "/")
		if dev == "all" || dev == "default" {
			dev = ""
		}
		return path, dev
	}
	return "/proc/sys/" + strings.ReplaceAll(key, ".", "/"), ""
}

// applySysctls writes either the namespace-wide settings (perDev false)
// or the per-device ones (perDev true) inside namespace ns. Only net.*
// keys are ever written, and only when their file exists inside the
// namespace: a key that is global to the machine is not visible there,
// so the root namespace cannot be changed through this.
func (l *Lab) applySysctls(ns, who string, settings []setting, perDev bool, ifs []string) error {
	type write struct {
		setting
		path string
	}
	var writes []write
	for _, s := range settings {
		if !strings.HasPrefix(s.Key, "net.") {
			if perDev {
				continue // warned about in the namespace-wide pass
			}
			l.warnf("%s: sysctl %s skipped: not a network-namespace setting", who, s.Key)
			continue
		}
		path, dev := sysctlPath(s.Key, ifs)
		if (dev != "") != perDev || strings.Contains(path, "..") {
			continue
		}
		writes = append(writes, write{s, path})
	}
	if len(writes) == 0 {
		return nil
	}
	var errs []error
	err := nsthread.InNamed(ns, func() error {
		for _, w := range writes {
			changed, err := writeSysctl(w.path, w.Value)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				if w.Baseline {
					l.logf("%s: sysctl %s does not exist here; left alone", who, w.Key)
				} else {
					l.warnf("%s: sysctl %s does not exist in a namespace; skipped", who, w.Key)
				}
			case errors.Is(err, errReadOnly):
				l.warnf("%s: sysctl %s is read-only; skipped", who, w.Key)
			case err != nil && w.Baseline:
				errs = append(errs, fmt.Errorf("sysctl %s=%s: %w", w.Key, w.Value, err))
			case err != nil:
				l.warnf("%s: sysctl %s=%s: %v", who, w.Key, w.Value, err)
			case changed:
				l.logf("%s: sysctl %s=%s", who, w.Key, w.Value)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return errors.Join(errs...)
}

var errReadOnly = errors.New("read-only")

// writeSysctl writes val to a /proc/sys file unless it already holds it.
func writeSysctl(path, val string) (bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	if fi.Mode().Perm()&0o222 == 0 {
		return false, errReadOnly
	}
	if cur, err := os.ReadFile(path); err == nil && strings.Join(strings.Fields(string(cur)), " ") == strings.Join(strings.Fields(val), " ") {
		return false, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return false, err
	}
	if _, err := f.WriteString(val); err != nil {
		f.Close()
		return false, err
	}
	return true, f.Close()
}
