package notify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/events/eventstest"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/notify/store"
)

// A message notify sent on an agency's NATS subject rests on the agency stream in clear:
// notify records where, and erasing the case deletes it from the stream (and the record),
// while another case's message stays.
func TestErasureDeletesTheCasesAgencyMessages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.addBusAgencies(t, "rct-yjs")
	erased, kept := e.referral(t, noEncompass), e.referral(t, noEncompass)
	req, _ := e.research(t, erased.GetId(), "rct-yjs", "Is the child known to youth justice?", e.clock.Now().Add(30*time.Hour))
	e.research(t, kept.GetId(), "rct-yjs", "Is the sibling known to youth justice?", e.clock.Now().Add(30*time.Hour))
	seqs := func(referralID string) []uint64 {
		rows, err := e.pool.Query(ctx, `SELECT seq FROM notify.agency_messages WHERE referral_id = $1 AND stream = $2`, referralID, events.AgencyStreamName)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []uint64
		for rows.Next() {
			var s int64
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, uint64(s))
		}
		return out
	}
	e.waitFor(t, "both requests delivered on the bus and recorded", func() bool {
		for _, id := range []string{erased.GetId(), kept.GetId()} {
			got := ofKindTo(e.rows(t, id), "INFORMATION_REQUEST", "rct-yjs")
			if len(got) != 1 || got[0].State != store.StateDelivered || len(seqs(id)) != 1 {
				return false
			}
		}
		return true
	})
	// The agency answers on the bus: its answer rests on the agency stream too.
	e.answerOnBus(t, "rct-yjs", answerBody(req.GetId(), "Known to youth justice since 2025."), "")
	e.waitFor(t, "the answer recorded", func() bool { return len(seqs(erased.GetId())) == 2 })
	stream, err := e.js.Stream(ctx, events.AgencyStreamName)
	if err != nil {
		t.Fatal(err)
	}
	erasedSeqs, keptSeq := seqs(erased.GetId()), seqs(kept.GetId())[0]
	erasedSeq := erasedSeqs[0]
	m, err := stream.GetMsg(ctx, erasedSeq)
	if err != nil || m.Subject != "mash.notify.rct-yjs" || !strings.Contains(string(m.Data), "known to youth justice") {
		t.Fatalf("recorded message %d: %v %v", erasedSeq, m, err)
	}

	e.publish(t, events.CaseErasedSubject, erased.GetId(), 0, &eventsv1.CaseErased{ReferralId: erased.GetId(),
		ErasedAt: timestamppb.New(e.clock.Now()), ErasedBy: "manager-1", ErasedByRole: "manager"})
	e.waitFor(t, "the erasure applied", func() bool {
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM notify.erased_cases WHERE referral_id = $1`, erased.GetId()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
	for _, seq := range erasedSeqs {
		if _, err := stream.GetMsg(ctx, seq); err == nil {
			t.Errorf("the erased case's message %d is still on the agency stream", seq)
		}
	}
	// An answer arriving after the erasure is refused and deleted at once.
	e.answerOnBus(t, "rct-yjs", answerBody(req.GetId(), "Also known to the police."), "")
	e.answersDrained(t)
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter("mash.notify.rct-yjs.answer"))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects["mash.notify.rct-yjs.answer"]; n != 0 {
		t.Errorf("%d answers about the erased case left on the agency stream", n)
	}
	if got := seqs(erased.GetId()); len(got) != 0 {
		t.Errorf("the erased case's agency messages still recorded: %v", got)
	}
	if _, err := stream.GetMsg(ctx, keptSeq); err != nil {
		t.Errorf("another case's message %d: %v", keptSeq, err)
	}
}

// A message published on an agency's subject whose place was never recorded (the recording
// transaction fails after the publish, as it would if notify crashed there) is still found
// and deleted when the case is erased before the delivery is retried: by the intent notify
// recorded before publishing, its subject and Nats-Msg-Id.
func TestErasureReachesAnAgencyMessageWhosePlaceWasNeverRecorded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.addBusAgencies(t, "rct-yjs")
	// Every recording of a place fails, in the real database.
	for _, q := range []string{
		`CREATE FUNCTION notify.refuse_place() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'recording refused by the test'; END $$`,
		`CREATE TRIGGER refuse_place BEFORE INSERT ON notify.agency_messages FOR EACH ROW EXECUTE FUNCTION notify.refuse_place()`,
	} {
		if _, err := e.pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	ref := e.referral(t, noEncompass)
	e.research(t, ref.GetId(), "rct-yjs", "Is the child known to youth justice?", e.clock.Now().Add(30*time.Hour))
	stream, err := e.js.Stream(ctx, events.AgencyStreamName)
	if err != nil {
		t.Fatal(err)
	}
	const subject = "mash.notify.rct-yjs"
	var id string
	e.waitFor(t, "the request published, its place unrecorded", func() bool {
		got := ofKindTo(e.rows(t, ref.GetId()), "INFORMATION_REQUEST", "rct-yjs")
		if len(got) != 1 || got[0].Attempts < 1 {
			return false
		}
		id = got[0].ID
		m, err := stream.GetLastMsgForSubject(ctx, subject)
		return err == nil && m.Header.Get(jetstream.MsgIDHeader) == id
	})
	var recorded int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM notify.agency_messages WHERE referral_id = $1`, ref.GetId()).Scan(&recorded); err != nil || recorded != 0 {
		t.Fatalf("places recorded despite the trigger: %d %v", recorded, err)
	}

	e.publish(t, events.CaseErasedSubject, ref.GetId(), 0, &eventsv1.CaseErased{ReferralId: ref.GetId(),
		ErasedAt: timestamppb.New(e.clock.Now()), ErasedBy: "manager-1", ErasedByRole: "manager"})
	e.waitFor(t, "the erasure applied", func() bool {
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM notify.erased_cases WHERE referral_id = $1`, ref.GetId()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Subjects[subject]; n != 0 {
		t.Errorf("%d messages about the erased case left on %s", n, subject)
	}
	var intents int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM notify.agency_sends WHERE referral_id = $1`, ref.GetId()).Scan(&intents); err != nil || intents != 0 {
		t.Errorf("intents of the erased case still recorded: %d %v", intents, err)
	}
}

// The records of where agency messages rest are pruned once the messages have aged out of
// the agency stream (older than its MaxAge), for cases that are never erased; newer ones stay.
func TestPruneForgetsAgencyMessagesAgedOutOfTheStream(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.addBusAgencies(t, "rct-yjs")
	count := func(table, referralID string) int {
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM notify.`+table+` WHERE referral_id = $1`, referralID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	old := e.referral(t, noEncompass)
	e.research(t, old.GetId(), "rct-yjs", "Is the child known to youth justice?", e.clock.Now().Add(30*time.Hour))
	e.waitFor(t, "the request delivered and its place recorded", func() bool { return count("agency_messages", old.GetId()) == 1 })
	if n := count("agency_sends", old.GetId()); n != 0 {
		t.Errorf("a first-attempt delivery left %d intents", n)
	}
	if n, err := e.svc.PruneAgencyRecords(ctx); err != nil || n != 0 {
		t.Fatalf("pruned %d fresh records (%v)", n, err)
	}

	stream, err := e.js.Stream(ctx, events.AgencyStreamName)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(stream.CachedInfo().Config.MaxAge + time.Hour)
	fresh := e.referral(t, noEncompass)
	e.research(t, fresh.GetId(), "rct-yjs", "Is the sibling known to youth justice?", e.clock.Now().Add(30*time.Hour))
	e.waitFor(t, "the second request's place recorded", func() bool { return count("agency_messages", fresh.GetId()) == 1 })
	if n, err := e.svc.PruneAgencyRecords(ctx); err != nil || n != 1 {
		t.Fatalf("pruned %d records, want the aged-out one (%v)", n, err)
	}
	if n := count("agency_messages", old.GetId()); n != 0 {
		t.Errorf("the aged-out message still recorded")
	}
	if n := count("agency_messages", fresh.GetId()); n != 1 {
		t.Errorf("the fresh message's record pruned")
	}
}

// Acknowledgements and answers notify refuses (naming no notification or request of their
// agency, or malformed) are free text tied to no case, so no erasure would reach them: they
// are deleted from the agency stream as they are refused.
func TestRefusedAgencyRepliesAreDeletedFromTheStream(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ack := []byte(`{"notificationId": "0190a0a0-0000-7000-8000-000000000001", "note": "Seen by DC Example about Child Example"}`)
	if _, err := e.js.Publish(ctx, "mash.notify.rct-csc.ack", ack); err != nil {
		t.Fatal(err)
	}
	e.answerOnBus(t, "rct-yjs", []byte(`{"answer": "Child Example is known to us"}`), "")
	eventstest.DrainedOn(t, e.js, events.AgencyStreamName, "notify-acks")
	e.answersDrained(t)
	stream, err := e.js.Stream(ctx, events.AgencyStreamName)
	if err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{"mash.notify.rct-csc.ack", "mash.notify.rct-yjs.answer"} {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			t.Fatal(err)
		}
		if n := info.State.Subjects[subject]; n != 0 {
			t.Errorf("%d refused replies left on %s", n, subject)

		}
	}
}
