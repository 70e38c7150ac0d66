// Package discovery finds lanmsg servers on the local network with mDNS/DNS-SD (RFC 6762,
// RFC 6763), as service type _lanmsg._tcp in domain local. It knows nothing about frames or
// sessions.
//
// # What it promises
//
// Advertise publishes one instance: PTR _lanmsg._tcp.local. -> <instance>._lanmsg._tcp.local.,
// SRV and TXT on the instance, A/AAAA on <host>.local., and the DNS-SD enumeration PTR
// _services._dns-sd._udp.local. -> _lanmsg._tcp.local. (used by avahi-browse -a). TXT always
// carries v=1 (protocol version) and id=<16 hex digits> (random per Advertise, stable for the
// advertisement's life, to tell servers apart), plus the keys the caller passes in
// AdvertiseConfig.TXT.
//
// It runs on every interface that is up and multicast-capable (or those named in
// AdvertiseConfig.Interfaces), over IPv4 (224.0.0.251) and IPv6 (ff02::fb), and re-reads the
// interfaces every second: a new one is probed and announced on, a changed address is
// withdrawn (goodbye) and the new one announced, one that is gone is dropped. An answer on an
// interface carries that interface's addresses (linkAddrs: routable ones, else link-local;
// AdvertiseConfig.Addrs overrides). Advertise returns once probing has succeeded on some
// interface; Service reports the current names; Close sends goodbyes on every interface.
//
// Browse reports each _lanmsg._tcp instance once, as soon as its SRV, TXT and addresses are
// known, from the calling goroutine, until its context ends. Watch goes on reporting changes
// and removals (goodbyes; records that expire while the refresh queries at 80-95% of their
// TTL go unanswered; and, sooner, two multicast questions from other hosts for a server's SRV
// left unanswered for 10 s, the passive observation of failure of section 10.5). Addresses come IPv4 first, routable before link-local, the
// receiving interface's subnets first; link-local IPv6 addresses carry the receiving
// interface as zone.
//
// # The responder
//
// engine (responder.go) is the protocol logic, free of sockets and clocks: packets and the
// time go in, packets to send come out. Advertiser drives it over a pconn; sysConn is the
// real one (an IPv4 socket bound to 224.0.0.251:5353, joined on every interface in use, the
// interface of each packet from IP_PKTINFO; an IPv6 socket per interface bound to
// [ff02::fb%IFACE]:5353). Bound to the group addresses, they never take a unicast answer
// meant for another mDNS process on the host. Where a system cannot bind a group address or
// does not say which interface a packet came in on (Windows), the IPv4 socket binds the
// wildcard and a packet is attributed to the interface whose subnet holds its source. The tests drive the engine on a simulated LAN
// with a virtual clock (sim_test.go), and Advertiser and the browser over memNet, an
// in-memory pconn, so the protocol is tested without root; the namespace labs (netlab) are
// for end-to-end and interop tests.
//
//   - Probing (section 8.1): after 0-250 ms, three probes 250 ms apart asking ANY for the
//     instance and host names, the proposed records in the authority section. An answer
//     that differs is a conflict. A conflict on the host name is an answer whose addresses
//     share none with ours: another machine with the same hostname (a cloned VM), so we use
//     <host>-2.local.; one that shares an address is this machine (avahi-daemon, another
//     lanmsg server) and is fine. Renames are Bonjour style: "vm" -> "vm (2)", logged at warn
//     with who holds the name.
//   - Simultaneous probes (8.2): the lexicographically later proposal wins; the loser waits a
//     second and probes again, and then the winner's answers make it rename.
//   - Conflicts after announcing (9) send every interface back to probing the same names.
//     After 15 conflicts within 10 s, probes are 5 s apart until 10 s pass without one; it
//     never gives up.
//   - Names heal: while renamed, it queries the holder of the wanted name at 80-95% of its
//     records' TTL, and on the holder's goodbye or the records' expiry probes the wanted
//     name; if nobody answers it says goodbye for the stand-in name and announces the wanted
//     one (logged at warn). The host name does not heal.
//   - Answers: QU questions and legacy unicast queries (source port other than 5353; the
//     answer echoes ID and questions, TTL at most 10 s, no cache-flush bit) at once by
//     unicast; QM questions by multicast, after 20-120 ms when the answer holds a shared
//     record (PTR), at once otherwise. Known answers with at least half their TTL left are
//     left out (7.1); a query with TC waits 400-500 ms for the rest of its known answers
//     (7.2); a record is multicast on an interface at most once a second (250 ms in defence
//     against a probe). Announcements: three, one second apart (8.3).
//
// # The browser
//
// Browse sends its queries from an ephemeral port, so that every responder (Avahi,
// python-zeroconf, Bonjour, hashicorp/mdns, ours) answers it directly and at once, re-sent at
// 0, 200 ms, 600 ms, 1.4 s, ... (doubling, at most a minute apart), with follow-up
// SRV/TXT/A/AAAA questions for incomplete instances; it also listens on port 5353 for
// announcements and goodbyes. It decodes record by record (parsePacket), so one malformed
// record costs only itself. It takes an instance's addresses from one packet only,
// preferably the one that carried its SRV, never a union over packets, which could mix two
// machines that share a host name.
//
// # Limits
//
// Against hostile or broken responders, the browser tracks at most 256 instances introduced
// by one source address and 1,024 in all, keeps at most 1,300 bytes of TXT, ignores SRV
// records with port 0 and unspecified, multicast, broadcast and network addresses, sends
// follow-up queries of at most 16 questions and 1,400 bytes no closer than 25 ms apart, and
// asks about an incomplete instance three times (0, 250 ms, 750 ms) before giving it up; an
// announcement can still complete it. Truncated queries waiting for their known answers are
// at most 64 at once. Queries sent by unicast to port 5353 (RFC 6762 section 5.5, rare) are
// not received: the sockets are bound to the group addresses.
package discovery
