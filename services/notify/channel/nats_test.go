package channel

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/events/eventstest"
)

func newJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	return eventstest.JetStream(t, "notify-channel-test")
}

func TestNATSPublishesOnceForOneID(t *testing.T) {
	ctx := context.Background()
	js := newJetStream(t)
	ch := NewNATS(js)
	ep := Endpoint{Kind: KindNATS, Subject: "mash.notify.south-wales-police"}
	m := testMessage()

	first, err := ch.Send(ctx, ep, m)
	if err != nil {
		t.Fatal(err)
	}
	second, err := ch.Send(ctx, ep, m)
	if err != nil {
		t.Fatal(err)
	}
	if first.Detail != "stream MASH_AGENCY seq 1" || second.Detail != "stream MASH_AGENCY seq 1 (duplicate)" || first.Stream != events.AgencyStreamName || second.Sequence != 1 {
		t.Fatalf("receipts %q and %q", first.Detail, second.Detail)
	}

	stream, err := js.Stream(ctx, events.AgencyStreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want 1", info.State.Msgs)
	}
	got, err := stream.GetLastMsgForSubject(ctx, ep.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data) != string(m.Body) || got.Header.Get(HeaderKind) != m.Kind || got.Header.Get(jetstream.MsgIDHeader) != m.ID {
		t.Fatalf("stored message %q with headers %v", got.Data, got.Header)
	}
}

func TestNATSBadSubjectIsPermanent(t *testing.T) {
	ch := NewNATS(newJetStream(t))
	for _, subject := range []string{"mash.notify.a b", "mash.notify.*", "mash.notify.a.b", "mash.events.x", ""} {
		_, err := ch.Send(context.Background(), Endpoint{Kind: KindNATS, Subject: subject}, testMessage())
		if !IsPermanent(err) {
			t.Errorf("subject %q: err %v, want permanent", subject, err)
		}
	}
}
