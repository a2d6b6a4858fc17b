package audit

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mash-hub/mash/services/audit/store"
)

// pendingBatch collects the entries of one consumer batch so that they reach the database in
// one round trip (store.WritePending) instead of one per event: at tens of entries per
// referral, the round trips were most of the consumer's time.
type pendingBatch struct {
	queued []store.Queued
	// keys are the case keys the batch sealed with, by referral: every event of a referral
	// in the batch is sealed under one key, which the first of them inserts if the referral
	// has none.
	keys map[string]caseKey
}

type pendingBatchKey struct{}

// inOneRoundTrip is the consumer's BatchScope: the handlers of a batch queue their entries
// (record finds the batch on ctx) and they are written together before the commit.
func (s *Service) inOneRoundTrip(ctx context.Context, tx pgx.Tx, apply func(context.Context) error) error {
	b := &pendingBatch{keys: make(map[string]caseKey)}
	if err := apply(context.WithValue(ctx, pendingBatchKey{}, b)); err != nil {
		return err
	}
	return s.writeBatch(ctx, tx, b)
}

// queue seals plain (when there is a payload) under the key the batch uses for p's referral
// and adds the entry to b.
func (s *Service) queue(b *pendingBatch, p store.Pending, plain []byte) error {
	if plain == nil {
		b.queued = append(b.queued, store.Queued{P: p})
		return nil
	}
	k, ok := b.keys[p.ReferralID]
	if !ok {
		if k, ok = s.keys.get(p.ReferralID); !ok {
			var err error
			if k, err = s.newCaseKey(p.ReferralID); err != nil {
				return err
			}
		}
		b.keys[p.ReferralID] = k
	}
	nonce, ct, err := seal(k.key, plain, p.EventID)
	if err != nil {
		return fmt.Errorf("event %s: %w", p.EventID, err)
	}
	p.PayloadSHA256 = sha256.Sum256(ct)
	b.queued = append(b.queued, store.Queued{P: p, KeyID: k.id, Wrapped: k.wrapped, Nonce: nonce, Ciphertext: ct})
	return nil
}

// writeBatch stores b's entries in one round trip, then seals again, one by one, those whose
// guessed key was not the referral's (sealWithLiveKey, as insertSealed does), which is rare:
// another process made the referral's key first.
func (s *Service) writeBatch(ctx context.Context, tx pgx.Tx, b *pendingBatch) error {
	if len(b.queued) == 0 {
		return nil
	}
	outcomes, err := store.WritePending(ctx, tx, b.queued, redactedSum)
	if err != nil {
		return err
	}
	for i, q := range b.queued {
		if q.KeyID == "" {
			continue
		}
		switch outcomes[i] {
		case store.Sealed:
			s.keys.put(q.P.ReferralID, b.keys[q.P.ReferralID])
			continue
		case store.Redacted:
			s.keys.forget(q.P.ReferralID)
			continue
		}
		plain, err := open(b.keys[q.P.ReferralID].key, q.Nonce, q.Ciphertext, q.P.EventID)
		if err != nil {
			return fmt.Errorf("event %s: reopen to seal again: %w", q.P.EventID, err)
		}
		if err := s.sealWithLiveKey(ctx, tx, q.P, plain); err != nil {
			return err
		}
	}
	return nil
}
