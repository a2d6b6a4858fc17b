// Package rules routes every referral to an intervention level, an urgency (RAG) and the
// agencies that must act, by the partnership's active rule pack, and keeps each decision
// with the pack version, the rules that fired and the facts they saw, so it can be explained
// and re-run. The machine's decision is a recommendation (mash.recommendation.made): a
// practitioner confirms or overrides it through triage, the one door for a human decision,
// which holds the claim and the version check; rules records the decision triage publishes
// (mash.decision.made) and changes none itself.
package rules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/mash-hub/mash/pkg/calendar"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/server"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/rules/pack"
	"github.com/mash-hub/mash/services/rules/packs"
	"github.com/mash-hub/mash/services/rules/store"
)

// EventRecommended is the subject the service publishes: the rules' recommendation.
const EventRecommended = eventsv1.SubjectRecommendationMade

// EventDecisionMade is triage's record of a practitioner's decision, which the service
// consumes to keep the decision it serves current.
const EventDecisionMade = eventsv1.SubjectDecisionMade

// DefaultPartnership holds the built-in pack, used by partnerships without a pack of their
// own.
const DefaultPartnership = "default"

// Deps are what the rules service needs from the process that runs it.
type Deps struct {
	Pool     *pgxpool.Pool
	JS       jetstream.JetStream
	Calendar *calendar.Calendar
	Log      *zap.Logger
	Events   *events.Metrics
	Now      func() time.Time
	// Reconcile sets the age and interval of the reconciler (Schema and Checks are rules').
	Reconcile events.ReconcilerConfig
	Registry  prometheus.Registerer
	// Cipher seals the personal data in this service's events under each case's key and
	// opens the events it consumes (pkg/casekeys); nil leaves payloads clear.
	Cipher events.PayloadCipher
}

// Service is the rules service.
type Service struct {
	store      *store.Store
	relay      *events.Relay
	consumer   *events.Consumer
	decisions  *events.Consumer
	children   *events.Consumer
	notified   *events.Consumer
	erasure    *events.Consumer
	safeguards *events.Safeguards
	calendar   *calendar.Calendar
	log        *zap.Logger
	now        func() time.Time

	compiled sync.Map // pack id -> *pack.Compiled; packs are immutable once stored
	cipher   events.PayloadCipher
}

// New validates deps and builds the service.
func New(d Deps) (*Service, error) {
	switch {
	case d.Pool == nil, d.JS == nil, d.Calendar == nil, d.Log == nil:
		return nil, errors.New("rules.New: pool, JetStream, calendar and logger are required")
	}
	s := &Service{cipher: d.Cipher, store: store.New(d.Pool), calendar: d.Calendar, log: d.Log, now: d.Now}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.relay, err = events.NewRelay(d.Pool, d.JS, events.RelayConfig{Schema: store.Schema}, d.Log.Named("relay"), d.Events); err != nil {
		return nil, fmt.Errorf("rules.New: %w", err)
	}
	// Each consumer is a router of typed handlers, and takes the subjects it registers.
	referrals, decisions, children, notified := s.routers()
	for _, r := range []*events.Router{referrals, decisions, children, notified} {
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("rules.New: %w", err)
		}
	}
	s.consumer, err = events.NewConsumer(d.Pool, d.JS, events.StreamName, events.ConsumerConfig{
		Schema: store.Schema, Durable: referralsDurable, SkipErased: true, FilterSubjects: referrals.Subjects(),
		AfterCommit: s.relay.Wake, Cipher: d.Cipher,
		// A backlog of referrals is decided in batches, one commit for many.
		BatchSize: 16, MaxAckPending: 128,
	}, referrals.Handle, d.Log.Named("consumer"), d.Events)
	if err != nil {
		return nil, fmt.Errorf("rules.New: %w", err)
	}
	s.decisions, err = events.NewConsumer(d.Pool, d.JS, events.StreamName, events.ConsumerConfig{
		Schema: store.Schema, Durable: decisionsDurable, SkipErased: true, FilterSubjects: decisions.Subjects(), Cipher: d.Cipher,
	}, decisions.Handle, d.Log.Named("decisions"), d.Events)
	if err != nil {
		return nil, fmt.Errorf("rules.New: %w", err)
	}
	s.children, err = events.NewConsumer(d.Pool, d.JS, events.StreamName, events.ConsumerConfig{
		Schema: store.Schema, Durable: childrenDurable, SkipErased: true, FilterSubjects: children.Subjects(), Cipher: d.Cipher,
	}, children.Handle, d.Log.Named("children"), d.Events)
	if err != nil {
		return nil, fmt.Errorf("rules.New: %w", err)
	}
	s.notified, err = events.NewConsumer(d.Pool, d.JS, events.StreamName, events.ConsumerConfig{
		Schema: store.Schema, Durable: notifiedDurable, SkipErased: true, Cipher: d.Cipher,
		FilterSubjects: notified.Subjects(), BatchSize: 32, MaxAckPending: 256, BatchScope: markNotifiedTogether,
	}, notified.Handle, d.Log.Named("notified"), d.Events)
	if err != nil {
		return nil, fmt.Errorf("rules.New: %w", err)
	}
	s.erasure, err = events.NewErasureConsumer(d.Pool, d.JS, events.ErasureConsumerConfig{Schema: store.Schema, Durable: erasureDurable, Cipher: d.Cipher},
		func(ctx context.Context, tx pgx.Tx, ev *eventsv1.CaseErased) error {
			return store.EraseDecision(ctx, tx, ev.GetReferralId())
		}, d.Log.Named("erasure"), d.Events)
	if err != nil {
		return nil, fmt.Errorf("rules.New: %w", err)
	}
	rc := d.Reconcile
	rc.Schema, rc.Checks = store.Schema, []events.ReconcileCheck{{Name: "notification", Query: store.UnnotifiedSQL}}
	if s.safeguards, err = events.NewSafeguards(d.Pool, d.JS, rc, d.Log, d.Registry, d.Events); err != nil {
		return nil, fmt.Errorf("rules.New: %w", err)
	}
	return s, nil
}

// Migrate brings the rules schema up to date and installs the built-in default pack: stored
// once per version and activated for the default partnership, recorded as the system's act.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	migs, err := store.Migrations()
	if err != nil {
		return err
	}
	if err := db.Migrate(ctx, pool, store.Schema, migs); err != nil {
		return err
	}
	return installDefaultPack(ctx, store.New(pool))
}

func installDefaultPack(ctx context.Context, st *store.Store) error {
	src := packs.Default()
	c, problems := pack.Load(src)
	if len(problems) > 0 {
		return fmt.Errorf("built-in default pack is invalid: %v", problems[0])
	}
	p, err := st.PackByVersion(ctx, DefaultPartnership, c.Version)
	if errors.Is(err, store.ErrNotFound) {
		p, err = st.InsertPack(ctx, newPack(DefaultPartnership, c, src, "system"), nil)
		if errors.Is(err, store.ErrPackExists) { // another replica installed it first
			p, err = st.PackByVersion(ctx, DefaultPartnership, c.Version)
		}
	}
	if err != nil {
		return fmt.Errorf("install default pack: %w", err)
	}
	if p.Active {
		return nil
	}
	_, err = st.Activate(ctx, p.ID, "system", "built-in default pack "+c.Version+" installed with this release", nil)
	return err
}

func newPack(partnership string, c *pack.Compiled, src []byte, by string) store.Pack {
	sum := sha256.Sum256(src)
	return store.Pack{ID: uuid.Must(uuid.NewV7()).String(), Partnership: partnership, Version: c.Version,
		Description: c.Description, Source: string(src), SHA256: hex.EncodeToString(sum[:]), UploadedBy: by}
}

// Register adds the service's gRPC API and HTTP routes.
func (s *Service) Register(srv *server.Server) {
	api := &grpcAPI{svc: s}
	rulesv1.RegisterRulesServiceServer(srv.GRPC(), api)
	registerHTTP(srv, api)
}

// Run consumes referrals and publishes decisions until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.relay.Run(ctx) })
	g.Go(func() error { return s.consumer.Run(ctx) })
	g.Go(func() error { return s.decisions.Run(ctx) })
	g.Go(func() error { return s.children.Run(ctx) })
	g.Go(func() error { return s.notified.Run(ctx) })
	g.Go(func() error { return s.erasure.Run(ctx) })
	g.Go(func() error { return s.safeguards.Run(ctx) })
	return g.Wait()
}

// compiledPack returns the compiled form of a stored pack, compiling it once.
func (s *Service) compiledPack(p store.Pack) (*pack.Compiled, error) {
	if c, ok := s.compiled.Load(p.ID); ok {
		return c.(*pack.Compiled), nil
	}
	parsed, err := pack.Parse([]byte(p.Source))
	if err != nil {
		return nil, fmt.Errorf("stored pack %s (%s %s) no longer parses: %w", p.ID, p.Partnership, p.Version, err)
	}
	c, problems := pack.Compile(parsed)
	if len(problems) > 0 {
		return nil, fmt.Errorf("stored pack %s (%s %s) no longer compiles: %v", p.ID, p.Partnership, p.Version, problems[0])
	}
	s.compiled.Store(p.ID, c)
	return c, nil
}

// activePack returns the id and compiled form of the partnership's active pack, or the
// default partnership's, read through q (the pool, or the caller's transaction). Only the
// active pack's id is read each time; a pack's source is read and compiled once per process.
func (s *Service) activePack(ctx context.Context, q store.Querier, partnership string) (string, *pack.Compiled, error) {
	id, err := store.ActivePackID(ctx, q, partnership, DefaultPartnership)
	if err != nil {
		return "", nil, err
	}
	if c, ok := s.compiled.Load(id); ok {
		return id, c.(*pack.Compiled), nil
	}
	p, err := store.PackIn(ctx, q, id)
	if err != nil {
		return "", nil, err
	}
	c, err := s.compiledPack(p)
	return id, c, err
}
