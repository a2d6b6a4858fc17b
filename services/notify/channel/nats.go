package channel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsTimeout bounds a publish when the caller's context has no deadline, so a broker
// that never acknowledges cannot hold a delivery worker forever.
const natsTimeout = 5 * time.Second

// NATS publishes the message body to the agency's subject in JetStream, for agencies that
// run a consumer on the shared broker.
type NATS struct{ js jetstream.JetStream }

// NewNATS returns the NATS channel publishing through js.
func NewNATS(js jetstream.JetStream) *NATS { return &NATS{js: js} }

// Kind is "nats".
func (n *NATS) Kind() string { return KindNATS }

// Send publishes m.Body to ep.Subject with Nats-Msg-Id = m.ID, so the stream stores a
// re-send within its duplicate window once; the acknowledgement of such a duplicate is
// still a delivery. Publish errors are worth retrying; a bad subject or message is not.
func (n *NATS) Send(ctx context.Context, ep Endpoint, m Message) (Receipt, error) {
	if n.js == nil {
		return Receipt{}, errors.New("nats: no JetStream connection")
	}
	if err := validateSubject(ep.Subject); err != nil {
		return Receipt{}, Permanent(fmt.Errorf("nats: %w", err))
	}
	if err := checkMessage(m); err != nil {
		return Receipt{}, Permanent(fmt.Errorf("nats: %w", err))
	}
	if !json.Valid(m.Body) {
		return Receipt{}, Permanent(fmt.Errorf("nats: message %s body is not valid JSON", m.ID))
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, natsTimeout)
		defer cancel()
	}
	msg := nats.NewMsg(ep.Subject)
	msg.Data = m.Body
	msg.Header.Set(HeaderKind, m.Kind)
	ack, err := n.js.PublishMsg(ctx, msg, jetstream.WithMsgID(m.ID))
	if err != nil {
		if errors.Is(err, nats.ErrBadSubject) {
			return Receipt{}, Permanent(fmt.Errorf("nats publish %s: %w", ep.Subject, err))
		}
		return Receipt{}, fmt.Errorf("nats publish %s: %w", ep.Subject, err)
	}
	detail := fmt.Sprintf("stream %s seq %d", ack.Stream, ack.Sequence)
	if ack.Duplicate {
		detail += " (duplicate)"
	}
	return Receipt{Detail: detail, Stream: ack.Stream, Sequence: ack.Sequence}, nil
}
