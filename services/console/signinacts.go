package console

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/adminact"
	"github.com/mash-hub/mash/pkg/auth"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"github.com/mash-hub/mash/services/console/store"
)

// TrailSignIns is the SignInRecorder that puts every sign-in attempt on the audit trail:
// an administrative act (mash.admin.signin) written to the auth schema's outbox, which
// mash serve relays. A failed attempt names nobody in the leaf (nobody was
// authenticated, and people type passwords into the username field): the name tried and
// the outcome go in the sealed payload with the address it came from.
type TrailSignIns struct {
	store *store.Store
	log   *zap.Logger
}

// NewTrailSignIns returns a recorder writing through pool.
func NewTrailSignIns(pool *pgxpool.Pool, log *zap.Logger) *TrailSignIns {
	return &TrailSignIns{store: store.New(pool), log: log}
}

// RecordSignIn implements SignInRecorder.
func (t *TrailSignIns) RecordSignIn(ctx context.Context, a SignInAttempt) {
	act := adminact.Act{Subject: eventsv1.SubjectAdminSignin, Verb: "succeeded", Actor: auth.UserPrefix + a.UserID, Target: "console (" + a.Method + ")",
		ClientAddress: a.ClientAddr, Detail: string(a.Outcome)}
	if a.Outcome != SignInSucceeded || a.UserID == "" {
		act.Verb, act.Actor, act.Outcome = "failed", "anonymous", adminact.Refused
		if a.Username != "" {
			act.Detail += "; username tried: " + a.Username
		}
	}
	if err := t.store.RecordAdminAct(context.WithoutCancel(ctx), act, a.At); err != nil {
		t.log.Error("console: put a sign-in on the audit trail", zap.String("request_id", a.RequestID), zap.Error(err))
	}
}
