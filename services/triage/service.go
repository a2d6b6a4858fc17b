// Package triage is the hub's casework: the queue of referrals awaiting a human decision,
// most urgent first; claims and assignment; the decision itself (confirmed or overridden
// here, the one door for a human decision, by whoever holds the claim; rules recommends and
// records what triage decides); strategy discussions; information
// requests to partner agencies; closure with an outcome; professional disagreements; and the
// management information the partnership evaluates the hub by.
//
// Invariants:
//   - The case read model is built from intake's, rules' and notify's events, each applied in
//     the consumer's transaction with its inbox row; events may arrive in any order and any
//     number of times, and a decision never overwrites a newer version of itself.
//   - Each case's re-referral facts (the child's previous case within 12 months, and whether
//     it closed NFA or advice) are kept by triggers in the transaction of every change to a
//     child's cases, whatever the order of the events that bring them.
//   - Every change the service makes writes its event to the triage outbox in the same
//     transaction, so the bus (and the audit log) sees exactly the changes that committed.
//   - A case's version increases with every change; writes that name an older one are
//     refused, so two practitioners never silently overwrite each other.
package triage

import (
	"context"
	"errors"
	"fmt"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/calendar"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/peers"
	"github.com/mash-hub/mash/pkg/server"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// Event subjects the service publishes.
const (
	EventClaimed             = eventsv1.SubjectCaseClaimed
	EventReleased            = eventsv1.SubjectCaseReleased
	EventAssigned            = eventsv1.SubjectCaseAssigned
	EventDecided             = eventsv1.SubjectCaseDecided
	EventClosed              = eventsv1.SubjectCaseClosed
	EventStrategyRecorded    = eventsv1.SubjectCaseStrategyRecorded
	EventResearchRequested   = eventsv1.SubjectResearchRequested
	EventResearchAnswered    = eventsv1.SubjectResearchAnswered
	EventDisagreementRaised  = eventsv1.SubjectDisagreementRaised
	EventDisagreementEscal   = eventsv1.SubjectDisagreementEscalated
	EventDisagreementResolve = eventsv1.SubjectDisagreementResolved
)

// EventDecisionMade carries a practitioner's decision (confirmed or overridden) to rules,
// notify and intake; triage is its only publisher.
const EventDecisionMade = eventsv1.SubjectDecisionMade

// EventRecommended is the rules' recommendation, which triage projects onto the case.
const EventRecommended = eventsv1.SubjectRecommendationMade

// EventResearchAnswerReceived is published by notify when an agency answers an
// information request on its own channel; triage records the answer.
const EventResearchAnswerReceived = eventsv1.SubjectResearchAnswerReceived

// Defaults.
const (
	DefaultClaimTimeout = 30 * time.Minute
	DefaultSweepEvery   = time.Minute
)

// DefaultDisagreementDays are the working days each disagreement stage has, in stage order:
// practitioner, team manager, senior safeguarding manager, partnership.
var DefaultDisagreementDays = [4]int{2, 2, 5, 10}

// Deps are what the triage service needs from the process that runs it.
type Deps struct {
	Pool     *pgxpool.Pool
	JS       jetstream.JetStream
	Calendar *calendar.Calendar
	Log      *zap.Logger
	Events   *events.Metrics
	// Reconcile sets the age and interval of the reconciler (Schema and Checks are triage's).
	Reconcile events.ReconcilerConfig
	Registry  prometheus.Registerer
	Now       func() time.Time
	// Peers reaches the rules service, which keeps the full decision (fired rules, facts).
	Peers *peers.Book
	// ClaimTimeout is how long a claim holds unless renewed. Default 30 minutes.
	ClaimTimeout time.Duration
	// DisagreementDays overrides the working days of each disagreement stage (zero: the
	// default for that stage).
	DisagreementDays [4]int
	// SweepEvery is how often lapsed claims are released and overdue disagreement stages
	// escalated. Default 1 minute.
	SweepEvery time.Duration
	// Cipher seals the personal data in this service's events under each case's key and
	// opens the events it consumes (pkg/casekeys); nil leaves payloads clear.
	Cipher events.PayloadCipher
	// Retention runs the retention schedule daily when enabled (off by default).
	Retention RetentionConfig
	// QualitySamplePercent is the share of decided cases offered to managers for quality
	// assurance review (1-100). Default DefaultQualitySamplePercent.
	QualitySamplePercent int
	// Staff is who may be given work (assignment): default the auth schema over Pool.
	Staff StaffDirectory
}

// Service is the triage service.
type Service struct {
	store      *store.Store
	relay      *events.Relay
	consumer   *events.Consumer
	notices    *events.Consumer
	safeguards *events.Safeguards
	calendar   *calendar.Calendar
	log        *zap.Logger
	now        func() time.Time
	peers      *peers.Book
	claimFor   time.Duration
	stageDays  [4]int
	sweepEvery time.Duration
	api        *grpcAPI
	records    *recordsAPI
	quality    *qualityAPI
	qaPercent  int
	cipher     events.PayloadCipher
	staff      StaffDirectory
	// retentionDaily and retentionFirst: Deps.Retention.
	retentionDaily bool
	retentionFirst time.Duration
}

// New validates deps and builds the service.
func New(d Deps) (*Service, error) {
	switch {
	case d.Pool == nil, d.JS == nil, d.Calendar == nil, d.Log == nil:
		return nil, errors.New("triage.New: pool, JetStream, calendar and logger are required")
	case d.Peers == nil:
		return nil, errors.New("triage.New: a peer address book is required (cases show the rules service's decision)")
	case d.ClaimTimeout < 0:
		return nil, fmt.Errorf("triage.New: claim timeout %s is negative", d.ClaimTimeout)
	}
	s := &Service{cipher: d.Cipher, store: store.New(d.Pool), calendar: d.Calendar, log: d.Log, now: d.Now, peers: d.Peers,
		claimFor: d.ClaimTimeout, stageDays: DefaultDisagreementDays, sweepEvery: d.SweepEvery,
		retentionDaily: d.Retention.Daily, retentionFirst: d.Retention.FirstRunAfter}
	if d.Retention.FirstRunAfter < 0 {
		return nil, fmt.Errorf("triage.New: retention first run after %s is negative", d.Retention.FirstRunAfter)
	}
	if s.now == nil {
		s.now = time.Now
	}
	switch s.qaPercent = d.QualitySamplePercent; {
	case s.qaPercent == 0:
		s.qaPercent = DefaultQualitySamplePercent
	case s.qaPercent < 0 || s.qaPercent > 100:
		return nil, fmt.Errorf("triage.New: quality sample of %d%% is not between 1 and 100", d.QualitySamplePercent)
	}
	if s.staff = d.Staff; s.staff == nil {
		s.staff = auth.NewStore(d.Pool) // the auth schema lives in the same database
	}
	if s.claimFor == 0 {
		s.claimFor = DefaultClaimTimeout
	}
	if s.sweepEvery <= 0 {
		s.sweepEvery = DefaultSweepEvery
	}
	for i, n := range d.DisagreementDays {
		if n < 0 {
			return nil, fmt.Errorf("triage.New: disagreement stage %d: %d working days is negative", i+1, n)
		}
		if n > 0 {
			s.stageDays[i] = n
		}
	}
	var err error
	if s.relay, err = events.NewRelay(d.Pool, d.JS, events.RelayConfig{Schema: store.Schema}, d.Log.Named("relay"), d.Events); err != nil {
		return nil, fmt.Errorf("triage.New: %w", err)
	}
	handlers := s.handlers()
	if err := handlers.Err(); err != nil {
		return nil, fmt.Errorf("triage.New: %w", err)
	}
	s.consumer, err = events.NewConsumer(d.Pool, d.JS, events.StreamName, events.ConsumerConfig{
		Schema: store.Schema, Durable: consumerDurable, Cipher: d.Cipher, SkipErased: true,
		// The subjects it has handlers for: the catalogue's, registered with the router.
		FilterSubjects: handlers.Subjects(),
		// Projecting may emit an event (a recorded channel answer): publish it at once.
		AfterCommit: s.relay.Wake,
		// Projections are idempotent and order-free, so events that piled up are applied
		// in batches: one commit for many.
		BatchSize: 32, MaxAckPending: 256,
	}, handlers.Handle, d.Log.Named("consumer"), d.Events)
	if err != nil {
		return nil, fmt.Errorf("triage.New: %w", err)
	}
	notices := s.noticeHandlers()
	if err := notices.Err(); err != nil {
		return nil, fmt.Errorf("triage.New: %w", err)
	}
	s.notices, err = events.NewConsumer(d.Pool, d.JS, events.StreamName, events.ConsumerConfig{
		Schema: store.Schema, Durable: noticesDurable, Cipher: d.Cipher, SkipErased: true,
		FilterSubjects: notices.Subjects(),
		// Several events per notification, each an upsert that any order gives the same
		// row: large batches, sent in one round trip.
		BatchSize: 64, MaxAckPending: 512, BatchScope: noticesInOneRoundTrip,
	}, notices.Handle, d.Log.Named("notices"), d.Events)
	if err != nil {
		return nil, fmt.Errorf("triage.New: %w", err)
	}
	rc := d.Reconcile
	rc.Schema = store.Schema
	if s.safeguards, err = events.NewSafeguards(d.Pool, d.JS, rc, d.Log, d.Registry, d.Events); err != nil {
		return nil, fmt.Errorf("triage.New: %w", err)
	}
	s.api = &grpcAPI{svc: s}
	s.records = &recordsAPI{svc: s}
	s.quality = &qualityAPI{svc: s}
	return s, nil
}

// Migrate brings the triage schema up to date.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	migs, err := store.Migrations()
	if err != nil {
		return err
	}
	return db.Migrate(ctx, pool, store.Schema, migs)
}

// Register adds the service's gRPC API and HTTP routes.
func (s *Service) Register(srv *server.Server) {
	triagev1.RegisterTriageServiceServer(srv.GRPC(), s.api)
	triagev1.RegisterRecordsServiceServer(srv.GRPC(), s.records)
	registerHTTP(srv, s.api, s.records)
	registerQualityHTTP(srv, s.quality)
}

// API returns the service's gRPC API as a plain value, for in-process callers and
// benchmarks; the caller's identity must be in the context (auth.WithIdentity).
func (s *Service) API() triagev1.TriageServiceServer { return s.api }

// Records returns the search and child-record API as a plain value, like API.
func (s *Service) Records() triagev1.RecordsServiceServer { return s.records }

// Quality returns the quality assurance API as a plain value, like API.
func (s *Service) Quality() triagev1.QualityServiceServer { return s.quality }

// Run projects events, publishes the outbox and sweeps claims and disagreements until ctx
// ends.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.relay.Run(ctx) })
	g.Go(func() error { return s.consumer.Run(ctx) })
	g.Go(func() error { return s.notices.Run(ctx) })
	g.Go(func() error { return s.safeguards.Run(ctx) })
	g.Go(func() error { return s.runSweeps(ctx) })
	if s.retentionDaily {
		g.Go(func() error { return s.runRetentionDaily(ctx) })
	}
	return g.Wait()
}

func (s *Service) runSweeps(ctx context.Context) error {
	t := time.NewTicker(s.sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("sweep", zap.Error(err))
		}
	}
}

// SweepResult is what one sweep did.
type SweepResult struct {
	ClaimsReleased         int
	DisagreementsEscalated int
}

// sweepBatch bounds the rows one sweep transaction touches.
const sweepBatch = 500

// Sweep releases lapsed claims (with a mash.case.released event each) and escalates
// disagreement stages past their deadline (outcome "deadline passed"), as at the service's
// clock. Run calls it periodically; tests call it with an injected clock.
func (s *Service) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	for {
		n, err := s.releaseLapsedClaims(ctx)
		res.ClaimsReleased += n
		if err != nil {
			return res, err
		}
		if n < sweepBatch {
			break
		}
	}
	n, err := s.escalateOverdue(ctx)
	res.DisagreementsEscalated = n
	if res.ClaimsReleased+res.DisagreementsEscalated > 0 {
		s.relay.Wake()
		s.log.Info("sweep", zap.Int("claims_released", res.ClaimsReleased), zap.Int("disagreements_escalated", res.DisagreementsEscalated))
	}
	return res, err
}
