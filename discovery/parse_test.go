package discovery

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/miekg/dns"
)

// rawRR appends a record with arbitrary (possibly broken) RDATA.
func rawRR(b []byte, name string, typ uint16, rdata []byte) []byte {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		panic(err)
	}
	b = append(b, buf[:n]...)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint16(b, dns.ClassINET)
	b = binary.BigEndian.AppendUint32(b, 120)
	b = binary.BigEndian.AppendUint16(b, uint16(len(rdata)))
	return append(b, rdata...)
}

func packRR(b []byte, rr dns.RR) []byte {
	buf := make([]byte, 512)
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		panic(err)
	}
	return append(b, buf[:n]...)
}

func TestParsePacketSkipsBrokenRecord(t *testing.T) {
	inst := instanceFQDN("vm (2)")
	b := []byte{0, 0, 0x84, 0, 0, 1, 0, 4, 0, 0, 0, 1} // response, 1 question, 4 answers, 1 additional
	q := make([]byte, 256)
	n, _ := dns.PackDomainName(serviceFQDN, q, 0, nil, false)
	b = append(b, q[:n]...)
	b = append(b, 0, 12, 0, 1) // QTYPE PTR, QCLASS IN
	b = packRR(b, &dns.PTR{Hdr: hdr(serviceFQDN, dns.TypePTR, 0, 120), Ptr: inst})
	b = rawRR(b, "h.local.", dns.TypeA, []byte{10, 0, 0})     // A with 3 bytes: broken
	b = rawRR(b, inst, dns.TypeTXT, []byte{9, 'v', '=', '1'}) // TXT string longer than RDATA: broken
	b = packRR(b, &dns.SRV{Hdr: hdr(inst, dns.TypeSRV, 0, 120), Port: 7, Target: "h.local."})
	b = packRR(b, &dns.A{Hdr: hdr("h.local.", dns.TypeA, 0, 120), A: net.IPv4(10, 0, 0, 7)})

	var m dns.Msg
	if err := m.Unpack(b); err == nil {
		t.Fatal("test packet is not broken enough: dns.Msg.Unpack accepts it")
	}
	p, err := parsePacket(b)
	if err != nil {
		t.Fatal(err)
	}
	if !p.response || p.qdcount != 1 || p.skipped != 2 || p.trailErr != nil {
		t.Fatalf("response=%v qd=%d skipped=%d trailErr=%v", p.response, p.qdcount, p.skipped, p.trailErr)
	}
	if len(p.records) != 3 {
		t.Fatalf("kept %d records, want 3: %v", len(p.records), p.records)
	}
	ptr, ok1 := p.records[0].rr.(*dns.PTR)
	srv, ok2 := p.records[1].rr.(*dns.SRV)
	a, ok3 := p.records[2].rr.(*dns.A)
	if !ok1 || !ok2 || !ok3 || p.records[2].sec != secAdditional {
		t.Fatalf("records %v", p.records)
	}
	if name, ok := parseInstanceFQDN(ptr.Ptr); !ok || name != "vm (2)" {
		t.Errorf("PTR target %q -> %q %v", ptr.Ptr, name, ok)
	}
	if srv.Port != 7 || a.A.String() != "10.0.0.7" {
		t.Errorf("srv %v a %v", srv, a)
	}
}

func TestParsePacketTruncated(t *testing.T) {
	b := []byte{0, 0, 0x84, 0, 0, 0, 0, 2, 0, 0, 0, 0}
	b = packRR(b, &dns.A{Hdr: hdr("h.local.", dns.TypeA, 0, 120), A: net.IPv4(10, 0, 0, 7)})
	b = append(b, 0xC0) // second record: a compression pointer cut in half
	p, err := parsePacket(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.records) != 1 || p.trailErr == nil {
		t.Fatalf("records %v trailErr %v", p.records, p.trailErr)
	}
	if _, err := parsePacket(b[:5]); err == nil {
		t.Fatal("short header accepted")
	}
}

func TestBrowserUsesLenientPacket(t *testing.T) {
	inst := instanceFQDN("x")
	b := []byte{0, 0, 0x84, 0, 0, 0, 0, 5, 0, 0, 0, 0}
	b = packRR(b, &dns.PTR{Hdr: hdr(serviceFQDN, dns.TypePTR, 0, 120), Ptr: inst})
	b = packRR(b, &dns.SRV{Hdr: hdr(inst, dns.TypeSRV, 0, 120), Port: 9, Target: "h.local."})
	b = rawRR(b, "junk.local.", dns.TypeSRV, []byte{1, 2})
	b = packRR(b, &dns.TXT{Hdr: hdr(inst, dns.TypeTXT, 0, 120), Txt: []string{"v=1", "id=abc"}})
	b = packRR(b, &dns.A{Hdr: hdr("h.local.", dns.TypeA, 0, 120), A: net.IPv4(10, 0, 0, 9)})
	p, _ := parsePacket(b)
	br := &browser{insts: map[string]*instState{}}
	got := br.handle(p)
	if len(got) != 1 || got[0].Instance != "x" || got[0].Port != 9 || got[0].TXT["id"] != "abc" || got[0].Addrs[0].String() != "10.0.0.9" {
		t.Fatalf("got %+v", got)
	}
	if again := br.handle(p); len(again) != 0 {
		t.Fatalf("reported twice: %+v", again)
	}
}
