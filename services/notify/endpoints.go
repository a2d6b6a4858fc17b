package notify

import (
	"context"
	"errors"
	"sync"
	"time"

	"mash/services/notify/directory"
	"mash/services/notify/store"
)

// endpointTTL is how long a sender trusts its copy of an agency's entry. A directory change
// (a new URL after an outage, a rotated secret) reaches every replica within it.
const endpointTTL = 2 * time.Second

// endpoint is what a sender needs to reach one agency.
type endpoint struct {
	agency  directory.Agency
	link    string // console base URL of the partnership, for secure links
	found   bool
	fetched time.Time
}

// endpoints caches agency entries for the delivery path, which reads one per attempt.
type endpoints struct {
	st *store.Store
	mu sync.Mutex
	m  map[string]endpoint
}

func (e *endpoints) get(ctx context.Context, partnership, id string) (endpoint, error) {
	key := partnership + "/" + id
	e.mu.Lock()
	ep, ok := e.m[key]
	e.mu.Unlock()
	if ok && time.Since(ep.fetched) < endpointTTL {
		return ep, nil
	}
	ep = endpoint{fetched: time.Now()}
	for _, p := range []string{partnership, DefaultPartnership} {
		a, err := e.st.Agency(ctx, p, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return endpoint{}, err
		}
		ep.agency, ep.found = a.Agency, true
		if ps, err := e.st.Partnership(ctx, p); err == nil {
			ep.link = ps.ConsoleURL
		} else if !errors.Is(err, store.ErrNotFound) {
			return endpoint{}, err
		}
		break
	}
	e.mu.Lock()
	e.m[key] = ep
	e.mu.Unlock()
	return ep, nil
}

// forget drops cached entries after a directory change made by this process.
func (e *endpoints) forget() {
	e.mu.Lock()
	clear(e.m)
	e.mu.Unlock()
}

// directoryChanged drops every cached copy of the directory in this process.
func (s *Service) directoryChanged() {
	s.endpoints.forget()
	s.dirMu.Lock()
	clear(s.dirCache)
	s.dirMu.Unlock()
}
