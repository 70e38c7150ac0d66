package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/lanmsg/lanmsg/discovery"
	"github.com/lanmsg/lanmsg/session"
	"github.com/lanmsg/lanmsg/session/names"
	"github.com/lanmsg/lanmsg/session/trust"
)

// plainOnly makes send and chat skip TLS. Only the tests' lanmsg sets it
// (TestMain, LANMSG_TEST_PLAIN_CLIENT=1): the plain baseline of
// BenchmarkOneShotSend, measured with the same binary.
var plainOnly bool

// exitIdentity: the server's key conflicts with the pinned one, or could
// not be established as required; nothing was sent.
const exitIdentity = 5

// trustFlags are the TLS and pinning choices of send and chat.
type trustFlags struct {
	RequireTLS bool `name:"require-tls" help:"Never send in clear: refuse a server that does not speak TLS (the tutorial's server, an older lanmsg) instead of falling back."`

	ct *clientTrust // loaded by loadTrust
}

// clientTrust is the user's key and pins, for one command.
type clientTrust struct {
	id      *trust.Identity
	cert    tls.Certificate
	known   *trust.KnownServers
	stderr  io.Writer
	require bool
}

// loadTrust loads the user's key (making it on first use) and pins.
func (f *trustFlags) loadTrust(dir configDir, stderr io.Writer) error {
	id, err := dir.identity()
	if err != nil {
		return err
	}
	cert, err := id.Certificate()
	if err != nil {
		return &cliError{code: exitFailure, err: err}
	}
	known, err := trust.KnownServersIn(id.Dir)
	if err != nil {
		return trustError(err)
	}
	f.ct = &clientTrust{id: id, cert: cert, known: known, stderr: stderr, require: f.RequireTLS}
	return nil
}

// trustedTarget is targetFlags.target with the pins: --to NAME is resolved
// by the pinning rules (PROTOCOL.md, "Pinning rules"); a server found or
// picked on the LAN is judged by its name and advertised key.
func (f *trustFlags) trustedTarget(ctx context.Context, tf *targetFlags, log *zerolog.Logger, l lan, question string) (target, error) {
	if tf.Server == "" && tf.To != "" && !looksLikeHostPort(tf.To) {
		ifi, err := tf.iface()
		if err != nil {
			return target{}, err
		}
		cfg := browseConfig(log, ifi)
		var find func(skip map[string]bool) (target, error)
		find = func(skip map[string]bool) (target, error) {
			t, err := f.ct.findPinned(ctx, l, cfg, tf.To, tf.BrowseTimeout, skip)
			t.again = find
			return t, err
		}
		return find(nil)
	}
	var (
		t   target
		err error
	)
	if tf.Server == "" && tf.To == "" {
		// The only server, or one picked from the list, marked.
		ifi, ierr := tf.iface()
		if ierr != nil {
			return target{}, ierr
		}
		log.Debug().Dur("timeout", tf.BrowseTimeout).Msg("looking for servers on the LAN")
		t, err = chooseOnLAN(ctx, l, browseConfig(log, ifi), tf.BrowseTimeout,
			picker{question: question, openTTY: openControllingTTY, mark: f.ct.mark})
	} else {
		t, err = tf.target(ctx, log, l, question)
	}
	if err != nil {
		return t, err
	}
	if isAddrTarget(t) {
		return t, nil
	}
	fp, ok := advertisedKey(t)
	if !ok {
		return t, nil
	}
	j := f.ct.known.Judge(t.name, fp)
	switch j.Verdict {
	case trust.Conflict:
		return target{}, f.ct.conflictError(t.name, t.endpoints, fp, j.NamePins)
	case trust.New, trust.Renamed:
		t.pinKey = t.name
	}
	return t, nil
}

// mark is the picker's note for s among list: a server not pinned whose name
// (or a look-alike) another server in the list claims with another key is
// a conflict too.
func (ct *clientTrust) mark(list []discovery.Service, s discovery.Service) string {
	return withClaims(pinState(ct.known, s), list, s).mark()
}

// trustState is what the pins make of a server found on the LAN: browse
// and the picker show it as a mark, browse --json as the field "trust"
// (README, "lanmsg browse").
type trustState string

const (
	statePinned       trustState = "pinned"         // the key pinned for its name
	stateRenamed      trustState = "pinned-renamed" // a pinned key, under another name
	stateNew          trustState = "new"            // a key never used
	stateKeyConflict  trustState = "conflict-key"   // not the key pinned for its name
	stateNameConflict trustState = "conflict-name"  // not pinned, and another key claims its name
	statePlain        trustState = "plain"          // advertises no key
)

// mark is how browse's text and the picker show the state.
func (s trustState) mark() string {
	switch s {
	case statePinned:
		return "[pinned]"
	case stateRenamed:
		return "[pinned, under another name]"
	case stateKeyConflict:
		return "[CONFLICT: not the pinned key]"
	case stateNameConflict:
		return conflictMark
	case statePlain:
		return "[no key: plain]"
	}
	return "[new]"
}

// conflictMark marks a server whose name another key claims.
const conflictMark = "[CONFLICT: another key claims this name]"

// withClaims turns the state st of a server not pinned (new, no key) into a
// conflict when another server in list claims its name with another key.
func withClaims(st trustState, list []discovery.Service, s discovery.Service) trustState {
	if (st == stateNew || st == statePlain) && claimedByOther(list, s) {
		return stateNameConflict
	}
	return st
}

// claimedByOther reports whether a server in list other than s advertises
// s's name, or a look-alike, with a different key.
func claimedByOther(list []discovery.Service, s discovery.Service) bool {
	fp, _ := advertisedKey(serviceTarget(s))
	n, err := names.Instance(s.Instance)
	if err != nil {
		n = s.Instance
	}
	for _, o := range list {
		ofp, _ := advertisedKey(serviceTarget(o))
		if ofp == fp {
			continue
		}
		on, err := names.Instance(o.Instance)
		if err != nil {
			on = o.Instance
		}
		if names.Confusable(on, n) {
			return true
		}
	}
	return false
}

// pinState says what the pins known make of a server found on the LAN, for
// the picker and browse.
func pinState(known *trust.KnownServers, s discovery.Service) trustState {
	fp, ok := advertisedKey(serviceTarget(s))
	if !ok {
		return statePlain
	}
	switch known.Judge(s.Instance, fp).Verdict {
	case trust.Pinned:
		return statePinned
	case trust.Renamed:
		return stateRenamed
	case trust.Conflict:
		return stateKeyConflict
	}
	return stateNew
}

// isAddrTarget reports whether t is --server HOST:PORT (not found on the LAN).
func isAddrTarget(t target) bool { return !t.found }

// advertisedKey is the key a server found on the LAN advertises in TXT fp.
func advertisedKey(t target) (trust.Fingerprint, bool) {
	s, ok := t.txt[fpTXT]
	if !ok {
		return trust.Fingerprint{}, false
	}
	fp, err := trust.ParseFingerprint(s)
	return fp, err == nil
}

// findPinned browses for --to NAME and decides with trust.Resolve as the
// answers come: at once when the decision is clear, else at the timeout.
// First contact waits firstContactSettle after the first answer.
func (ct *clientTrust) findPinned(ctx context.Context, l lan, cfg discovery.BrowseConfig, name string, timeout time.Duration, skip map[string]bool) (target, error) {
	bctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var (
		svcs    []discovery.Service
		answers []trust.Answer
		res     trust.Resolution
		decided bool
		settle  *time.Timer
	)
	err := l.Browse(bctx, cfg, func(s discovery.Service) {
		if decided || skip[endpointsKey(serviceTarget(s))] {
			return
		}
		fp, _ := advertisedKey(serviceTarget(s)) // zero: no key advertised
		svcs = append(svcs, s)
		answers = append(answers, trust.Answer{Name: s.Instance, Fingerprint: fp})
		res = ct.known.Resolve(name, answers, false)
		// First contact waits a little for other answers to the same
		// query, so that two keys claiming the name are caught, not a
		// race won.
		if res.Action == trust.Use && res.Judgement.Verdict == trust.New {
			if settle == nil {
				settle = time.AfterFunc(firstContactSettle, cancel)
			}
			return
		}
		if res.Action != trust.Wait {
			decided = true
			cancel()
		}
	})
	if !decided {
		if err != nil {
			return target{}, browseError(err)
		}
		if err := ctx.Err(); err != nil {
			return target{}, err
		}
		res = ct.known.Resolve(name, answers, true)
	}
	switch res.Action {
	case trust.Use:
		for _, i := range res.Impostors {
			ct.warnImpostor(name, svcs[i], answers[i].Fingerprint)
		}
		t := serviceTarget(svcs[res.Use])
		if res.Pin && !answers[res.Use].Fingerprint.IsZero() {
			t.pinKey = name
		}
		// Other answers with a pinned key, in case this one proves
		// another key than it advertises.
		for i, a := range answers {
			if i != res.Use && pinnedKey(res.Judgement.NamePins, a.Fingerprint) {
				t.alts = append(t.alts, serviceTarget(svcs[i]))
			}
		}
		if res.Judgement.Verdict == trust.Renamed && len(res.Judgement.NamePins) > 0 {
			_, _ = fmt.Fprintf(ct.stderr, "lanmsg: %q now answers as %q, with the key pinned for it\n", name, svcs[res.Use].Instance)
		}
		return t, nil
	case trust.Refuse:
		i := res.Impostors[0]
		return target{}, ct.conflictError(name, svcs[i].Endpoints(), answers[i].Fingerprint, res.Judgement.NamePins)
	case trust.Ambiguous:
		var keys []string
		for _, i := range res.Impostors {
			keys = append(keys, fmt.Sprintf("%s at %s", answers[i].Fingerprint, strings.Join(svcs[i].Endpoints(), ", ")))
		}
		return target{}, &cliError{code: exitIdentity,
			err: fmt.Errorf("servers with different keys answer as %q (%s), and none is pinned: nothing was sent", name, strings.Join(keys, "; ")),
			hint: fmt.Sprintf("ask the owner of the real %q for its key ('lanmsg id' on it), add the line '%s SHA256:...' with it to %s, and send again",
				name, name, ct.known.Path())}
	}
	var others []string
	for _, s := range svcs {
		others = append(others, s.Instance)
	}
	ce := &cliError{code: exitUnreachable, err: fmt.Errorf("no lanmsg server named %q answered within %v", name, timeout), hint: browseHint}
	if len(others) > 0 {
		ce.hint = "servers found: " + quoteList(others) + "; run 'lanmsg browse' to list them"
	}
	return target{}, ce
}

// firstContactSettle is how long first contact with a name waits, after the
// first answer, for others: mDNS responders answer a query within 120 ms
// (RFC 6762, section 6), so another key claiming the name in answer to the
// same query arrives within it.
const firstContactSettle = 250 * time.Millisecond

// warnImpostor tells the person that a server answers as name with a key
// other than the pinned one, and is not used.
func (ct *clientTrust) warnImpostor(name string, s discovery.Service, fp trust.Fingerprint) {
	key := "no key"
	if !fp.IsZero() {
		key = "the key " + fp.String()
	}
	_, _ = fmt.Fprintf(ct.stderr, "lanmsg: warning: %q at %s advertises %s, not the one pinned for %q: an impostor holds the name (or the server was reinstalled); not using it\n",
		esc(s.Instance), strings.Join(s.Endpoints(), ", "), key, name)
}

// conflictError is the refusal of a server whose key is not the one pinned
// for its name or address.
func (ct *clientTrust) conflictError(name string, addrs []string, got trust.Fingerprint, pins []trust.Pin) error {
	want := make([]string, len(pins))
	for i, p := range pins {
		want[i] = p.Fingerprint.String()
	}
	gotS := "no key"
	if !got.IsZero() {
		gotS = fmt.Sprintf("the key %s (code %s)", got, got.ShortCode())
	}
	return &cliError{code: exitIdentity,
		err: fmt.Errorf("%q (at %s) answers with %s, but %q is pinned to %s: an impostor may hold the name, or the server was reinstalled; nothing was sent",
			name, strings.Join(addrs, ", "), gotS, name, strings.Join(want, ", ")),
		hint: fmt.Sprintf("if %s was reinstalled, check its new key with its owner ('lanmsg id' on it prints the key and code), then run 'lanmsg forget %s' and send again",
			name, shellQuote(name))}
}

// tlsProbe is how long `send --server` waits for a server's first byte of
// TLS before it takes it for one that does not speak TLS (a lanmsg server
// answers a ClientHello within a round trip; the tutorial's server closes,
// or waits for more, in silence).
const tlsProbe = time.Second

// pinConflict is the handshake's refusal of a key that conflicts with the
// pin for an address.
type pinConflict struct {
	got  trust.Fingerprint
	pins []trust.Pin
}

func (e *pinConflict) Error() string { return "the server's key is not the pinned one" }

// dial connects to t over TLS when it advertises a key, or, for --server
// HOST:PORT, tries TLS first and falls back to the plain protocol only when
// the server does not speak TLS, the address has no pin and --require-tls
// is off. It pins a key met for the first time once the handshake proved
// it, and says so on stderr.
func (ct *clientTrust) dial(ctx context.Context, t target, cfg session.ClientConfig, log *zerolog.Logger) (*session.Client, string, error) {
	if plainOnly {
		return dialFirst(ctx, t, cfg, log)
	}
	if isAddrTarget(t) {
		return ct.dialAddr(ctx, t, cfg, log)
	}
	if _, ok := advertisedKey(t); !ok {
		if ct.require {
			return nil, "", &cliError{code: exitIdentity, err: fmt.Errorf("%q advertises no key, so it cannot be reached over TLS, and --require-tls is set: nothing was sent", t.name),
				hint: "it is the tutorial's server or an older lanmsg; leave out --require-tls to send to it in clear"}
		}
		return dialFirst(ctx, t, cfg, log)
	}
	withReceipts(&cfg)
	var mismatch error
	skip := map[string]bool{}
	cands := append([]target{t}, t.alts...)
	for round := 0; ; round++ {
		cl, addr, fp, err := ct.dialCandidates(ctx, cands, cfg, log, skip, &mismatch)
		if err != nil || cl != nil {
			if cl != nil && t.pinKey != "" {
				ct.pin(t.pinKey, addr, fp, log)
			}
			return cl, addr, err
		}
		// Every answer seen proved a key it does not advertise: look
		// again without them, a few times at most.
		if t.again == nil || round >= maxImpostorRounds {
			return nil, "", mismatch
		}
		next, err := t.again(skip)
		var ce *cliError
		if errors.As(err, &ce) && ce.code == exitUnreachable {
			return nil, "", mismatch // only impostors answered
		}
		if err != nil {
			return nil, "", err
		}
		t = next
		cands = append([]target{t}, t.alts...)
	}
}

// maxImpostorRounds bounds how many times send --to NAME looks again after
// every answer it tried proved a key it does not advertise.
const maxImpostorRounds = 4

// endpointsKey identifies an answer by its addresses.
func endpointsKey(t target) string { return strings.Join(t.endpoints, ",") }

// dialCandidates tries each candidate over TLS with its advertised key. An
// answer that proves another key is warned about, added to skip and
// recorded in mismatch; the first that connects is returned with its key.
// It returns no client and no error when every candidate was an impostor.
func (ct *clientTrust) dialCandidates(ctx context.Context, cands []target, cfg session.ClientConfig, log *zerolog.Logger, skip map[string]bool, mismatch *error) (*session.Client, string, trust.Fingerprint, error) {
	for _, c := range cands {
		fp, ok := advertisedKey(c)
		if !ok {
			continue
		}
		cfg.TLS = trust.ClientConfig(&ct.cert, trust.Expect(fp))
		cl, addr, err := dialFirst(ctx, c, cfg, log)
		var km *trust.KeyMismatchError
		if errors.As(err, &km) {
			// An impostor: it advertises a key it does not hold.
			_, _ = fmt.Fprintf(ct.stderr, "lanmsg: warning: %q at %s advertises the key %s but proved %s: an impostor; nothing sent to it\n",
				esc(c.name), strings.Join(c.endpoints, ", "), km.Want, km.Got)
			skip[endpointsKey(c)] = true
			*mismatch = &cliError{code: exitIdentity,
				err:  fmt.Errorf("%q advertises the key %s but the server at %s proved %s: nothing was sent", c.name, km.Want, strings.Join(c.endpoints, ", "), km.Got),
				hint: "someone else answers at that address, or the advertisement is forged; check the server with its owner ('lanmsg id' on it)"}
			continue
		}
		if err != nil {
			return nil, "", fp, err
		}
		return cl, addr, fp, nil
	}
	return nil, "", trust.Fingerprint{}, nil
}

// pinnedKey reports whether fp is one of the pins' keys.
func pinnedKey(pins []trust.Pin, fp trust.Fingerprint) bool {
	for _, p := range pins {
		if p.Fingerprint == fp {
			return true
		}
	}
	return false
}

// dialAddr is dial for --server HOST:PORT, judged by the pins for the
// address.
func (ct *clientTrust) dialAddr(ctx context.Context, t target, cfg session.ClientConfig, log *zerolog.Logger) (*session.Client, string, error) {
	addr := t.endpoints[0]
	var (
		seen    trust.Fingerprint
		verdict trust.Verdict
	)
	tcfg := cfg
	withReceipts(&tcfg)
	tcfg.TLSProbe = tlsProbe
	tcfg.TLS = trust.ClientConfig(&ct.cert, func(fp trust.Fingerprint) error {
		j := ct.known.JudgeAddr(addr, fp)
		seen, verdict = fp, j.Verdict
		if j.Verdict == trust.Conflict {
			return &pinConflict{got: fp, pins: j.NamePins}
		}
		return nil
	})
	cl, err := session.Dial(ctx, addr, tcfg)
	if err == nil {
		if verdict != trust.Pinned {
			ct.pin(addr, addr, seen, log)
		}
		return cl, addr, nil
	}
	var pc *pinConflict
	if errors.As(err, &pc) {
		return nil, "", ct.conflictError(addr, []string{addr}, pc.got, pc.pins)
	}
	if !errors.Is(err, session.ErrNoTLS) {
		return nil, "", dialError(addr, err)
	}
	if pins := ct.known.ByAddr(addr); len(pins) > 0 {
		return nil, "", ct.conflictError(addr, []string{addr}, trust.Fingerprint{}, pins)
	}
	if ct.require {
		return nil, "", &cliError{code: exitIdentity, err: fmt.Errorf("%s does not speak TLS, and --require-tls is set: nothing was sent", addr),
			hint: "it is the tutorial's server or an older lanmsg; leave out --require-tls to send to it in clear"}
	}
	log.Info().Str(session.FieldAddr, addr).Msg("the server does not speak TLS (the tutorial's server, or an older lanmsg): sending in clear")
	return dialFirst(ctx, t, cfg, log)
}

// pin records fp for key (a name or HOST:PORT) and, on first contact, shows
// the key on stderr. A pin that cannot be written is reported, not fatal:
// the key was checked for this session.
func (ct *clientTrust) pin(key, addr string, fp trust.Fingerprint, log *zerolog.Logger) {
	j := ct.known.Judge(key, fp)
	if trust.IsAddr(key) {
		j = ct.known.JudgeAddr(key, fp)
	}
	if _, err := ct.known.Add(key, fp); err != nil {
		log.Warn().Err(err).Str("file", ct.known.Path()).Msg("could not pin the server's key; it will count as new next time")
		return
	}
	if j.Verdict == trust.New {
		_, _ = fmt.Fprintf(ct.stderr, "lanmsg: first contact with %q at %s: its key is %s, code %s; pinned in %s (compare the code with 'lanmsg id' on that server)\n",
			key, addr, fp, fp.ShortCode(), ct.known.Path())
		return
	}
	log.Info().Str(session.FieldServer, key).Str(session.FieldKey, fp.String()).Msg("a known key under a new name or address: pinned under it too")
}

// withReceipts opens the two-way extension, which every server that speaks
// TLS has, for receipts: a send then learns at once, not at its end, when
// the server refuses it (serve --allow), and how much was delivered.
func withReceipts(cfg *session.ClientConfig) {
	if cfg.Hello == nil {
		cfg.Hello = &session.Hello{}
	}
}

// shellQuote quotes s for a shell command line when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:[]") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// browsePins reads the pins for browse's marks; without them (no config
// dir, a file that cannot be read) browse lists servers unmarked, and says
// why in the log.
func browsePins(dir configDir, log *zerolog.Logger) *trust.KnownServers {
	p, err := dir.path()
	if err != nil {
		return nil
	}
	known, err := trust.KnownServersIn(p)
	if err != nil {
		log.Warn().Err(err).Msg("cannot read the pinned keys; servers are listed without pinned/new marks")
		return nil
	}
	return known
}

// browseState is what browse says of s: what the pins make of it, or a
// conflict when a server listed before it claims its name (or a look-alike)
// with another key; "" without pins.
func browseState(known *trust.KnownServers, seen []discovery.Service, s discovery.Service) trustState {
	if known == nil {
		return ""
	}
	return withClaims(pinState(known, s), seen, s)
}
