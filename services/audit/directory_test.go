package audit_test

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
)

// The four-eyes acts on the agency directory are on the trail: who proposed a new webhook
// URL and secret, from which address, and who approved it, from where, in what role; the
// rotation and the notice to the old contact too. No referral is involved, and no entry
// holds a secret (the events carry none; the URL is fine).
func TestDirectoryChangesAreOnTheTrail(t *testing.T) {
	e := newEnv(t)
	change := &notifyv1.DirectoryChange{Id: "0192f000-0000-7000-8000-000000000001", Partnership: "rct", AgencyId: "rct-csc",
		State: notifyv1.DirectoryChangeState_DIRECTORY_CHANGE_PENDING, RotatesSecret: true, Reason: "new case system",
		Changes: []*notifyv1.FieldChange{{Field: "url", Before: "https://old.example/hook", After: "https://new.example/hook"},
			{Field: "secret", Before: "(current secret)", After: "(new secret)"}},
		ProposedBy: "user:alice", ProposedByRole: "manager", ProposedFrom: "198.51.100.7 via 127.0.0.1", ProposedAt: timestamppb.New(e.now)}
	approved := proto.Clone(change).(*notifyv1.DirectoryChange)
	approved.State, approved.DecidedBy, approved.DecidedByRole, approved.DecidedFrom =
		notifyv1.DirectoryChangeState_DIRECTORY_CHANGE_APPROVED, "user:bob", "manager", "203.0.113.9"
	rejected := proto.Clone(change).(*notifyv1.DirectoryChange)
	rejected.Id, rejected.State, rejected.DecidedBy, rejected.DecidedByRole, rejected.DecidedFrom =
		"0192f000-0000-7000-8000-000000000002", notifyv1.DirectoryChangeState_DIRECTORY_CHANGE_REJECTED, "user:carol", "manager", "203.0.113.10"
	cases := []struct {
		typ                          string
		payload                      proto.Message
		actor, role, agency, decided string
	}{
		{"mash.directory.change_proposed", &eventsv1.DirectoryChangeProposed{Change: change}, "user:alice", "manager", "rct-csc",
			"directory change " + change.Id + " proposed for rct-csc: url https://old.example/hook -> https://new.example/hook; secret rotated from 198.51.100.7 via 127.0.0.1"},
		{"mash.directory.change_approved", &eventsv1.DirectoryChangeApproved{Change: approved}, "user:bob", "manager", "rct-csc",
			"directory change " + change.Id + " for rct-csc approved (proposed by user:alice): url https://old.example/hook -> https://new.example/hook; secret rotated from 203.0.113.9"},
		{"mash.directory.change_rejected", &eventsv1.DirectoryChangeRejected{Change: rejected}, "user:carol", "manager", "rct-csc",
			"directory change " + rejected.Id + " for rct-csc rejected (proposed by user:alice) from 203.0.113.10"},
		{"mash.directory.change_expired", &eventsv1.DirectoryChangeExpired{Change: change}, "notify", "system", "rct-csc",
			"directory change " + change.Id + " for rct-csc expired undecided (proposed by user:alice)"},
		{"mash.directory.secret_rotated", &eventsv1.AgencySecretRotated{Partnership: "rct", Agency: "rct-csc", ChangeId: change.Id,
			ApprovedBy: "user:bob", ApprovedByRole: "manager", ApprovedFrom: "203.0.113.9", ProposedBy: "user:alice"}, "user:bob", "manager", "rct-csc",
			"webhook secret of rct-csc rotated by change " + change.Id + " from 203.0.113.9"},
		{"mash.directory.contact_notified", &eventsv1.DirectoryContactNotified{NoticeId: "n-1", ChangeId: change.Id, Partnership: "rct",
			Agency: "rct-csc", Channel: "webhook", Endpoint: "https://old.example/hook", Attempt: 1, Detail: "HTTP 200"}, "notify", "system", "rct-csc",
			"previous contact of rct-csc (webhook https://old.example/hook) told of directory change " + change.Id},
	}
	var envs []*eventsv1.Envelope
	for _, c := range cases {
		ev, _, err := legacyEnvelope(t, c.typ, "rct", "", 0, e.now, c.payload)
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, ev)
	}
	e.record(t, envs...)
	e.sequenceAll(t)
	if n := e.checkTree(t); n != int64(len(envs)) {
		t.Fatalf("%d entries, want %d", n, len(envs))
	}
	for i, c := range cases {
		var typ, actor, role, agency, decision, referral string
		if err := e.pool.QueryRow(context.Background(), `SELECT event_type, actor, actor_role, agency, decision, referral_id
			FROM audit.entries WHERE event_id = $1`, envs[i].GetEventId()).Scan(&typ, &actor, &role, &agency, &decision, &referral); err != nil {
			t.Fatalf("%s: %v", c.typ, err)
		}
		if typ != c.typ || actor != c.actor || role != c.role || agency != c.agency || decision != c.decided || referral != "" {
			t.Errorf("%s: got %q %q %q %q %q\nwant decision %q", c.typ, actor, role, agency, decision, referral, c.decided)
		}
	}
	// Search finds the approval by the approver, as an auditor would look for it.
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit.entries WHERE actor = 'user:bob' AND event_type LIKE 'mash.directory.%'`).
		Scan(&n); err != nil || n != 2 {
		t.Fatalf("entries by the approver: %d %v", n, err)
	}
}
