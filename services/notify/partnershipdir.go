package notify

import (
	"context"
	"errors"
	"time"

	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/store"
)

// partnershipDirectory is one partnership's settings and agencies, read in a transaction.
type partnershipDirectory struct {
	partnership directory.Partnership
	agencies    []directory.Agency
}

func (d partnershipDirectory) byID(id string) (directory.Agency, bool) {
	for _, a := range d.agencies {
		if a.ID == id {
			return a, true
		}
	}
	return directory.Agency{}, false
}

// directoryOf returns a partnership's directory, or the default partnership's when it has
// none, from a copy at most directoryTTL old (every decision and delivery reads it; a directory change
// reaches every replica within the TTL, and at once in the process that made it). With
// neither, settings take their defaults and no agency can be reached, so every notification
// is recorded as unroutable rather than dropped.
func (s *Service) directoryOf(ctx context.Context, q store.Querier, partnership string) (partnershipDirectory, error) {
	s.dirMu.Lock()
	c, ok := s.dirCache[partnership]
	s.dirMu.Unlock()
	if ok && time.Since(c.fetched) < directoryTTL {
		return c.dir, nil
	}
	d, err := s.readDirectory(ctx, q, partnership)
	if err != nil {
		return d, err
	}
	s.dirMu.Lock()
	s.dirCache[partnership] = cachedDirectory{dir: d, fetched: time.Now()}
	s.dirMu.Unlock()
	s.agencies.learn(partnership, d.agencies)
	return d, nil
}

// directoryTTL is how long a copy of a partnership's directory is trusted. A change (a new
// URL after an outage, a rotated secret) reaches every replica within it, and this process
// at once.
const directoryTTL = 2 * time.Second

type cachedDirectory struct {
	dir     partnershipDirectory
	fetched time.Time
}

// readDirectory reads a partnership's directory within tx, bypassing the cache.
func (s *Service) readDirectory(ctx context.Context, q store.Querier, partnership string) (partnershipDirectory, error) {
	for _, id := range []string{partnership, DefaultPartnership} {
		p, err := store.Partnership(ctx, q, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return partnershipDirectory{}, err
		}
		as, err := store.AgenciesIn(ctx, q, s.box, id)
		if err != nil {
			return partnershipDirectory{}, err
		}
		d := partnershipDirectory{partnership: p}
		for _, a := range as {
			d.agencies = append(d.agencies, a.Agency)
		}
		return d, nil
	}
	p := directory.Partnership{ID: partnership}
	p.Normalise()
	return partnershipDirectory{partnership: p}, nil
}

// agencyByID finds an agency addressed by id (a referrer, an agency asked for information):
// in the partnership's directory, or else in any partnership's, as a police force or a
// regional service serves several partnerships and sits in one directory.
func (s *Service) agencyByID(ctx context.Context, q store.Querier, dir partnershipDirectory, id string) (directory.Agency, bool, error) {
	if a, ok := dir.byID(id); ok {
		return a, true, nil
	}
	a, err := store.AgencyAnywhere(ctx, q, s.box, id)
	if errors.Is(err, store.ErrNotFound) {
		return directory.Agency{}, false, nil
	}
	return a.Agency, err == nil, err
}
