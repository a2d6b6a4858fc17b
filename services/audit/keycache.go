package audit

import (
	"sync"
)

// keyCacheSize bounds the case keys kept in memory: enough for the referrals active at
// once (a referral's events arrive within seconds of each other), small enough to matter
// little (about 200 bytes each).
const keyCacheSize = 8192

// caseKey is a case key as the consumer seals with it: its row id, its wrapped form (so a
// key whose row is gone, its transaction rolled back, can be inserted again) and the key.
type caseKey struct {
	id      string
	wrapped []byte
	key     []byte
}

// keyCache remembers the case key last sealed with per referral, so recording an event
// needs no query for its key. It is only ever a guess: store.SealedPending stores the
// payload only if the guessed key is the referral's live key in the database, so a key
// destroyed (here or by another process), or a cached key whose transaction rolled back,
// is never relied on.
type keyCache struct {
	mu sync.Mutex
	m  map[string]caseKey
}

func newKeyCache() *keyCache { return &keyCache{m: make(map[string]caseKey)} }

func (c *keyCache) get(referralID string) (caseKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.m[referralID]
	return k, ok
}

func (c *keyCache) put(referralID string, k caseKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[referralID]; !ok && len(c.m) >= keyCacheSize {
		for old := range c.m { // any one: map order is random enough for a bound
			delete(c.m, old)
			break
		}
	}
	c.m[referralID] = k
}

// forget drops a referral's key: its case was shredded (or its cached key found stale).
func (c *keyCache) forget(referralID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, referralID)
}
