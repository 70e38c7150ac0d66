package discovery

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestInstanceNameEscaping(t *testing.T) {
	for _, name := range []string{"vm", "vm (2)", `a.b\c`, "Björn's Mac; \"x\" @$", "tab\there", "x" + strings.Repeat("y", 62)} {
		fqdn := instanceFQDN(name)
		// Round trip through the wire format, as miekg/dns presents names it receives.
		rr := &dns.PTR{Hdr: hdr(serviceFQDN, dns.TypePTR, 0, 1), Ptr: fqdn}
		buf := make([]byte, 512)
		n, err := dns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			t.Fatalf("%q: pack: %v", name, err)
		}
		back, _, err := dns.UnpackRR(buf[:n], 0)
		if err != nil {
			t.Fatalf("%q: unpack: %v", name, err)
		}
		got, ok := parseInstanceFQDN(back.(*dns.PTR).Ptr)
		if !ok || got != name {
			t.Errorf("%q -> %q -> %q (%v)", name, back.(*dns.PTR).Ptr, got, ok)
		}
	}
	if got := instanceFQDN("vm (2)"); got != `vm\ \(2\)._lanmsg._tcp.local.` {
		t.Errorf("instanceFQDN = %q", got)
	}
	if got, ok := parseInstanceFQDN(`vm\ \(2\)._LANMSG._tcp.Local.`); !ok || got != "vm (2)" {
		t.Errorf("case-insensitive parse: %q %v", got, ok)
	}
	if got, ok := parseInstanceFQDN(`a\046b\032c._lanmsg._tcp.local.`); !ok || got != "a.b c" {
		t.Errorf(`\DDD parse: %q %v`, got, ok)
	}
	for _, bad := range []string{"vm._http._tcp.local.", "_lanmsg._tcp.local.", `vm\._lanmsg._tcp.local.`, `x\99`} {
		if got, ok := parseInstanceFQDN(bad); ok {
			t.Errorf("%q accepted as instance %q", bad, got)
		}
	}
}

func TestTXT(t *testing.T) {
	got := parseTXT([]string{"v=1", "ID=abc", "bare", "v=2", "=novalue", `q=a\"b\\c`, "e=", "eq=a=b"})
	want := map[string]string{"v": "1", "id": "abc", "bare": "", `q`: `a"b\c`, "e": "", "eq": "a=b"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseTXT = %v, want %v", got, want)
	}
	f := formatTXT(map[string]string{"ver": "0.1", "id": "ff", "v": "1", "a": ""})
	if !slices.Equal(f, []string{"v=1", "id=ff", "a=", "ver=0.1"}) {
		t.Errorf("formatTXT = %q", f)
	}
	// Through the wire: our escaping survives packing and unpacking.
	in := map[string]string{"v": "1", "x": `quote " back \ end`}
	rr := &dns.TXT{Hdr: hdr("a.local.", dns.TypeTXT, 0, 1), Txt: escapeTXT(formatTXT(in))}
	buf := make([]byte, 512)
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := dns.UnpackRR(buf[:n], 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := parseTXT(back.(*dns.TXT).Txt); !reflect.DeepEqual(got, in) {
		t.Errorf("TXT round trip = %v, want %v", got, in)
	}
}

func TestRenameSequence(t *testing.T) {
	seq := []string{"vm"}
	for i := 0; i < 3; i++ {
		seq = append(seq, nextName(seq[len(seq)-1]))
	}
	if !slices.Equal(seq, []string{"vm", "vm (2)", "vm (3)", "vm (4)"}) {
		t.Errorf("instance renames %q", seq)
	}
	for in, want := range map[string]string{"a (9)": "a (10)", "a (1)": "a (1) (2)", "a (x)": "a (x) (2)", "(2)": "(2) (2)"} {
		if got := nextName(in); got != want {
			t.Errorf("nextName(%q) = %q, want %q", in, got, want)
		}
	}
	long := strings.Repeat("é", 40) // 80 bytes
	if got := nextName(long); len(got) > maxLabel || !strings.HasSuffix(got, " (2)") || !utf8Valid(got) {
		t.Errorf("nextName(long) = %q (%d bytes)", got, len(got))
	}
	hs := []string{"pi"}
	for i := 0; i < 3; i++ {
		hs = append(hs, nextHost(hs[len(hs)-1]))
	}
	if !slices.Equal(hs, []string{"pi", "pi-2", "pi-3", "pi-4"}) {
		t.Errorf("host renames %q", hs)
	}
	if got := nextHost("web-01"); got != "web-01-2" {
		t.Errorf("nextHost(web-01) = %q", got)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestServiceEndpoints(t *testing.T) {
	s := Service{Port: 7, Addrs: sortAddrs([]netip.Addr{
		netip.MustParseAddr("fd00::1"), netip.MustParseAddr("10.0.0.1"),
		netip.MustParseAddr("::ffff:10.0.0.1"), netip.MustParseAddr("10.0.0.2"),
	})}
	if got := s.Endpoints(); !slices.Equal(got, []string{"10.0.0.1:7", "10.0.0.2:7", "[fd00::1]:7"}) {
		t.Errorf("Endpoints = %q", got)
	}
}
