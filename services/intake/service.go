// Package intake accepts referrals from police, health and other referring systems over
// gRPC and HTTP/JSON. A referral is accepted when its row and its outbox row have committed
// together; only then does the referrer get an acknowledgement, with a reference and the
// decision deadline. The relay then publishes mash.referral.received to JetStream.
package intake

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/calendar"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/failpoint"
	"github.com/mash-hub/mash/pkg/referral"
	"github.com/mash-hub/mash/pkg/server"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	"github.com/mash-hub/mash/services/intake/store"
)

// EventReferralReceived is the subject and type of the event intake publishes.
const EventReferralReceived = eventsv1.SubjectReferralReceived

// StatusReceived is the status of a referral awaiting its threshold decision.
const StatusReceived = "RECEIVED"

// EventRecommended is the rules service's event intake follows to update a referral's
// status: the referral has been through the threshold rules and is with the hub.
const EventRecommended = eventsv1.SubjectRecommendationMade

// Deps are what intake needs from the process that runs it.
type Deps struct {
	Pool     *pgxpool.Pool
	JS       jetstream.JetStream
	Calendar *calendar.Calendar
	Log      *zap.Logger
	Events   *events.Metrics
	Now      func() time.Time // nil means time.Now
	// Reconcile sets the age and interval of the reconciler (Schema and Checks are intake's).
	Reconcile events.ReconcilerConfig
	Registry  prometheus.Registerer
	// Cipher seals the personal data in this service's events under each case's key and
	// opens the events it consumes (pkg/casekeys); nil leaves payloads clear.
	Cipher events.PayloadCipher
	// Probe is the readiness check's own connection to intake's login (db.OpenProbe), so a
	// busy Pool does not make the process unready; nil checks through Pool.
	Probe *pgxpool.Pool
}

// Service is the intake service.
type Service struct {
	pool       *pgxpool.Pool
	probe      *pgxpool.Pool
	store      *store.Store
	relay      *events.Relay
	decided    *events.Consumer
	erasure    *events.Consumer
	safeguards *events.Safeguards
	calendar   *calendar.Calendar
	log        *zap.Logger
	now        func() time.Time
	cipher     events.PayloadCipher
}

// New validates deps and builds the service.
func New(d Deps) (*Service, error) {
	switch {
	case d.Pool == nil:
		return nil, fmt.Errorf("intake.New: no database pool")
	case d.JS == nil:
		return nil, fmt.Errorf("intake.New: no JetStream")
	case d.Calendar == nil:
		return nil, fmt.Errorf("intake.New: no calendar")
	case d.Log == nil:
		return nil, fmt.Errorf("intake.New: no logger")
	}
	relay, err := events.NewRelay(d.Pool, d.JS, events.RelayConfig{Schema: store.Schema}, d.Log.Named("relay"), d.Events)
	if err != nil {
		return nil, fmt.Errorf("intake.New: %w", err)
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	probe := d.Probe
	if probe == nil {
		probe = d.Pool
	}
	s := &Service{cipher: d.Cipher, pool: d.Pool, probe: probe, store: store.New(d.Pool), relay: relay, calendar: d.Calendar, log: d.Log, now: now}
	// Intake follows the rules service's decisions so a referrer reading its referral sees
	// that it was decided.
	decided := events.NewRouter()
	events.On(decided, func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope, _ *eventsv1.RecommendationMade) error {
		return store.MarkDecided(ctx, tx, env.GetReferralId(), env.GetVersion())
	}, EventRecommended)
	if err := decided.Err(); err != nil {
		return nil, fmt.Errorf("intake.New: %w", err)
	}
	s.decided, err = events.NewConsumer(d.Pool, d.JS, events.StreamName, events.ConsumerConfig{
		Schema: store.Schema, Durable: decidedDurable, FilterSubjects: decided.Subjects(), Cipher: d.Cipher, SkipErased: true,
		BatchSize: 32, MaxAckPending: 256,
	}, decided.Handle, d.Log.Named("decided"), d.Events)
	if err != nil {
		return nil, fmt.Errorf("intake.New: %w", err)
	}
	// An erased case's submission is blanked here too.
	s.erasure, err = events.NewErasureConsumer(d.Pool, d.JS, events.ErasureConsumerConfig{Schema: store.Schema, Durable: erasureDurable, Cipher: d.Cipher},
		func(ctx context.Context, tx pgx.Tx, ev *eventsv1.CaseErased) error {
			return store.EraseReferral(ctx, tx, ev.GetReferralId())
		}, d.Log.Named("erasure"), d.Events)
	if err != nil {
		return nil, fmt.Errorf("intake.New: %w", err)
	}
	rc := d.Reconcile
	rc.Schema, rc.Checks = store.Schema, []events.ReconcileCheck{{Name: "decision", Query: store.UndecidedSQL}}
	if s.safeguards, err = events.NewSafeguards(d.Pool, d.JS, rc, d.Log, d.Registry, d.Events); err != nil {
		return nil, fmt.Errorf("intake.New: %w", err)
	}
	return s, nil
}

// Migrate brings intake's schema up to date.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	migs, err := store.Migrations()
	if err != nil {
		return err
	}
	return db.Migrate(ctx, pool, store.Schema, migs)
}

// Register adds intake's gRPC service and HTTP routes to srv.
func (s *Service) Register(srv *server.Server) {
	api := &grpcAPI{svc: s}
	intakev1.RegisterIntakeServiceServer(srv.GRPC(), api)
	registerHTTP(srv, api)
	registerFHIR(srv, s)
	srv.AddCheck(server.Check{Name: "intake-outbox", Check: func(ctx context.Context) error {
		// Intake's login can read its outbox: what an accepted referral is written beside.
		if _, err := s.probe.Exec(ctx, `SELECT 1 FROM `+store.Schema+`.outbox LIMIT 1`); err != nil {
			return fmt.Errorf("read intake's outbox: %w", err)
		}
		return nil
	}})
}

// Run runs the relay and the status consumer until ctx ends, then drains them.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.relay.Run(ctx) })
	g.Go(func() error { return s.decided.Run(ctx) })
	g.Go(func() error { return s.erasure.Run(ctx) })
	g.Go(func() error { return s.safeguards.Run(ctx) })
	return g.Wait()
}

// acknowledgement is the outcome of a submission.
type acknowledgement struct {
	referral store.Referral
	replay   bool
}

// normalised returns sub with its referrer's phone in E.164 form (validation has passed,
// so the number parses); sub itself is left as sent.
func normalised(sub *intakev1.ReferralSubmission) *intakev1.ReferralSubmission {
	phone := sub.GetReferrer().GetPhone()
	if phone == "" {
		return sub
	}
	e164, reason := referral.NormalisePhone(phone)
	if reason != "" || e164 == phone {
		return sub
	}
	out := proto.Clone(sub).(*intakev1.ReferralSubmission)
	out.Referrer.Phone = e164
	return out
}

// submit accepts sub from the caller's agency: validation has passed.
func (s *Service) submit(ctx context.Context, caller auth.Identity, sub *intakev1.ReferralSubmission) (acknowledgement, error) {
	agency, agencyKind := caller.Agency, caller.Kind
	content, err := proto.MarshalOptions{Deterministic: true}.Marshal(sub)
	if err != nil {
		return acknowledgement{}, fmt.Errorf("encode submission: %w", err)
	}
	// The hash is of the submission as sent, so a retry of it is recognised whatever
	// intake's normal form for it; what is stored is the normal form (phone in E.164).
	hash := sha256.Sum256(content)
	if norm := normalised(sub); norm != sub {
		sub = norm
		if content, err = (proto.MarshalOptions{Deterministic: true}).Marshal(sub); err != nil {
			return acknowledgement{}, fmt.Errorf("encode submission: %w", err)
		}
	}
	receivedAt := s.now().UTC().Truncate(time.Microsecond)
	id, err := uuid.NewV7()
	if err != nil {
		return acknowledgement{}, fmt.Errorf("new referral id: %w", err)
	}
	ref, err := s.store.NextReference(ctx, receivedAt.In(s.calendar.Location()))
	if err != nil {
		return acknowledgement{}, err
	}
	r := store.Referral{
		ID:                id.String(),
		Reference:         ref,
		Agency:            agency,
		AgencyKind:        agencyKind,
		ExternalReference: sub.GetExternalReference(),
		Partnership:       sub.GetPartnership(),
		ContentHash:       hash[:],
		Submission:        content,
		ReceivedAt:        receivedAt,
		DecisionDue:       s.calendar.AddWorkingDays(receivedAt, 1).UTC(),
		Status:            StatusReceived,
		Version:           1,
	}
	env, raw, err := events.NewEnvelope(EventReferralReceived, r.Partnership, r.ID, r.Version, receivedAt, caller.EventActor(),
		&eventsv1.ReferralReceived{Referral: toProto(r, sub)})
	if err != nil {
		return acknowledgement{}, fmt.Errorf("build event for referral %s: %w", r.ID, err)
	}
	if raw, err = events.Seal(ctx, s.cipher, env); err != nil {
		return acknowledgement{}, fmt.Errorf("referral %s: %w", r.ID, err)
	}
	created, existing, err := s.store.Insert(ctx, r, store.Event{ID: env.GetEventId(), Subject: env.GetType(), Payload: raw})
	if err != nil {
		return acknowledgement{}, err
	}
	if !created {
		if string(existing.ContentHash) != string(hash[:]) {
			return acknowledgement{}, conflictError(agency, sub.GetExternalReference(), existing.ID)
		}
		return acknowledgement{referral: existing, replay: true}, nil
	}
	failpoint.Inject("intake.after-commit")
	s.relay.Wake()
	s.log.Info("referral accepted", zap.String("referral_id", r.ID), zap.String("reference", r.Reference),
		zap.String("agency", agency), zap.String("partnership", r.Partnership), zap.String("event_id", env.GetEventId()))
	return acknowledgement{referral: r}, nil
}

func toProto(r store.Referral, sub *intakev1.ReferralSubmission) *intakev1.Referral {
	return &intakev1.Referral{
		Id:                r.ID,
		Reference:         r.Reference,
		Agency:            r.Agency,
		AgencyKind:        r.AgencyKind,
		ExternalReference: r.ExternalReference,
		Partnership:       r.Partnership,
		ReceivedAt:        timestamppb.New(r.ReceivedAt),
		Status:            statusToProto(r.Status),
		DecisionDue:       timestamppb.New(r.DecisionDue),
		Version:           r.Version,
		Submission:        sub,
	}
}

func statusToProto(s string) intakev1.ReferralStatus {
	if v, ok := intakev1.ReferralStatus_value[s]; ok {
		return intakev1.ReferralStatus(v)
	}
	return intakev1.ReferralStatus_REFERRAL_STATUS_UNSPECIFIED
}

func ackToProto(a acknowledgement) *intakev1.Acknowledgement {
	r := a.referral
	return &intakev1.Acknowledgement{
		ReferralId:        r.ID,
		Reference:         r.Reference,
		ExternalReference: r.ExternalReference,
		ReceivedAt:        timestamppb.New(r.ReceivedAt),
		Status:            statusToProto(r.Status),
		DecisionDue:       timestamppb.New(r.DecisionDue),
		Replay:            a.replay,
	}
}
