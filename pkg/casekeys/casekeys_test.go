package casekeys_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/mash-hub/mash/pkg/casekeys"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/db/dbtest"
	"github.com/mash-hub/mash/pkg/events"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// Synthetic personal data: what must never be readable outside the services.
const (
	childName = "Tegwen Synthetica-Pryce"
	nhsNumber = "9990001112"
)

const testSchema = "evt"

func newPool(t testing.TB, extra ...db.Migration) *pgxpool.Pool {
	t.Helper()
	key := "casekeys_" + db.Checksum(append(casekeys.Migrations(), extra...))
	return dbtest.NewPool(t, key, func(ctx context.Context, url string) error {
		pool, err := db.Open(ctx, url)
		if err != nil {
			return err
		}
		defer pool.Close()
		if err := casekeys.Migrate(ctx, pool); err != nil {
			return err
		}
		if len(extra) > 0 {
			return db.Migrate(ctx, pool, testSchema, extra)
		}
		return nil
	})
}

func newKEK(t testing.TB) casekeys.Wrapper {
	t.Helper()
	kek := make([]byte, casekeys.KEKSize)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	w, err := casekeys.NewLocalWrapper(kek)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func newStore(t testing.TB, pool *pgxpool.Pool, w casekeys.Wrapper, opts casekeys.Options) *casekeys.Store {
	t.Helper()
	s, err := casekeys.New(pool, w, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestLocalWrapperRefusesAKeyOfTheWrongSize(t *testing.T) {
	t.Parallel()
	if _, err := casekeys.NewLocalWrapper(make([]byte, 16)); err == nil {
		t.Fatal("a 16-byte key-encryption key was accepted")
	}
}

// Two processes sharing the database agree on one key per case; the table holds it only
// wrapped; destroying it is final, reaches another process's cache when its entry expires
// (or at once when told), and refuses the case a new key.
func TestOneKeyPerCaseUntilErased(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	w := newKEK(t)
	clk := &clock{now: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	a := newStore(t, pool, w, casekeys.Options{Now: clk.Now, CacheTTL: time.Minute})
	b := newStore(t, pool, w, casekeys.Options{Now: clk.Now, CacheTTL: time.Minute})
	caseID := uuid.NewString()

	// Both make a key at once: one wins and both use it.
	var ka, kb []byte
	var ea, eb error
	var wg sync.WaitGroup
	wg.Go(func() { ka, ea = a.Key(ctx, caseID) })
	wg.Go(func() { kb, eb = b.Key(ctx, caseID) })
	wg.Wait()
	if ea != nil || eb != nil {
		t.Fatal(ea, eb)
	}
	if len(ka) != 32 || !bytes.Equal(ka, kb) {
		t.Fatalf("stores disagree on the case key: %x %x", ka, kb)
	}
	var wrapped []byte
	if err := pool.QueryRow(ctx, `SELECT wrapped FROM keys.case_key WHERE case_id = $1`, caseID).Scan(&wrapped); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(wrapped, ka) {
		t.Fatal("the key table holds the data key in clear")
	}
	// A store with another key-encryption key cannot use it.
	if _, err := newStore(t, pool, newKEK(t), casekeys.Options{}).Key(ctx, caseID); err == nil {
		t.Fatal("a different key-encryption key unwrapped the case key")
	}

	destroyed, err := a.Erase(ctx, caseID)
	if err != nil || !destroyed {
		t.Fatalf("erase: destroyed %v, %v", destroyed, err)
	}
	if destroyed, err := a.Erase(ctx, caseID); err != nil || destroyed {
		t.Fatalf("second erase: destroyed %v, %v; want false, nil", destroyed, err)
	}
	if _, err := a.Key(ctx, caseID); !errors.Is(err, casekeys.ErrErased) || !errors.Is(err, events.ErrPayloadErased) {
		t.Fatalf("key of an erased case: %v, want ErrErased wrapping events.ErrPayloadErased", err)
	}
	if err := pool.QueryRow(ctx, `SELECT wrapped FROM keys.case_key WHERE case_id = $1`, caseID).Scan(&wrapped); err != nil || wrapped != nil {
		t.Fatalf("erased row still holds a wrapped key (%v)", err)
	}
	// b cached the key before the erasure: it serves it until the entry expires.
	if k, err := b.Key(ctx, caseID); err != nil || !bytes.Equal(k, ka) {
		t.Fatalf("cached key within its TTL: %v", err)
	}
	clk.Add(time.Minute)
	if _, err := b.Key(ctx, caseID); !errors.Is(err, casekeys.ErrErased) {
		t.Fatalf("after the cache TTL: %v, want ErrErased", err)
	}
	if erased, err := b.Erased(ctx, caseID); err != nil || !erased {
		t.Fatalf("Erased: %v %v", erased, err)
	}

	// Forget drops a cached key at once.
	other := uuid.NewString()
	if _, err := b.Key(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Erase(ctx, other); err != nil {
		t.Fatal(err)
	}
	b.Forget(other)
	if _, err := b.Key(ctx, other); !errors.Is(err, casekeys.ErrErased) {
		t.Fatalf("after Forget: %v, want ErrErased", err)
	}

	// Erasing a case that never had a key leaves it erased: it can never get one.
	never := uuid.NewString()
	if destroyed, err := a.Erase(ctx, never); err != nil || destroyed {
		t.Fatalf("erase of a keyless case: %v %v", destroyed, err)
	}
	if _, err := b.Key(ctx, never); !errors.Is(err, casekeys.ErrErased) {
		t.Fatalf("key after erasing a keyless case: %v, want ErrErased", err)
	}
}

func TestSealedPayloadOpensOnlyInItsOwnEnvelope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, newPool(t), newKEK(t), casekeys.Options{})
	referralID := uuid.NewString()
	env, _, err := events.NewEnvelope("mash.referral.received", "rct", referralID, 1, time.Now(), events.System("test"), wrapperspb.String(childName+" "+nhsNumber))
	if err != nil {
		t.Fatal(err)
	}
	clear := proto.Clone(env.GetPayload())
	raw, err := events.Seal(ctx, s, env)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(childName)) || bytes.Contains(raw, []byte(nhsNumber)) {
		t.Fatal("sealed envelope holds the personal data in clear")
	}
	if env.GetPayload() != nil || env.GetSealed().GetKeyId() != referralID || env.GetReferralId() != referralID || env.GetType() != "mash.referral.received" {
		t.Fatalf("sealed envelope: %v", env)
	}

	// Moved to another event, or with its type changed, it does not open.
	for name, alter := range map[string]func(*eventsv1.Envelope){
		"event id": func(e *eventsv1.Envelope) { e.EventId = uuid.NewString() },
		"type":     func(e *eventsv1.Envelope) { e.Type = "mash.referral.closed" },
		"case":     func(e *eventsv1.Envelope) { e.ReferralId = uuid.NewString(); e.Sealed.KeyId = e.ReferralId },
	} {
		moved := proto.Clone(env).(*eventsv1.Envelope)
		alter(moved)
		if err := s.OpenPayload(ctx, moved); err == nil {
			t.Errorf("payload opened with its %s altered", name)
		}
	}

	got := &eventsv1.Envelope{}
	if err := proto.Unmarshal(raw, got); err != nil {
		t.Fatal(err)
	}
	if err := s.OpenPayload(ctx, got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got.GetPayload(), clear) || got.GetSealed() != nil {
		t.Fatalf("opened payload %v, want %v", got.GetPayload(), clear)
	}

	// An envelope with no case stays clear: it carries no one's personal data.
	plain, _, err := events.NewEnvelope("mash.audit.checkpoint", "", "", 1, time.Now(), events.System("test"), wrapperspb.String("head"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SealPayload(ctx, plain); err != nil || plain.GetSealed() != nil || plain.GetPayload() == nil {
		t.Fatalf("an envelope without a referral id was sealed: %v %v", plain, err)
	}

	if _, err := s.Erase(ctx, referralID); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(raw, got); err != nil {
		t.Fatal(err)
	}
	if err := s.OpenPayload(ctx, got); !errors.Is(err, events.ErrPayloadErased) {
		t.Fatalf("open after erasure: %v, want ErrPayloadErased", err)
	}
	again, _, err := events.NewEnvelope("mash.referral.updated", "rct", referralID, 2, time.Now(), events.System("test"), wrapperspb.String(childName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.Seal(ctx, s, again); !errors.Is(err, casekeys.ErrErased) {
		t.Fatalf("sealing a new event of an erased case: %v, want ErrErased", err)
	}
}

// racingWrapper lets another process make the case's key while this one is wrapping its
// own, as happens when two services see a new case at once.
type racingWrapper struct {
	casekeys.Wrapper
	other *casekeys.Store
	t     *testing.T
	once  sync.Once
}

func (w *racingWrapper) Wrap(ctx context.Context, key []byte, caseID string) ([]byte, error) {
	w.once.Do(func() {
		if _, err := w.other.Key(ctx, caseID); err != nil {
			w.t.Error(err)
		}
	})
	return w.Wrapper.Wrap(ctx, key, caseID)
}

// The store that loses the race to make a case's key uses the winner's.
func TestTheLoserOfAKeyRaceUsesTheWinnersKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t)
	w := newKEK(t)
	winner := newStore(t, pool, w, casekeys.Options{})
	loser := newStore(t, pool, &racingWrapper{Wrapper: w, other: winner, t: t}, casekeys.Options{})
	caseID := uuid.NewString()
	lk, err := loser.Key(ctx, caseID)
	if err != nil {
		t.Fatal(err)
	}
	wk, err := winner.Key(ctx, caseID)
	if err != nil || !bytes.Equal(lk, wk) {
		t.Fatalf("loser's key %x, winner's %x (%v): want the same", lk, wk, err)
	}
}
