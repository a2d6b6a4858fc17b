// Package eventstest holds test helpers for services that publish on the MASH stream.
package eventstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"mash/pkg/events"
)

// Messages waits until the MASH stream holds at least want messages on subject (up to 15
// s), then returns every message on it, oldest first.
func Messages(t testing.TB, js jetstream.JetStream, subject string, want int) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	for {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			t.Fatal(err)
		}
		if int(info.State.Subjects[subject]) >= want {
			var out []*jetstream.RawStreamMsg
			for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
				m, err := stream.GetMsg(ctx, seq)
				if err == nil && m.Subject == subject {
					out = append(out, m)
				}
			}
			return out
		}
		select {
		case <-ctx.Done():
			t.Fatalf("fewer than %d events on %s", want, subject)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
