// Package eventstest holds test helpers for services that publish on the MASH stream.
package eventstest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mash-hub/mash/pkg/events"
)

// Messages waits until the MASH stream holds at least want messages on subject (up to 15
// s), then returns every message on it, oldest first. A read that fails on the way (a busy
// server timing out, say) is tried again rather than returning fewer than want.
func Messages(t testing.TB, js jetstream.JetStream, subject string, want int) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	var last error
	for {
		out, err := read(ctx, stream, subject)
		if err == nil && len(out) >= want {
			return out
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("fewer than %d events on %s (last read error: %v)", want, subject, last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// read returns every message on subject now in the stream, or the first error reading them.
func read(ctx context.Context, stream jetstream.Stream, subject string) ([]*jetstream.RawStreamMsg, error) {
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return nil, err
	}
	if info.State.Subjects[subject] == 0 {
		return nil, nil
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return nil, fmt.Errorf("read message %d: %w", seq, err)
		case m.Subject == subject:
			out = append(out, m)
		}
	}
	return out, nil
}

// Drained waits (up to 15 s) until the durable consumer of the MASH stream has every
// message published so far delivered and acknowledged: how a test knows that "nothing
// happened" is because the consumer has seen everything, not because it was slow.
func Drained(t testing.TB, js jetstream.JetStream, durable string) {
	t.Helper()
	DrainedOn(t, js, events.StreamName, durable)
}

// DrainedOn is Drained for a durable consumer of stream (events.AgencyStreamName, say).
func DrainedOn(t testing.TB, js jetstream.JetStream, stream, durable string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := js.Consumer(context.Background(), stream, durable)
		if err == nil {
			info, ierr := c.Info(context.Background())
			if ierr == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				return
			}
			err = ierr
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s did not drain within 15 s: %v", durable, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
