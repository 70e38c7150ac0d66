package discovery

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/miekg/dns"
)

// section says where in a message a record was found.
type section uint8

const (
	secAnswer section = iota
	secAuthority
	secAdditional
)

// packet is a leniently parsed mDNS message.
type packet struct {
	src      netip.AddrPort
	ifIndex  int // interface it came in on
	id       uint16
	response bool // QR bit
	tc       bool // TC bit: in a query, more known answers follow (RFC 6762 section 7.2)
	opcode   int
	rcode    int
	qdcount  int
	question []dns.Question
	records  []record
	skipped  int   // records that could not be decoded and were skipped
	trailErr error // why parsing stopped early, if it did (records before it are kept)
}

type record struct {
	rr  dns.RR
	sec section
}

// parsePacket decodes an mDNS message leniently. dns.Msg.Unpack rejects a whole message when
// one record is malformed (and hashicorp/mdns then drops the packet); here each record is
// decoded on its own with dns.UnpackRRWithHeader and a record whose RDATA does not decode is
// skipped using its RDLENGTH, keeping every other record. Only a broken header, question or
// record header (where the next record's position becomes unknown) stops parsing; records
// before that point are still returned. An error is returned only if not even the header
// could be read.
func parsePacket(b []byte) (*packet, error) {
	if len(b) < 12 {
		return nil, errors.New("short header")
	}
	flags := binary.BigEndian.Uint16(b[2:])
	p := &packet{
		id:       binary.BigEndian.Uint16(b[0:]),
		response: flags&0x8000 != 0,
		tc:       flags&0x0200 != 0,
		opcode:   int(flags>>11) & 0xF,
		rcode:    int(flags & 0xF),
		qdcount:  int(binary.BigEndian.Uint16(b[4:])),
	}
	counts := [3]int{
		int(binary.BigEndian.Uint16(b[6:])),
		int(binary.BigEndian.Uint16(b[8:])),
		int(binary.BigEndian.Uint16(b[10:])),
	}
	off := 12
	for i := 0; i < p.qdcount; i++ {
		name, next, err := dns.UnpackDomainName(b, off)
		if err != nil || next+4 > len(b) {
			p.trailErr = fmt.Errorf("question %d: bad name or truncated", i)
			return p, nil
		}
		p.question = append(p.question, dns.Question{Name: name,
			Qtype: binary.BigEndian.Uint16(b[next:]), Qclass: binary.BigEndian.Uint16(b[next+2:])})
		off = next + 4
	}
	for sec, n := range counts {
		for i := 0; i < n; i++ {
			if off >= len(b) {
				p.trailErr = fmt.Errorf("truncated: %d records missing", n-i)
				return p, nil
			}
			h, rdOff, err := unpackHeader(b, off)
			if err != nil {
				p.trailErr = err
				return p, nil
			}
			end := rdOff + int(h.Rdlength)
			if end > len(b) {
				p.trailErr = fmt.Errorf("record %s: rdlength past end of packet", h.Name)
				return p, nil
			}
			rr, _, err := dns.UnpackRRWithHeader(h, b[:end], rdOff) // RDATA must not run past end
			if err != nil || rr == nil {
				p.skipped++
			} else {
				p.records = append(p.records, record{rr: rr, sec: section(sec)})
			}
			off = end
		}
	}
	return p, nil
}

// unpackHeader reads an RR's owner name and fixed fields, returning the offset of its RDATA.
func unpackHeader(b []byte, off int) (dns.RR_Header, int, error) {
	name, next, err := dns.UnpackDomainName(b, off)
	if err != nil {
		return dns.RR_Header{}, 0, fmt.Errorf("record name: %w", err)
	}
	if next+10 > len(b) {
		return dns.RR_Header{}, 0, errors.New("record header truncated")
	}
	h := dns.RR_Header{
		Name:     name,
		Rrtype:   binary.BigEndian.Uint16(b[next:]),
		Class:    binary.BigEndian.Uint16(b[next+2:]),
		Ttl:      binary.BigEndian.Uint32(b[next+4:]),
		Rdlength: binary.BigEndian.Uint16(b[next+8:]),
	}
	return h, next + 10, nil
}
