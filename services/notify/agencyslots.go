package notify

import (
	"sync"

	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/store"
)

// agencyKey names an agency as a notification does.
type agencyKey struct{ partnership, agency string }

func keyOf(n store.Notification) agencyKey { return agencyKey{n.Partnership, n.Agency} }

// agencySlots keeps each agency's concurrency limit and counts the notifications this
// process has claimed for it and not yet finished sending, so that a claim takes no more of
// an agency's notifications than claimAhead rounds of its slots. Without that, an agency that
// stopped answering could have its notifications hold every sending slot, each waiting its
// turn for the agency while its lease ran: the other agencies would wait behind it, and what
// was still waiting when the lease ran out would be claimed and sent again.
type agencySlots struct {
	mu sync.Mutex
	// limits is each agency's concurrency, as last read from the directory.
	limits map[agencyKey]int
	// sem holds a slot per attempt in flight; its capacity is the agency's concurrency.
	sem map[agencyKey]chan struct{}
	// pending counts claimed notifications whose attempt has not ended.
	pending map[agencyKey]int
	// full marks agencies the last claim took all it could of: the first of their attempts
	// to end wakes the worker, as their due notifications may have been left unclaimed.
	full map[agencyKey]bool
}

// slot is the agency's concurrency limit, held while an attempt is in flight. A changed
// limit takes a new semaphore; attempts holding the old one release into it.
func (a *agencySlots) slot(n store.Notification, concurrency int) chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := keyOf(n)
	a.setLimit(k, concurrency)
	sem, ok := a.sem[k]
	if !ok || cap(sem) != max(1, concurrency) {
		sem = make(chan struct{}, max(1, concurrency))
		if a.sem == nil {
			a.sem = map[agencyKey]chan struct{}{}
		}
		a.sem[k] = sem
	}
	return sem
}

// claimAhead is how many rounds of an agency's slots a claim may take: the round in flight
// and the next, so a freed slot starts its next attempt at once rather than after a claim's
// round trip. A notification waits at most one send for its slot and then sends, which is
// what the lease allows (leaseFor: two send timeouts and a margin).
const claimAhead = 2

// learn records the concurrency of a partnership's agencies as its directory is read, so the
// first claim of an agency's notifications already knows how many it may take.
func (a *agencySlots) learn(partnership string, agencies []directory.Agency) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ag := range agencies {
		a.setLimit(agencyKey{partnership, ag.ID}, ag.Concurrency)
	}
}

func (a *agencySlots) setLimit(k agencyKey, concurrency int) {
	if a.limits == nil {
		a.limits = map[agencyKey]int{}
	}
	a.limits[k] = max(1, concurrency)
}

// limit is the agency's concurrency, or the directory's default for an agency not yet read.
func (a *agencySlots) limit(k agencyKey) int {
	if l, ok := a.limits[k]; ok {
		return l
	}
	return directory.DefaultConcurrency
}

// defaultAllowance is what a claim may take of an agency whose directory entry this process
// has not read.
const defaultAllowance = claimAhead * directory.DefaultConcurrency

// allowances is what the next claim may take of each agency this process knows; agencies
// not listed may have defaultAllowance.
func (a *agencySlots) allowances() []store.Allowance {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]store.Allowance, 0, len(a.limits)+len(a.pending))
	for k, l := range a.limits {
		out = append(out, store.Allowance{Partnership: k.partnership, Agency: k.agency, Free: claimAhead*l - a.pending[k]})
	}
	for k, p := range a.pending {
		if _, ok := a.limits[k]; !ok {
			out = append(out, store.Allowance{Partnership: k.partnership, Agency: k.agency, Free: defaultAllowance - p})
		}
	}
	return out
}

// claimed counts a claim's notifications against their agencies, and marks full the agencies
// it took all their allowance of (or that had none).
func (a *agencySlots) claimed(ns []store.Notification, allowed []store.Allowance) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending == nil {
		a.pending, a.full = map[agencyKey]int{}, map[agencyKey]bool{}
	}
	took := map[agencyKey]int{}
	for _, n := range ns {
		k := keyOf(n)
		a.pending[k]++
		took[k]++
	}
	free := make(map[agencyKey]int, len(allowed))
	for _, al := range allowed {
		free[agencyKey{al.Partnership, al.Agency}] = al.Free
	}
	for k, n := range took {
		f, ok := free[k]
		if !ok {
			f = defaultAllowance
		}
		if n >= f {
			a.full[k] = true
		}
	}
	for k, f := range free {
		if f <= 0 {
			a.full[k] = true
		}
	}
}

// sent ends a claimed notification's attempt, and reports whether the worker should claim
// again because the agency was full.
func (a *agencySlots) sent(n store.Notification) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := keyOf(n)
	if a.pending[k]--; a.pending[k] <= 0 {
		delete(a.pending, k)
	}
	if a.full[k] {
		delete(a.full, k)
		return true
	}
	return false
}
