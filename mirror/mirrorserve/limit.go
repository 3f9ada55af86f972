package mirrorserve

import (
	"container/list"
	"math"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// budgets holds each client's hourly budgets: a token bucket
// (golang.org/x/time/rate) per client, part and budget (the index, or one
// domain's downloads) that holds the hourly budget and refills at
// budget/3600 per second. A client may spend its whole budget at once, then
// one request per 3600/budget seconds.
//
// The table is bounded: past max entries the least recently used one is
// forgotten (its client starts afresh), so a flood of new addresses cannot
// grow memory without bound.
type budgets struct {
	max int
	now func() time.Time

	mu    sync.Mutex
	table map[budgetKey]*list.Element
	lru   *list.List // of *budgetEntry, most recent first
}

type budgetKey struct {
	client netip.Prefix // an address; an IPv6 client as its /64
	kind   string
	scope  string // "index" or "download:<domain>"
}

type budgetEntry struct {
	key budgetKey
	lim *rate.Limiter
}

func newBudgets(max int, now func() time.Time) *budgets {
	if max <= 0 {
		max = DefaultMaxClients
	}
	return &budgets{max: max, now: now, table: map[budgetKey]*list.Element{}, lru: list.New()}
}

// clientPrefix is the address a budget counts: the address itself, an IPv6
// client as its /64 (the least a site hands one host).
func clientPrefix(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p
	}
	p, _ := a.Prefix(a.BitLen())
	return p
}

// allow spends one request of the client's budget perHour (0: no limit);
// when the budget is spent it returns false and how long until the next
// request is allowed.
func (b *budgets) allow(client netip.Addr, kind, scope string, perHour int) (bool, time.Duration) {
	if perHour <= 0 {
		return true, 0
	}
	k := budgetKey{client: clientPrefix(client), kind: kind, scope: scope}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	var lim *rate.Limiter
	if el, ok := b.table[k]; ok {
		b.lru.MoveToFront(el)
		lim = el.Value.(*budgetEntry).lim
	} else {
		lim = rate.NewLimiter(rate.Limit(float64(perHour)/3600), perHour)
		b.table[k] = b.lru.PushFront(&budgetEntry{key: k, lim: lim})
		for b.lru.Len() > b.max {
			old := b.lru.Back()
			delete(b.table, old.Value.(*budgetEntry).key)
			b.lru.Remove(old)
		}
	}
	if lim.Burst() != perHour {
		lim.SetBurstAt(now, perHour)
		lim.SetLimitAt(now, rate.Limit(float64(perHour)/3600))
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Hour
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// len is the number of budgets held.
func (b *budgets) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lru.Len()
}

// retryAfter is d in whole seconds, rounded up, at least 1.
func retryAfter(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	return max(s, 1)
}
