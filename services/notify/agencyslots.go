package notify

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/store"
)

// agencyKey names an agency as a notification does.
type agencyKey struct{ partnership, agency string }

func keyOf(n store.Notification) agencyKey { return agencyKey{n.Partnership, n.Agency} }

// agencySlots keeps each agency's concurrency limit and counts the notifications this
// process has claimed for it and not yet finished sending, so that a claim takes no more of
// an agency's notifications than it can send while their leases run. Without that, an agency
// that stopped answering could have its notifications hold every sending slot, each waiting
// its turn for the agency while its lease ran: the other agencies would wait behind it, and
// what was still waiting when the lease ran out would be claimed and sent again.
type agencySlots struct {
	// waitBudget is how long a claimed notification may wait for its agency's slot and
	// still be sent within its lease (see waitBudget in delivery.go).
	waitBudget time.Duration

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
	// took is each agency's recent attempt time: a slow attempt counts at once, a fast one
	// brings the figure down gradually, so one quick answer does not undo a timeout.
	took map[agencyKey]time.Duration
}

// Rounds of an agency's slots a claim may take: the round in flight and the next for an
// agency not yet heard from or slow to answer, so a freed slot starts its next attempt
// without waiting for a claim's round trip; up to maxRounds for an agency that answers
// quickly enough for all of them to be sent within their leases.
const (
	minRounds = 2
	maxRounds = 16
)

// rounds is how many rounds of the agency's slots may be claimed at once: as many as its
// recent attempt time lets a notification wait through and still be sent in its lease.
func (a *agencySlots) rounds(k agencyKey) int {
	took, ok := a.took[k]
	if !ok {
		return minRounds
	}
	return min(maxRounds, max(minRounds, int(a.waitBudget/max(took, time.Millisecond))+1))
}

// observe records how long an attempt to the notification's agency took.
func (a *agencySlots) observe(n store.Notification, d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := keyOf(n)
	if a.took == nil {
		a.took = map[agencyKey]time.Duration{}
	}
	prev, ok := a.took[k]
	if !ok || d > prev {
		a.took[k] = d
		return
	}
	a.took[k] = prev - (prev-d)/8
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

// defaultAllowance is what a claim may take of an agency this process knows nothing of.
const defaultAllowance = minRounds * directory.DefaultConcurrency

// allowances is what the next claim may take of each agency this process knows (agencies
// not listed may have defaultAllowance), and the agencies it should not look at, having
// none free, as partnership and agency ids for store.Claim.
func (a *agencySlots) allowances() (free map[agencyKey]int, skipPartnerships, skipAgencies []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	free = make(map[agencyKey]int, len(a.limits)+len(a.pending))
	for k := range a.limits {
		free[k] = a.rounds(k)*a.limit(k) - a.pending[k]
	}
	for k := range a.pending {
		free[k] = a.rounds(k)*a.limit(k) - a.pending[k]
	}
	for k, f := range free {
		if f <= 0 {
			skipPartnerships, skipAgencies = append(skipPartnerships, k.partnership), append(skipAgencies, k.agency)
		}
	}
	return free, skipPartnerships, skipAgencies
}

// roomOf is an agency's room in an allowances map: defaultAllowance when it is not listed.
func roomOf(free map[agencyKey]int, k agencyKey) int {
	if f, ok := free[k]; ok {
		return f
	}
	return defaultAllowance
}

// trim keeps, most urgent first, as many of a claim's notifications as each agency's
// allowance lets it take, and returns the rest to give back. The claim itself takes the most
// urgent due rows of the agencies with any room: asking Postgres to count each agency's rows
// as well costs every claim a sort of its candidates, while the room is rarely exceeded.
func trim(claimed []store.Notification, free map[agencyKey]int) (keep, giveBack []store.Notification) {
	slices.SortStableFunc(claimed, func(x, y store.Notification) int {
		if c := cmp.Compare(x.Priority, y.Priority); c != 0 {
			return c
		}
		return x.NextAttemptAt.Compare(y.NextAttemptAt)
	})
	took := map[agencyKey]int{}
	for _, n := range claimed {
		k := keyOf(n)
		if took[k] >= roomOf(free, k) {
			giveBack = append(giveBack, n)
			continue
		}
		took[k]++
		keep = append(keep, n)
	}
	return keep, giveBack
}

// claimed counts a claim's kept notifications against their agencies, and marks full the
// agencies it took all their allowance of, gave any back for, or left out for having none.
func (a *agencySlots) claimed(keep, giveBack []store.Notification, free map[agencyKey]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending == nil {
		a.pending, a.full = map[agencyKey]int{}, map[agencyKey]bool{}
	}
	took := map[agencyKey]int{}
	for _, n := range keep {
		k := keyOf(n)
		a.pending[k]++
		took[k]++
	}
	for k, n := range took {
		if n >= roomOf(free, k) {
			a.full[k] = true
		}
	}
	for _, n := range giveBack {
		a.full[keyOf(n)] = true
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
