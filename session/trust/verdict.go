package trust

import "github.com/lanmsg/lanmsg/session/names"

// Verdict is what the pins say about one server seen with a name (or at an
// address) and a key. The rules, also in PROTOCOL.md:
//
//   - New: neither the name nor the key is pinned. First contact: show the
//     fingerprint and short code, pin it (KnownServers.Add), go on.
//   - Pinned: the name is pinned to this key. Go on.
//   - Renamed: the name is not pinned, but the key is, under other names:
//     a known server answering under a new name ("kitchen (2)" after
//     someone took "kitchen"). Go on; Judgement.KeyPins says which names.
//   - Conflict: the name is pinned to another key (one of them, if several).
//     An impostor, or the server was reinstalled with a new key: never send
//     to it. Only the person can tell, and `lanmsg forget NAME` accepts the
//     new key on the next contact.
type Verdict int

const (
	New Verdict = iota
	Pinned
	Renamed
	Conflict
)

func (v Verdict) String() string {
	switch v {
	case New:
		return "new"
	case Pinned:
		return "pinned"
	case Renamed:
		return "renamed"
	case Conflict:
		return "conflict"
	}
	return "unknown"
}

// Judgement is a Verdict with the pins it rests on.
type Judgement struct {
	Verdict Verdict
	// NamePins are the pins for the name (or address) judged; for a
	// Conflict, the keys expected instead.
	NamePins []Pin
	// KeyPins are the pins of the key judged, under any name or address.
	KeyPins []Pin
}

// Judge judges a server seen under name with key fp.
func (k *KnownServers) Judge(name string, fp Fingerprint) Judgement {
	return judge(k.ByName(name), k.ByFingerprint(fp), fp)
}

// JudgeAddr judges a server reached at addr (HOST:PORT, `send --server`)
// with key fp, by the pins for that address.
func (k *KnownServers) JudgeAddr(addr string, fp Fingerprint) Judgement {
	return judge(k.ByAddr(addr), k.ByFingerprint(fp), fp)
}

func judge(namePins, keyPins []Pin, fp Fingerprint) Judgement {
	j := Judgement{NamePins: namePins, KeyPins: keyPins}
	switch {
	case len(namePins) == 0 && len(keyPins) == 0:
		j.Verdict = New
	case len(namePins) == 0:
		j.Verdict = Renamed
	case hasKey(namePins, fp):
		j.Verdict = Pinned
	default:
		j.Verdict = Conflict
	}
	return j
}

func hasKey(pins []Pin, fp Fingerprint) bool {
	for _, p := range pins {
		if p.Fingerprint == fp {
			return true
		}
	}
	return false
}

// Answer is one server seen on the LAN: the name it advertises and the
// fingerprint it advertises (TXT fp). The advertised fingerprint is only a
// claim until a TLS handshake checked with Expect(fp) proves it.
type Answer struct {
	Name        string
	Fingerprint Fingerprint
}

// Action is what Resolve tells the client to do.
type Action int

const (
	// Wait: nothing decisive yet; look on until the browse timeout.
	Wait Action = iota
	// Use Answers[Resolution.Use], verifying its key with Expect; if
	// Resolution.Pin is set, pin it under the name asked for once the
	// handshake has proved the key (first contact, or a known key under
	// a name not pinned yet).
	Use
	// Refuse: the name is pinned to a key that did not answer, and another
	// key answers as the name. A hard failure with its own exit code.
	Refuse
	// Ambiguous: the name is not pinned and answers with different keys
	// claim it. Nothing tells which is the real one: a failure that asks
	// the person to check the fingerprints and pin one.
	Ambiguous
	// NotFound: at the timeout, nothing answered as the name or with its
	// pinned key.
	NotFound
)

func (a Action) String() string {
	return [...]string{"wait", "use", "refuse", "ambiguous", "not found"}[a]
}

// Resolution is Resolve's decision.
type Resolution struct {
	Action Action
	Use    int  // the index in answers to use, for Action Use
	Pin    bool // pin answers[Use] under the name asked for after the handshake
	// Impostors are the indices of answers that advertise the name (or a
	// look-alike) with a key other than the pinned one: warn about each.
	Impostors []int
	// Judgement: for Use, the judgement of the answer used (New on first
	// contact, Pinned, or Renamed when the pinned key answers under
	// another name); for Refuse, Conflict. NamePins always holds the pins
	// for the name asked for.
	Judgement Judgement
}

// Resolve decides which of the answers seen so far `send --to NAME` should
// use. final is true once the browse timeout has passed. The rules, also in
// PROTOCOL.md:
//
//  1. NAME is pinned: the client uses only an answer that carries a pinned
//     key, under NAME or under any other name (the pinned server renamed
//     because someone took its name). It prefers one under NAME. Answers
//     that carry NAME, or a look-alike, with another key are impostors. With
//     no pinned key among the answers: Wait until final, then Refuse if an
//     impostor holds the name, else NotFound.
//  2. NAME is not pinned: the first answer under NAME is used and pinned
//     (first contact; or a known key under a new name, then Renamed).
//     Answers under NAME with two different keys are Ambiguous.
//  3. Nothing under NAME: Wait, then NotFound.
func (k *KnownServers) Resolve(name string, answers []Answer, final bool) Resolution {
	pins := k.ByName(name)
	r := Resolution{Use: -1, Judgement: Judgement{NamePins: pins}}
	n, err := names.Instance(name)
	if err != nil {
		n = name
	}
	named := func(a Answer) bool {
		an, err := names.Instance(a.Name)
		return err == nil && names.Confusable(an, n)
	}
	if len(pins) > 0 {
		for i, a := range answers {
			switch {
			case hasKey(pins, a.Fingerprint):
				if r.Use < 0 || (named(a) && !named(answers[r.Use])) {
					r.Use = i
				}
			case named(a):
				r.Impostors = append(r.Impostors, i)
			}
		}
		switch {
		case r.Use >= 0:
			r.Action = Use
			r.Judgement.Verdict = Renamed
			if named(answers[r.Use]) {
				r.Judgement.Verdict = Pinned
			}
			r.Judgement.KeyPins = k.ByFingerprint(answers[r.Use].Fingerprint)
		case !final:
			r.Action = Wait
		case len(r.Impostors) > 0:
			r.Action = Refuse
			r.Judgement.Verdict = Conflict
		default:
			r.Action = NotFound
		}
		return r
	}
	for i, a := range answers {
		if !named(a) {
			continue
		}
		if r.Use < 0 {
			r.Use = i
		} else if a.Fingerprint != answers[r.Use].Fingerprint {
			return Resolution{Action: Ambiguous, Use: -1, Judgement: r.Judgement, Impostors: []int{r.Use, i}}
		}
	}
	switch {
	case r.Use >= 0:
		r.Action, r.Pin = Use, true
		r.Judgement = judge(pins, k.ByFingerprint(answers[r.Use].Fingerprint), answers[r.Use].Fingerprint)
	case final:
		r.Action = NotFound
	}
	return r
}
