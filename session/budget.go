package session

import (
	"sync"
	"sync/atomic"

	"github.com/lanmsg/lanmsg/transport"
)

// DefaultMemoryBudget is the default for Config.MemoryBudget.
const DefaultMemoryBudget = 128 << 20

// budget bounds the memory a server holds on behalf of its peers, across
// all sessions: frames being read, formatted output waiting for the output,
// and chat events queued for (or being written to) participants.
//
// Each session counts what it holds in its own account; the budget counts
// the total. A chat event shared by many participants is counted once in
// the total (it is one buffer) but in full in the account of every
// participant holding it, since each of them keeps it alive: so the peers
// that hold the most are the ones shed first, and memory is never counted
// as free while somebody still holds it.
//
// When the total passes the limit, the budget sheds the sessions that hold
// the most, largest first, until what the others hold fits: each shed
// session is reset and its memory released as it ends.
type budget struct {
	limit int64
	used  atomic.Int64
	shed  atomic.Int64 // sessions shed so far
	adds  atomic.Int64 // additions so far, to notice one made while shedding

	// shedding serialises the search for sessions to shed, so that a burst
	// of allocations does not shed a session per allocation.
	shedding sync.Mutex
	// victims lists the sessions to pick from; set by the server.
	victims func(yield func(*account) bool)

	// draining holds the accounts of sessions shed, or ended, that still
	// hold memory on its way out (a batch being written, an event being
	// sent): it counts as released, so that nobody else is shed for it.
	drainMu  sync.Mutex
	draining map[*account]struct{}
}

// drain lists a shed or ended session's account until what it holds is
// released.
func (b *budget) drain(a *account) {
	if a.held.Load() == 0 {
		return
	}
	b.drainMu.Lock()
	if b.draining == nil {
		b.draining = make(map[*account]struct{})
	}
	b.draining[a] = struct{}{}
	b.drainMu.Unlock()
}

// releasing sums what draining accounts still hold, forgetting those that
// hold nothing any more.
func (b *budget) releasing() int64 {
	b.drainMu.Lock()
	defer b.drainMu.Unlock()
	var n int64
	for a := range b.draining {
		h := a.held.Load()
		if h <= 0 {
			delete(b.draining, a)
		}
		n += max(h, 0)
	}
	return n
}

// frame is an encoded frame (header and payload) that several sessions may
// hold at once without copies: a chat event on its way to every member. It
// is counted in the budget once, until the last holder releases it.
type sharedFrame struct {
	b    []byte
	refs atomic.Int32
	bud  *budget
}

// newFrame encodes payload as a frame with one reference, the caller's.
func (b *budget) newFrame(payload []byte) *sharedFrame {
	f := &sharedFrame{b: transport.AppendFrame(make([]byte, 0, transport.HeaderSize+len(payload)), payload), bud: b}
	f.refs.Store(1)
	b.add(int64(len(f.b)))
	return f
}

func (f *sharedFrame) retain() { f.refs.Add(1) }

func (f *sharedFrame) release() {
	if f.refs.Add(-1) == 0 {
		f.bud.add(-int64(len(f.b)))
	}
}

// account is one session's share of the budget.
type account struct {
	b    *budget
	held atomic.Int64 // everything below
	// state is idle, busy (writing its output: shedding it would free
	// nothing until the write returns) or shed (chosen for shedding, no
	// longer a candidate). Compare-and-swap decides between a session
	// taking its turn at the output and the budget shedding it, so that
	// a shed session never writes afterwards.
	state  atomic.Int32
	onShed func() // resets the session

	// What the session goroutine owns, set only by it.
	reading int64 // the frame reader's buffers
	batch   int64 // formatted output waiting to be written
}

func newBudget(limit int64) *budget { return &budget{limit: limit} }

// add changes the total by n bytes (negative: release) without charging a
// session: the memory of a shared frame, which the sessions that hold it
// charge to their shares with hold. It does not shed: the caller enforces
// the limit once the bytes are attributed.
func (b *budget) add(n int64) {
	b.used.Add(n)
	if n > 0 {
		b.adds.Add(1)
	}
}

// charge changes a's share by n bytes, and the total with it; past the
// limit, it sheds.
func (a *account) charge(n int64) {
	if n == 0 {
		return
	}
	a.held.Add(n)
	a.b.add(n)
	if n > 0 {
		a.b.enforce()
	}
}

// hold charges only a's share: the bytes of a shared frame a keeps alive,
// already in the total once.
func (a *account) hold(n int64) { a.held.Add(n) }

// Account states: acctIdle, a count of batches being written, or acctShed.
const (
	acctIdle int32 = 0
	acctShed int32 = -1
)

// startWrite counts a batch of the account's session being written; false
// if the session was shed.
func (a *account) startWrite() bool {
	for {
		v := a.state.Load()
		if v == acctShed {
			return false
		}
		if a.state.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// endWrite marks that batch written.
func (a *account) endWrite() { a.state.Add(-1) }

// setReading and setBatch record what the session goroutine holds, and only
// it calls them; shared frames are counted apart, through hold.
func (a *account) setReading(n int) { a.charge(int64(n) - a.reading); a.reading = int64(n) }
func (a *account) setBatch(n int)   { a.charge(int64(n) - a.batch); a.batch = int64(n) }

// enforce sheds the sessions holding the most until the total fits the
// limit, not counting what the sessions already shed still hold: that is on
// its way out. One goroutine sheds at a time; one that finds another at it
// leaves it the work, and the one shedding looks again if anything was
// added while it held the lock.
func (b *budget) enforce() {
	for b.used.Load() > b.limit {
		if !b.shedding.TryLock() {
			return
		}
		gen := b.adds.Load()
		b.shedLocked()
		b.shedding.Unlock()
		if b.adds.Load() == gen {
			return
		}
	}
}

func (b *budget) shedLocked() {
	if b.victims == nil {
		return
	}
	for {
		var worst *account
		var most int64
		b.victims(func(a *account) bool {
			if h := a.held.Load(); a.state.Load() == acctIdle && h > most {
				worst, most = a, h
			}
			return true
		})
		if b.used.Load()-b.releasing() <= b.limit || worst == nil {
			return
		}
		if !worst.state.CompareAndSwap(acctIdle, acctShed) {
			continue // it just started writing its output: look again
		}
		b.shed.Add(1)
		b.drain(worst)
		worst.onShed()
	}
}

// BudgetStats reports the server's memory budget.
type BudgetStats struct {
	Limit int64 `json:"limit"` // bytes
	Used  int64 `json:"used"`  // bytes held on behalf of peers now
	Shed  int64 `json:"shed"`  // sessions reset because the budget ran out, since start
}
