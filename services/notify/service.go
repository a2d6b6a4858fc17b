// Package notify tells every agency that must act on a decision, proves each share, and
// escalates when no one answers. It consumes referral and triage events, keeps one
// notification per agency per decision version (so redelivery never sends twice), delivers
// through signed webhooks, NATS subjects or email with retries and per-agency limits, takes
// acknowledgements by API or on the bus, and escalates unacknowledged Red and Amber
// notifications to the partnership's duty manager. Every state change is an event, so the
// audit trail shows who was told what, when, why and on what lawful basis.
package notify

import (
	"context"
	"errors"
	"fmt"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/calendar"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/server"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	"github.com/mash-hub/mash/services/notify/channel"
	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/seal"
	"github.com/mash-hub/mash/services/notify/store"
)

// Event subjects the service publishes.
const (
	EventSent         = eventsv1.SubjectNotificationSent
	EventDelivered    = eventsv1.SubjectNotificationDelivered
	EventAcknowledged = eventsv1.SubjectNotificationAcknowledged
	EventFailed       = eventsv1.SubjectNotificationFailed
	EventEscalated    = eventsv1.SubjectNotificationEscalated
	EventRetried      = eventsv1.SubjectNotificationRetried
	// EventAnswerReceived hands triage an agency's answer to an information request, heard
	// on the agency's own channel.
	EventAnswerReceived = eventsv1.SubjectResearchAnswerReceived
)

// Events the service consumes.
const (
	subjectReceived = eventsv1.SubjectReferralReceived
	// The rules' recommendation, and the decision a practitioner made through triage.
	subjectRecommended  = eventsv1.SubjectRecommendationMade
	subjectDecisionMade = eventsv1.SubjectDecisionMade
	// What a case may share: a manager's authorisation to share without consent, and the
	// family's consent as staff record it.
	subjectSharingAuthorised = eventsv1.SubjectSharingAuthorised
	subjectSharingRevoked    = eventsv1.SubjectSharingRevoked
	subjectConsentChanged    = eventsv1.SubjectConsentChanged
	// A case closed with its outcome, which the referrer is told.
	subjectCaseClosed = eventsv1.SubjectCaseClosed
	// An information request (MASH research) to an agency, and its answer by any route.
	subjectResearchRequested = eventsv1.SubjectResearchRequested
	subjectResearchAnswered  = eventsv1.SubjectResearchAnswered
	// A professional disagreement raised, or escalated to its next stage: the stage's owner
	// is told.
	subjectDisagreementRaised    = eventsv1.SubjectDisagreementRaised
	subjectDisagreementEscalated = eventsv1.SubjectDisagreementEscalated
	// A professional disagreement resolved: the agency that raised it is told.
	subjectDisagreementResolved = eventsv1.SubjectDisagreementResolved
	// A lead professional named for a decided case: the lead agency is told.
	subjectLeadProfessionalNamed = eventsv1.SubjectCaseLeadProfessionalNamed
)

// consumedSubjects are the events notify's durable consumer takes. events.Consumer applies
// them with CreateOrUpdateConsumer at every start, so a deployment whose consumer was made
// with fewer subjects has its filter widened in place (nats-server 2.10+ updates
// FilterSubjects on a durable consumer); the consumer keeps its position, so events of a
// newly added subject published before the upgrade are not delivered to it.
var consumedSubjects = []string{subjectReceived, subjectRecommended, subjectDecisionMade, subjectSharingAuthorised, subjectSharingRevoked,
	subjectConsentChanged, subjectCaseClosed, subjectResearchRequested, subjectResearchAnswered,
	subjectDisagreementRaised, subjectDisagreementEscalated, subjectDisagreementResolved, subjectLeadProfessionalNamed}

// DefaultPartnership's directory serves partnerships that have none of their own, as the
// rules service's default pack does.
const DefaultPartnership = "default"

// DeliveryConfig tunes delivery. Zero values take the defaults.
type DeliveryConfig struct {
	// MaxAttempts before a notification is dead-lettered. Default 8.
	MaxAttempts int
	// BaseBackoff is the delay after the first failure; it doubles each time, with jitter,
	// up to MaxBackoff. Defaults 2s and 5m.
	BaseBackoff, MaxBackoff time.Duration
	// SendTimeout bounds one attempt. Default 10s.
	SendTimeout time.Duration
	// InFlight bounds the notifications claimed and not yet recorded, across all agencies.
	// Default DefaultInFlight.
	InFlight int
	// Poll is how often the worker looks for due retries when nothing wakes it. Default 250ms.
	Poll time.Duration
	// EscalationEvery is how often overdue acknowledgements are swept. Default 30s.
	EscalationEvery time.Duration
}

// DefaultInFlight is how many claimed notifications may be unrecorded at once. Each holds
// its slot through its send and the group commit of its result, which under load takes
// longer than the send: with 64 slots a busy hub spent them waiting on commits, and at 50
// referrals a second (about 500 messages) its least urgent messages, the referrers'
// receipts, waited 15 s for a slot. Agencies are still sent no more than their own
// concurrency at once.
const DefaultInFlight = 256

// MaxInFlight bounds InFlight: each slot is a goroutine holding a message until recorded.
const MaxInFlight = 4096

func (c DeliveryConfig) withDefaults() DeliveryConfig {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 8
	}
	if c.BaseBackoff == 0 {
		c.BaseBackoff = 2 * time.Second
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Minute
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = 10 * time.Second
	}
	if c.InFlight == 0 {
		c.InFlight = DefaultInFlight
	}
	if c.Poll == 0 {
		c.Poll = 250 * time.Millisecond
	}
	if c.EscalationEvery == 0 {
		c.EscalationEvery = 30 * time.Second
	}
	return c
}

// Deps are what the notify service needs from the process that runs it.
type Deps struct {
	Pool     *pgxpool.Pool
	JS       jetstream.JetStream
	Calendar *calendar.Calendar
	Log      *zap.Logger
	Events   *events.Metrics
	Registry prometheus.Registerer
	// Channels delivers; nil builds webhook, NATS and (when Email.Addr is set) email.
	Channels *channel.Set
	Email    channel.EmailConfig
	// DirectoryFile, when set, is loaded into the directory at start.
	DirectoryFile string
	Delivery      DeliveryConfig
	Now           func() time.Time
	// Reconcile sets the age and interval of the reconciler (Schema and Checks are notify's).
	Reconcile events.ReconcilerConfig
	// SecretKey (32 bytes) seals agencies' webhook secrets at rest (MASH_NOTIFY_SECRET_KEY).
	// Required: without it secrets would be stored in clear.
	SecretKey []byte
	// ChangeTTL is how long a proposed directory change waits for a second manager.
	// Default DefaultChangeTTL.
	ChangeTTL time.Duration
	// Cipher seals the personal data in this service's events under each case's key and
	// opens the events it consumes (pkg/casekeys); nil leaves payloads clear.
	Cipher events.PayloadCipher
	// Probe is the readiness connection to notify's login (db.OpenProbe): the backlog gauges
	// are counted through it at scrape time, so they are there while every work connection
	// is busy. nil: Pool.
	Probe *pgxpool.Pool
}

// Service is the notify service.
type Service struct {
	store      *store.Store
	relay      *events.Relay
	consumer   *events.Consumer
	erasure    *events.Consumer
	acks       *ackListener
	answers    *answerListener
	safeguards *events.Safeguards
	channels   *channel.Set
	calendar   *calendar.Calendar
	log        *zap.Logger
	now        func() time.Time
	cfg        DeliveryConfig
	dirFile    string
	metrics    *metrics
	dirMu      sync.Mutex
	dirCache   map[string]cachedDirectory
	box        *seal.Box
	changeTTL  time.Duration

	wake     chan struct{}
	results  chan recording
	agencies agencySlots
	inflight chan struct{}
	sending  sync.WaitGroup
	// slotsFull is set when the last claim may have left due notifications unclaimed for
	// want of a sending slot; the next attempt to finish clears it and wakes the worker.
	slotsFull atomic.Bool
	cipher    events.PayloadCipher
	// js deletes an erased case's messages from the agency stream.
	js jetstream.JetStream
}

// New validates deps and builds the service.
func New(d Deps) (*Service, error) {
	if d.Pool == nil || d.JS == nil || d.Calendar == nil || d.Log == nil {
		return nil, errors.New("notify.New: pool, JetStream, calendar and logger are required")
	}
	box, err := seal.New(d.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("notify.New: SecretKey (MASH_NOTIFY_SECRET_KEY): %w", err)
	}
	s := &Service{cipher: d.Cipher, store: store.New(d.Pool), calendar: d.Calendar, log: d.Log, now: d.Now, cfg: d.Delivery.withDefaults(),
		dirFile: d.DirectoryFile, channels: d.Channels, wake: make(chan struct{}, 1), results: make(chan recording),
		box: box, changeTTL: d.ChangeTTL, js: d.JS}
	if s.changeTTL == 0 {
		s.changeTTL = DefaultChangeTTL
	}
	if s.changeTTL < time.Minute {
		return nil, fmt.Errorf("notify.New: ChangeTTL %s: must be at least a minute", s.changeTTL)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.inflight = make(chan struct{}, s.cfg.InFlight)
	s.agencies.waitBudget = s.waitBudget()
	s.dirCache = map[string]cachedDirectory{}
	if s.channels == nil {
		chs := []channel.Channel{channel.NewWebhook(nil, time.Now), channel.NewNATS(d.JS)}
		if d.Email.Addr != "" {
			em, err := channel.NewEmail(d.Email)
			if err != nil {
				return nil, fmt.Errorf("notify.New: %w", err)
			}
			chs = append(chs, em)
		}
		s.channels = channel.NewSet(chs...)
	}
	scrape := d.Probe
	if scrape == nil {
		scrape = d.Pool
	}
	s.metrics = newMetrics(d.Registry, scrape, s.now)
	if s.relay, err = events.NewRelay(d.Pool, d.JS, events.RelayConfig{Schema: store.Schema}, d.Log.Named("relay"), d.Events); err != nil {
		return nil, fmt.Errorf("notify.New: %w", err)
	}
	handlers := s.handlers()
	if err := handlers.Err(); err != nil {
		return nil, fmt.Errorf("notify.New: %w", err)
	}
	s.consumer, err = events.NewConsumer(d.Pool, d.JS, events.StreamName, events.ConsumerConfig{
		Schema: store.Schema, Durable: consumerDurable, FilterSubjects: consumedSubjects,
		AfterCommit: s.afterCommit, Concurrency: 16, MaxAckPending: 256, Cipher: d.Cipher, SkipErased: true,
		// Handlers only write rows (deliveries happen after commit), so a backlog is applied
		// in batches.
		BatchSize: 16,
	}, handlers.Handle, d.Log.Named("consumer"), d.Events)
	if err != nil {
		return nil, fmt.Errorf("notify.New: %w", err)
	}
	s.erasure, err = events.NewErasureConsumer(d.Pool, d.JS, events.ErasureConsumerConfig{Schema: store.Schema, Durable: erasureDurable,
		Cipher: d.Cipher, AfterCommit: s.afterCommit}, s.eraseCase, d.Log.Named("erasure"), d.Events)
	if err != nil {
		return nil, fmt.Errorf("notify.New: %w", err)
	}
	s.acks = &ackListener{svc: s, js: d.JS, log: d.Log.Named("acks")}
	s.answers = &answerListener{svc: s, js: d.JS, log: d.Log.Named("answers")}
	rc := d.Reconcile
	rc.Schema = store.Schema
	if s.safeguards, err = events.NewSafeguards(d.Pool, d.JS, rc, d.Log, d.Registry, d.Events); err != nil {
		return nil, fmt.Errorf("notify.New: %w", err)
	}
	return s, nil
}

// Migrate brings the notify schema up to date.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	migs, err := store.Migrations()
	if err != nil {
		return err
	}
	return db.Migrate(ctx, pool, store.Schema, migs)
}

// Register adds the service's gRPC API and HTTP routes.
func (s *Service) Register(srv *server.Server) {
	api := &grpcAPI{svc: s}
	notifyv1.RegisterNotifyServiceServer(srv.GRPC(), api)
	inbox := &inboxAPI{api: api}
	notifyv1.RegisterAgencyInboxServiceServer(srv.GRPC(), inbox)
	registerHTTP(srv, api)
	registerInboxHTTP(srv, inbox)
}

// Run loads the directory file, then consumes events, delivers, sweeps for overdue
// acknowledgements and listens for acknowledgements on the bus until ctx ends. In-flight
// deliveries finish (within their timeout) before it returns.
func (s *Service) Run(ctx context.Context) error {
	// Secrets written before they were sealed are sealed now, before anything reads them.
	n, err := store.SealClearSecrets(ctx, s.store.Pool(), s.box)
	if err != nil && ctx.Err() != nil {
		return nil // stopped while starting
	}
	if err != nil {
		return fmt.Errorf("notify: seal clear webhook secrets: %w", err)
	}
	if n > 0 {
		s.log.Info("sealed webhook secrets stored in clear", zap.Int("agencies", n))
	}
	if s.dirFile != "" {
		if err := s.LoadDirectoryFile(ctx, s.dirFile); err != nil {
			return err
		}
	}
	// The recorder outlives the other workers: in-flight attempts record their results
	// after ctx ends.
	recCtx, stopRecorder := context.WithCancel(context.WithoutCancel(ctx))
	recorderDone := make(chan struct{})
	go func() { s.recordLoop(recCtx); close(recorderDone) }()
	defer func() { stopRecorder(); <-recorderDone }()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.relay.Run(gctx) })
	g.Go(func() error { return s.consumer.Run(gctx) })
	g.Go(func() error { return s.erasure.Run(gctx) })
	g.Go(func() error { return s.acks.run(gctx) })
	g.Go(func() error { return s.answers.run(gctx) })
	g.Go(func() error { return s.safeguards.Run(gctx) })
	g.Go(func() error { s.deliverLoop(gctx); return nil })
	g.Go(func() error { s.escalationLoop(gctx); return nil })
	err = g.Wait()
	s.sending.Wait()
	return err
}

// afterCommit wakes the relay (events were written) and the delivery worker (notifications
// may be due).
func (s *Service) afterCommit() {
	s.relay.Wake()
	s.Wake()
}

// Wake asks the delivery worker to look for due notifications now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// LoadDirectoryFile reads a directory file and stores every partnership and agency in it,
// recorded as loaded from that file. Entries not in the file are left as they are.
func (s *Service) LoadDirectoryFile(ctx context.Context, path string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("MASH_NOTIFY_DIRECTORY: %w", err)
	}
	f, problems := directory.Parse(src, os.Getenv)
	if len(problems) > 0 {
		return fmt.Errorf("MASH_NOTIFY_DIRECTORY %s: %w", path, errors.Join(asErrors(problems)...))
	}
	return s.LoadDirectory(ctx, f, "file:"+path)
}

// LoadDirectory stores a parsed directory in one transaction. Partnership settings apply at
// once. A partnership with no agencies yet is bootstrapped: every agency of the file applies
// directly. Otherwise the file is held to the four-eyes rule like the API: a new agency, or a
// change to where an existing one's notifications go (or its secret), becomes a pending
// change proposed by the file (by), for a manager to approve; the rest applies at once. A
// file that repeats a change already pending proposes nothing new; one that differs from a
// pending change is logged and left for the managers.
func (s *Service) LoadDirectory(ctx context.Context, f directory.File, by string) error {
	proposed, skipped := 0, 0
	err := pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		proposed, skipped = 0, 0
		bootstrap := map[string]bool{}
		for _, p := range f.Partnerships {
			if err := store.PutPartnership(ctx, tx, p, by, "loaded from the directory file"); err != nil {
				return err
			}
		}
		for _, a := range f.Agencies {
			boot, ok := bootstrap[a.Partnership]
			if !ok {
				existing, err := store.AgenciesIn(ctx, tx, nil, a.Partnership)
				if err != nil {
					return err
				}
				boot = len(existing) == 0
				bootstrap[a.Partnership] = boot
			}
			if boot {
				if _, err := store.PutAgency(ctx, tx, s.box, a, by, "loaded from the directory file"); err != nil {
					return err
				}
				continue
			}
			_, _, p, err := s.changeAgency(ctx, tx, proposer{actor: auth.Actor{ID: by, Role: auth.ActorRoleSystem}}, a, a.Secret, "loaded from the directory file")
			switch {
			case errors.Is(err, store.ErrPendingExists):
				skipped++
				if p.ProposedBy != by || !sameChanges(p.Changes, routingChanges(nil, a, false)) {
					s.log.Warn("directory file changes an agency that has a pending change: not proposed again", zap.String("agency", a.ID),
						zap.String("partnership", a.Partnership), zap.String("pending_change_id", p.ID))
				}
			case err != nil:
				return err
			case p != nil:
				proposed++
				s.log.Warn("directory file changes where an agency's notifications go: proposed for a manager's approval, not applied",
					zap.String("agency", a.ID), zap.String("partnership", a.Partnership), zap.String("change_id", p.ID))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load directory: %w", err)
	}
	s.directoryChanged()
	s.relay.Wake()
	s.log.Info("directory loaded", zap.String("source", by), zap.Int("partnerships", len(f.Partnerships)), zap.Int("agencies", len(f.Agencies)),
		zap.Int("changes_proposed", proposed), zap.Int("agencies_with_pending_changes", skipped))
	return nil
}

// sameChanges reports whether a pending change already proposes what the file says: the
// same fields to the same values (secrets compare by presence only).
func sameChanges(pending, file []store.FieldChange) bool {
	after := map[string]string{}
	for _, c := range file {
		after[c.Field] = c.After
	}
	for _, c := range pending {
		if c.Field != "secret" && after[c.Field] != c.After {
			return false
		}
	}
	return true
}

func asErrors(ps []directory.Problem) []error {
	out := make([]error, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out
}

// directoryChanged drops every cached copy of the directory in this process.
func (s *Service) directoryChanged() {
	s.dirMu.Lock()
	clear(s.dirCache)
	s.dirMu.Unlock()
}
