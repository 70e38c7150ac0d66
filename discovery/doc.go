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
// advertisement's life, to tell servers apart), plus the caller's keys. Before answering it
// probes the instance name and the host name (three queries 250 ms apart, RFC 6762 section 8)
// and renames on conflict, Bonjour style: "vm" -> "vm (2)" -> "vm (3)", and for the host
// "vm.local." -> "vm-2.local.". It then answers queries, announces three times one second
// apart, and Close withdraws the instance with a goodbye (TTL 0) after it stops answering.
//
// Browse reports each _lanmsg._tcp instance once, as soon as its SRV, TXT and addresses are
// known, from the calling goroutine, until its context ends.
//
// # Machines that share a hostname
//
// Cloned VMs, containers and Raspberry Pis often share a hostname, so two servers would both
// claim <hostname>.local. with different addresses and a browser could mix them. Two measures
// keep every server listed and reachable:
//
//   - The advertiser probes its host name too. An answer whose addresses share none with ours
//     comes from another machine, so we advertise <hostname>-2.local. (-3, ...) instead; an
//     answer that shares an address is this machine (avahi-daemon, another lanmsg server) and
//     is fine. The default instance name is the hostname, so it is renamed "name (2)" as well.
//   - The browser takes an instance's addresses from one packet only, preferably the one that
//     carried its SRV record (our responder always sends them together), never a union over
//     packets; it asks for A/AAAA only when that packet had none.
//
// # Addresses
//
// DefaultAddrs chooses what to advertise (the address the hostname resolves to, unless that is
// loopback or not local, else the LAN interfaces' addresses) and says why. Loopback is never
// advertised except in a namespace whose only multicast interface is loopback, where every
// peer is on the same host. Browse drops loopback addresses received from another host, and
// IPv6 link-local ones (they would need a zone).
//
// # Why hashicorp/mdns is used only for answering
//
// github.com/hashicorp/mdns v1.0.7 answers queries from a Zone, and Advertise uses its Server
// that way (with our own Zone, and its *log.Logger bridged to zerolog at debug level). Reading
// its code shows what it lacks, which this package builds on github.com/miekg/dns instead:
//
//   - Its client sends a single PTR query (plus, for an incomplete entry, a PTR query for the
//     instance name, which does not ask for the missing SRV/TXT/A), listens for a fixed
//     timeout, has no continuous browsing, and drops results when its channel is full.
//   - Client and server decode with dns.Msg.Unpack, which rejects the whole packet when one
//     record is malformed; parsePacket decodes record by record and skips only the bad one.
//   - Its server never probes (a TODO in NewMDNSService), never announces and sends no
//     goodbyes; it also answers every question, even without the unicast-response bit, by
//     unicast to the querier (sendResponse has a TODO), ignores queries with the TC bit, and
//     listens on one interface (the given one or the system default).
//
// Browse therefore sends its own queries from an ephemeral port (so that every responder,
// hashicorp-based ones included, answers it directly), re-sent at 0, 200 ms, 600 ms, 1.4 s,
// ... (doubling, at most a minute apart), with follow-up SRV/TXT/A/AAAA questions for
// incomplete instances, and also listens on 224.0.0.251:5353 (SO_REUSEADDR/SO_REUSEPORT, so
// it coexists with avahi-daemon and a server in the same namespace) for announcements.
//
// # Limits
//
// IPv4 transport only (AAAA records are still published and read). No simultaneous-probe
// tie-break and no conflict detection after announcing: two servers started within the same
// ~750 ms with the same name may both keep it. Known-answer suppression is not implemented.
// Against hostile or broken responders, Browse tracks at most 256 instances,
// sends follow-up queries of at most 16 questions and 1,400 bytes no closer
// than 25 ms apart, and asks about an incomplete instance three times (0,
// 250 ms, 750 ms) before giving it up; an announcement can still complete it.
// On a multi-homed machine without AdvertiseConfig.Interface, the responder listens on the
// system's default multicast interface (hashicorp/mdns binds one).
package discovery
