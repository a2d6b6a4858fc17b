package events

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// ErrPayloadErased means an event's payload can never be read again: its case's data key
// was destroyed when the case was erased. A consumer acknowledges such an event unhandled
// rather than retrying it or dead-lettering it.
var ErrPayloadErased = errors.New("payload unreadable: the case was erased and its data key destroyed")

// PayloadCipher seals event payloads under their case's data key and opens them again
// (pkg/casekeys implements it). The envelope around a sealed payload stays clear: ids, type,
// time, partnership and version route and order events without the key.
type PayloadCipher interface {
	// SealPayload replaces env's payload with its encryption in env.Sealed. An envelope
	// with no referral id or no payload is left as it is.
	SealPayload(ctx context.Context, env *eventsv1.Envelope) error
	// OpenPayload restores env.Payload from env.Sealed and clears Sealed. The payload of an
	// erased case gives an error wrapping ErrPayloadErased.
	OpenPayload(ctx context.Context, env *eventsv1.Envelope) error
}

// Seal seals env's payload with c and returns the envelope's bytes, which are what the
// outbox stores and the relay publishes. A nil c leaves the payload clear. Call it on the
// envelope NewEnvelope built, before the outbox insert, in place of NewEnvelope's bytes.
func Seal(ctx context.Context, c PayloadCipher, env *eventsv1.Envelope) ([]byte, error) {
	if c != nil {
		if err := c.SealPayload(ctx, env); err != nil {
			return nil, fmt.Errorf("seal event %s (%s): %w", env.GetEventId(), env.GetType(), err)
		}
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("seal event %s (%s): marshal: %w", env.GetEventId(), env.GetType(), err)
	}
	return raw, nil
}

// open restores a sealed payload before the handler sees the event.
func open(ctx context.Context, c PayloadCipher, env *eventsv1.Envelope) error {
	if env.GetSealed() == nil {
		return nil
	}
	if Erased(env) {
		return fmt.Errorf("open event %s: %w", env.GetEventId(), ErrPayloadErased)
	}
	if c == nil {
		return fmt.Errorf("event %s has a sealed payload and this consumer has no payload cipher (set the case key-encryption key)", env.GetEventId())
	}
	if err := c.OpenPayload(ctx, env); err != nil {
		return fmt.Errorf("open event %s: %w", env.GetEventId(), err)
	}
	return nil
}

// Erased reports whether env is the tombstone of an event whose payload was erased at its
// source (see EraseCase): a sealed payload naming its case, with no ciphertext. A real seal
// always has one (AES-GCM's tag at least), so no sealed event is ever taken for one.
func Erased(env *eventsv1.Envelope) bool {
	s := env.GetSealed()
	return s != nil && len(s.GetCiphertext()) == 0
}

// Tombstone returns a copy of env without its payload, clear or sealed, marked as erased
// (Erased reports true of it): what an outbox keeps of an event of an erased case that was
// not yet published, so that the event still reaches the audit trail, ids, type, times and
// actor, and nothing else.
func Tombstone(env *eventsv1.Envelope) *eventsv1.Envelope {
	t := stripPayload(env)
	t.Sealed = &eventsv1.SealedPayload{KeyId: env.GetReferralId()}
	return t
}

// stripPayload returns a copy of env with neither payload nor sealed payload.
func stripPayload(env *eventsv1.Envelope) *eventsv1.Envelope {
	t := proto.Clone(env).(*eventsv1.Envelope)
	t.Payload, t.Sealed = nil, nil
	return t
}
