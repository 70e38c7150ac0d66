package discovery

import (
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// ServiceType is the DNS-SD service type lanmsg servers advertise, in domain "local.".
const ServiceType = "_lanmsg._tcp"

// HTTPServiceType is DNS-SD's type for web pages (RFC 6763 section 7): a server with a chat
// page advertises it too, under its instance name, with TXT path=/.
const HTTPServiceType = "_http._tcp"

const (
	domain      = "local."
	serviceFQDN = ServiceType + "." + domain         // "_lanmsg._tcp.local."
	metaFQDN    = "_services._dns-sd._udp." + domain // DNS-SD service type enumeration
	protoVer    = "1"                                // TXT v=
	maxLabel    = 63                                 // bytes in one DNS label
)

// Service is one discovered (or advertised) instance.
type Service struct {
	Instance string            // instance name, unescaped, e.g. "vm (2)"
	Host     string            // target host, e.g. "vm.local."
	Addrs    []netip.Addr      // IPv4 first then IPv6, deduped; never loopback when seen from another host
	Port     int               // TCP port
	TXT      map[string]string // key=value pairs; a bare key maps to ""
}

// Endpoints returns "ip:port" for each address, in the order to try.
func (s Service) Endpoints() []string {
	out := make([]string, 0, len(s.Addrs))
	for _, a := range s.Addrs {
		out = append(out, net.JoinHostPort(a.String(), strconv.Itoa(s.Port)))
	}
	return out
}

// ID is the server id from the TXT record ("" if absent).
func (s Service) ID() string { return s.TXT["id"] }

// sortAddrs returns addrs deduplicated, IPv4 (and IPv4-mapped, unmapped) first, then IPv6,
// keeping the original order within each family.
func sortAddrs(addrs []netip.Addr) []netip.Addr {
	seen := make(map[netip.Addr]bool, len(addrs))
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		if !a.IsValid() || seen[a] {
			continue
		}
		seen[a] = true
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	return append(v4, v6...)
}

// parseTXT turns TXT strings into a map. RFC 6763 section 6: "key=value", a bare "key"
// (value ""), keys are case-insensitive (we lower-case them), the first occurrence of a key
// wins, and strings starting with "=" (no key) are ignored.
func parseTXT(txt []string) map[string]string {
	m := make(map[string]string, len(txt))
	for _, s := range txt {
		k, v, _ := strings.Cut(unescapePresentation(s), "=")
		if k == "" {
			continue
		}
		k = strings.ToLower(k)
		if _, dup := m[k]; dup {
			continue
		}
		m[k] = v
	}
	return m
}

// formatTXT turns a map into TXT strings: v and id first, then the other keys sorted, so the
// record is deterministic. Empty values are written as "key=" (not a bare key) so that they
// read back as "".
func formatTXT(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "v" && k != "id" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []string
	for _, k := range []string{"v", "id"} {
		if v, ok := m[k]; ok {
			out = append(out, k+"="+v)
		}
	}
	for _, k := range keys {
		out = append(out, k+"="+m[k])
	}
	return out
}

// escapeLabel turns raw label text (e.g. an instance name "vm (2)") into miekg/dns
// presentation format ("vm\ \(2\)"), which is what dns.RR names are written in.
func escapeLabel(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' || c == '\\' || c == ' ' || c == '(' || c == ')' || c == ';' ||
			c == '@' || c == '"' || c == '\'' || c == '$':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			b.WriteByte('\\')
			b.WriteString(strconv.Itoa(int(c) / 100))
			b.WriteString(strconv.Itoa(int(c) / 10 % 10))
			b.WriteString(strconv.Itoa(int(c) % 10))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// splitFirstLabel splits a presentation-format name into its first label (unescaped) and the
// rest (still in presentation format, without the leading dot). ok is false for malformed escapes.
func splitFirstLabel(name string) (label, rest string, ok bool) {
	var b []byte
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch c {
		case '.':
			return string(b), name[i+1:], true
		case '\\':
			if i+1 >= len(name) {
				return "", "", false
			}
			if isDigit(name[i+1]) {
				if i+3 >= len(name) || !isDigit(name[i+2]) || !isDigit(name[i+3]) {
					return "", "", false
				}
				v := int(name[i+1]-'0')*100 + int(name[i+2]-'0')*10 + int(name[i+3]-'0')
				if v > 255 {
					return "", "", false
				}
				b = append(b, byte(v))
				i += 3
			} else {
				b = append(b, name[i+1])
				i++
			}
		default:
			b = append(b, c)
		}
	}
	return string(b), "", true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// instanceFQDN is the DNS name of an instance: "<escaped instance>._lanmsg._tcp.local.".
func instanceFQDN(instance string) string { return escapeLabel(instance) + "." + serviceFQDN }

// parseInstanceFQDN returns the unescaped instance name if name is an instance of
// _lanmsg._tcp.local. (case-insensitively).
func parseInstanceFQDN(name string) (string, bool) {
	label, rest, ok := splitFirstLabel(name)
	if !ok || label == "" || !strings.EqualFold(rest, serviceFQDN) {
		return "", false
	}
	return label, true
}

// hostFQDN is "<escaped host label>.local.".
func hostFQDN(host string) string { return escapeLabel(host) + "." + domain }

// sameName compares two presentation-format names as DNS does (ASCII case-insensitive).
func sameName(a, b string) bool { return strings.EqualFold(a, b) }

// truncateLabel cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncateLabel(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // s[n] is a continuation byte: back up
		n--
	}
	return s[:n]
}

// nextName is the Bonjour-style rename after a conflict: "vm" -> "vm (2)",
// "vm (2)" -> "vm (3)". The result fits in one DNS label.
func nextName(name string) string {
	base, n := name, 1
	if strings.HasSuffix(name, ")") {
		if i := strings.LastIndex(name, " ("); i >= 0 {
			if k, err := strconv.Atoi(name[i+2 : len(name)-1]); err == nil && k >= 2 {
				base, n = name[:i], k
			}
		}
	}
	suffix := " (" + strconv.Itoa(n+1) + ")"
	return truncateLabel(base, maxLabel-len(suffix)) + suffix
}

// nextHost is the rename of a host label after a conflict: "vm" -> "vm-2", "vm-2" -> "vm-3".
func nextHost(host string) string {
	base, n := host, 1
	if i := strings.LastIndexByte(host, '-'); i >= 0 {
		if k, err := strconv.Atoi(host[i+1:]); err == nil && k >= 2 && host[i+1] != '0' {
			base, n = host[:i], k
		}
	}
	suffix := "-" + strconv.Itoa(n+1)
	return truncateLabel(base, maxLabel-len(suffix)) + suffix
}

// unescapePresentation undoes miekg/dns presentation escapes (\X and \DDD) in a character
// string such as a TXT element. Malformed escapes are kept literally.
func unescapePresentation(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b = append(b, c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			if v := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0'); v <= 255 {
				b = append(b, byte(v))
				i += 3
				continue
			}
		}
		b = append(b, s[i+1])
		i++
	}
	return string(b)
}
