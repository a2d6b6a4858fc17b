package casekeys

import (
	"context"
	"crypto/rand"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// SealPayload implements events.PayloadCipher: env's payload is encrypted under the data
// key of its referral (made on first use), with the envelope's event id, type and referral
// id as additional data. An envelope with no referral id, no payload, or already sealed is
// left as it is. A case that was erased gives ErrErased: its events may carry no personal
// data from then on.
func (s *Store) SealPayload(ctx context.Context, env *eventsv1.Envelope) error {
	if env.GetReferralId() == "" || env.GetPayload() == nil || env.GetSealed() != nil {
		return nil
	}
	key, err := s.Key(ctx, env.GetReferralId())
	if err != nil {
		return err
	}
	plain, err := proto.MarshalOptions{Deterministic: true}.Marshal(env.GetPayload())
	if err != nil {
		return fmt.Errorf("seal payload of event %s: marshal: %w", env.GetEventId(), err)
	}
	aead, err := newGCM(key)
	if err != nil {
		return fmt.Errorf("seal payload of event %s: %w", env.GetEventId(), err)
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("seal payload of event %s: %w", env.GetEventId(), err)
	}
	env.Sealed = &eventsv1.SealedPayload{
		KeyId:      env.GetReferralId(),
		Nonce:      nonce,
		Ciphertext: aead.Seal(nil, nonce, plain, additionalData(env)),
	}
	env.Payload = nil
	return nil
}

// OpenPayload implements events.PayloadCipher. The payload of an erased case gives
// ErrErased (which wraps events.ErrPayloadErased).
func (s *Store) OpenPayload(ctx context.Context, env *eventsv1.Envelope) error {
	sealed := env.GetSealed()
	if sealed == nil {
		return nil
	}
	if sealed.GetKeyId() != env.GetReferralId() {
		return fmt.Errorf("open payload of event %s: sealed under case %q, envelope names case %q",
			env.GetEventId(), sealed.GetKeyId(), env.GetReferralId())
	}
	key, err := s.key(ctx, sealed.GetKeyId(), false)
	if err != nil {
		return err
	}
	aead, err := newGCM(key)
	if err != nil {
		return fmt.Errorf("open payload of event %s: %w", env.GetEventId(), err)
	}
	if len(sealed.GetNonce()) != aead.NonceSize() {
		return fmt.Errorf("open payload of event %s: %w", env.GetEventId(), errShortNonce)
	}
	plain, err := aead.Open(nil, sealed.GetNonce(), sealed.GetCiphertext(), additionalData(env))
	if err != nil {
		return fmt.Errorf("open payload of event %s (altered, or moved from another event): %w", env.GetEventId(), err)
	}
	payload := &anypb.Any{}
	if err := proto.Unmarshal(plain, payload); err != nil {
		return fmt.Errorf("open payload of event %s: decode: %w", env.GetEventId(), err)
	}
	env.Payload, env.Sealed = payload, nil
	return nil
}

// additionalData binds a sealed payload to its envelope.
func additionalData(env *eventsv1.Envelope) []byte {
	return []byte(env.GetEventId() + "\x00" + env.GetType() + "\x00" + env.GetReferralId())
}
