package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/config"
	mashlog "github.com/mash-hub/mash/pkg/log"
	"github.com/mash-hub/mash/pkg/loopback"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	"github.com/mash-hub/mash/services/mash/demo"
)

// demoConfig is mash demo's own settings; the system it runs takes mash serve's settings
// from the environment (DATABASE_URL, MASH_DATA_DIR, MASH_NOTIFY_DIRECTORY, audit keys, ...).
type demoConfig struct {
	Days, Referrals int
	Seed            uint64
	Force, Once     bool
	LogLevel        string
}

// demoState is kept in MASH_DATA_DIR beside the JetStream store it belongs with, so a run
// that was stopped midway is resumed with the same plan, and scripts/run knows a demo is
// loaded.
type demoState struct {
	Seed      uint64    `json:"seed"`
	Days      int       `json:"days"`
	Referrals int       `json:"referrals"`
	End       time.Time `json:"end"`
	// Reached is the simulated time the run had reached: a resumed run starts there, so no
	// service sees its clock go back.
	Reached   time.Time `json:"reached"`
	Completed bool      `json:"completed"`
}

const demoStateFile = "demo-state.json"

const demoUsage = `usage: mash demo [flags]

Loads synthetic demo data: referrals over the last months, driven through every service's
API on a simulated clock, leaving a live triage queue and a history behind. It runs the
services itself on free loopback ports (stop any mash serve that uses the same MASH_DATA_DIR
first) and takes mash serve's settings from the environment.

flags:`

func parseDemoConfig(args []string) (demoConfig, error) {
	var c demoConfig
	fs := flag.NewFlagSet("mash demo", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), demoUsage)
		fs.PrintDefaults()
	}
	s := config.New(fs)
	days := s.Int("days", "MASH_DEMO_DAYS", 120, "days of history, ending now")
	referrals := s.Int("referrals", "MASH_DEMO_REFERRALS", 300, "how many referrals")
	seed := s.Int("seed", "MASH_DEMO_SEED", 1, "seed of the synthetic data: the same seed makes the same referrals")
	force := s.Bool("force", "MASH_DEMO_FORCE", false, "run even though the database already has referrals (resumes an interrupted demo of the same seed)")
	once := s.Bool("once", "MASH_DEMO_ONCE", false, "load the demo only if not loaded yet: resume an interrupted one, and do nothing when the database has referrals (for scripts/run)")
	lvl := s.String("log-level", "MASH_DEMO_LOG_LEVEL", "error", "log level of the services while the demo runs (escalations of the acknowledgements it leaves late are warnings)")
	if err := s.Parse(args); err != nil {
		return c, err
	}
	if len(fs.Args()) > 0 {
		return c, fmt.Errorf("mash demo takes no arguments (got %q); serve's settings come from the environment", fs.Args())
	}
	if *seed < 0 {
		return c, fmt.Errorf("MASH_DEMO_SEED %d: must not be negative", *seed)
	}
	c = demoConfig{Days: *days, Referrals: *referrals, Seed: uint64(*seed), Force: *force, Once: *once, LogLevel: *lvl}
	if err := demo.ValidateSize(c.Referrals, c.Days); err != nil {
		return c, fmt.Errorf("demo: %w (MASH_DEMO_REFERRALS, MASH_DEMO_DAYS)", err)
	}
	return c, nil
}

func demoCommand(ctx context.Context, args []string) error {
	dc, err := parseDemoConfig(args)
	if err != nil {
		return err
	}
	cfg, err := parseServeConfig(nil)
	if err != nil {
		return err
	}
	log, err := mashlog.New(dc.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	started := time.Now()

	// Every service runs here, whatever MASH_SERVICES says, on loopback ports of the demo's
	// own so it never meets a running mash's clients.
	if !slices.Contains(cfg.Services, "audit") {
		if cfg.Audit, err = auditConfig(); err != nil {
			return err
		}
	}
	cfg.Services, cfg.Peers, cfg.PprofAddr = serviceNames(), nil, ""
	// The demo plays months of casework through its own loopback listeners as fast as it
	// can: rate limits meant for outside callers would only slow it down.
	cfg.Limits.CredentialRate, cfg.Limits.AddressRate, cfg.Limits.FailedAuthRate = 0, 0, 0
	if cfg.GRPCAddr, err = loopback.FreeAddr(); err != nil {
		return fmt.Errorf("demo: gRPC address: %w", err)
	}
	if cfg.HTTPAddr, err = loopback.FreeAddr(); err != nil {
		return fmt.Errorf("demo: HTTP address: %w", err)
	}
	// The embedded NATS server keeps listening on MASH_NATS_LISTEN, the address mash serve's
	// embedded server takes: two servers on one JetStream store would corrupt it, and the
	// shared address makes the second of them fail to start instead.
	statePath := filepath.Join(cfg.DataDir, demoStateFile)
	state, hasState, err := readDemoState(statePath)
	if err != nil {
		return err
	}
	resume := hasState && !state.Completed && (dc.Once || (state.Seed == dc.Seed && state.Days == dc.Days && state.Referrals == dc.Referrals))
	var clocks switchClock
	if resume {
		// An interrupted demo goes on from where it was: its services never see the wall
		// clock, so nothing is stamped after the history it is still writing.
		dc.Seed, dc.Days, dc.Referrals = state.Seed, state.Days, state.Referrals
		clocks.use(demo.NewClock(latest(state.End.Add(-time.Duration(state.Days)*24*time.Hour), state.Reached)))
	}
	sys, err := startSystem(ctx, cfg, log, clocks.now)
	if err != nil {
		if cfg.NATSURL == "" && strings.Contains(err.Error(), "listen on") {
			return fmt.Errorf("%w\nis a mash serve running on this MASH_DATA_DIR? Stop it first: the demo writes the same JetStream store", err)
		}
		return err
	}
	defer sys.close()
	serveCtx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	ready, served := make(chan struct{}), make(chan error, 1)
	go func() { served <- sys.serve(serveCtx, ready) }()
	select {
	case <-ready:
	case err := <-served:
		return fmt.Errorf("demo: start services: %w", err)
	}
	// stop ends the services in serve's order and reports how that went.
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		stopServe()
		if err := <-served; !errors.Is(err, context.Canceled) {
			// A worker still starting up (notify loading its directory) ends cancelled.
			return err
		}
		return nil
	}
	defer stop() //nolint:errcheck

	conn, err := grpc.NewClient(cfg.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("demo: connect to %s: %w", cfg.GRPCAddr, err)
	}
	defer conn.Close()
	creds := &demoCredentials{store: sys.p.auth}
	defer creds.revoke(context.WithoutCancel(ctx), log)
	manager, err := creds.create(ctx, "rct-mash", "hub", auth.RoleManager)
	if err != nil {
		return err
	}
	known, err := knownReferrals(ctx, conn, manager)
	if err != nil {
		return err
	}
	hasReferrals := len(known) > 0
	switch {
	case dc.Once && hasReferrals && !resume:
		fmt.Fprintln(os.Stderr, "mash demo: the database already has referrals; no demo data loaded")
		return stop()
	case hasReferrals && !dc.Force && !dc.Once:
		return errors.New("demo: the database already has referrals; demo data goes into an empty database (use --force to add to it, or to resume an interrupted demo with the same flags)")
	}

	end := time.Now().UTC()
	if resume {
		end = state.End
	}
	plan, err := demo.Generate(demo.Params{Seed: dc.Seed, Referrals: dc.Referrals, Days: dc.Days, End: end, Calendar: sys.p.calendar})
	if err != nil {
		return err
	}
	if !resume {
		// From here the services live in the simulated past. Before, they ran on the wall
		// clock only to start and to answer whether the database was empty.
		clocks.use(demo.NewClock(plan.Start))
	}
	clock := clocks.current()
	state = demoState{Seed: dc.Seed, Days: dc.Days, Referrals: dc.Referrals, End: plan.End, Reached: clock.Now()}
	if err := writeDemoState(statePath, state); err != nil {
		return err
	}

	d := &demo.Driver{Conn: conn, Clock: clock, Calendar: sys.p.calendar, Log: log.Named("demo"), Manager: manager, Known: known, Wait: 30 * time.Second}
	if d.Agencies, d.LeadAgencies, err = creds.agencies(ctx, conn, manager, cfg.Notify.DirectoryFile != ""); err != nil {
		return err
	}
	for range 3 {
		tok, err := creds.create(ctx, "rct-mash", "hub", auth.RolePractitioner)
		if err != nil {
			return err
		}
		d.Practitioners = append(d.Practitioners, tok)
	}
	fmt.Fprintf(os.Stderr, "mash demo: playing %d synthetic referrals from %s to %s (seed %d)...\n", len(plan.Referrals),
		plan.Start.Format(time.DateOnly), plan.End.Format(time.DateOnly), dc.Seed)
	lastSaved, lastShown := state.Reached, state.Reached
	d.Progress = func(t time.Time) {
		if t.Sub(lastSaved) >= 6*time.Hour {
			lastSaved, state.Reached = t, t
			if err := writeDemoState(statePath, state); err != nil {
				log.Warn("demo state not saved", zap.Error(err))
			}
		}
		if t.Sub(lastShown) >= 30*24*time.Hour {
			lastShown = t
			fmt.Fprintf(os.Stderr, "mash demo: reached %s\n", t.Format(time.DateOnly))
		}
	}
	sum, runErr := d.Run(ctx, plan)
	state.Reached = clock.Now()
	if runErr == nil {
		state.Completed = true
	}
	if err := writeDemoState(statePath, state); err != nil && runErr == nil {
		runErr = err
	}
	stopErr := stop()
	if runErr != nil {
		return fmt.Errorf("demo: %w (run it again with --force to resume)", runErr)
	}
	if stopErr != nil {
		return fmt.Errorf("demo: stop services: %w", stopErr)
	}
	fmt.Fprintln(os.Stderr, summaryLine(sum, dc, time.Since(started)))
	return nil
}

// switchClock is the time every service of a demo reads: the wall clock until the demo
// sets its simulated clock, which the services were built before.
type switchClock struct {
	c atomic.Pointer[demo.Clock]
}

func (s *switchClock) use(c *demo.Clock)    { s.c.Store(c) }
func (s *switchClock) current() *demo.Clock { return s.c.Load() }

func (s *switchClock) now() time.Time {
	if c := s.c.Load(); c != nil {
		return c.Now()
	}
	return time.Now()
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func summaryLine(s demo.Summary, dc demoConfig, took time.Duration) string {
	decided := s.Confirmed + s.StepUps + s.StepDowns + s.RAGChange
	line := fmt.Sprintf("mash demo: done in %s: %d referrals over %d days (seed %d; %d new, %d already there",
		took.Round(time.Second), s.Submitted+s.Replayed, dc.Days, dc.Seed, s.Submitted, s.Replayed)
	if s.Conflicting > 0 {
		line += fmt.Sprintf(", %d skipped: their references hold other content", s.Conflicting)
	}
	line += fmt.Sprintf("); %d decided (%d confirmed, %d stepped up, %d stepped down, %d RAG changed), %d awaiting decision",
		decided, s.Confirmed, s.StepUps, s.StepDowns, s.RAGChange, s.Undecided)
	if s.Casework {
		line += fmt.Sprintf(", %d closed; %d information requests (%d answered), %d strategy discussions, %d disagreements (%d escalated, %d resolved)",
			s.Closed, s.InformationRequests, s.InformationAnswered, s.StrategyDiscussions, s.DisagreementsRaised, s.Escalations, s.DisagreementsResolved)
		line += fmt.Sprintf("; %d held back for want of consent (%d authorised by a manager to share without it)", s.SharingHeld, s.SharingAuthorised)
		line += fmt.Sprintf("; %d decisions reviewed for quality assurance", s.QualityReviews)
		line += fmt.Sprintf("; %d lead professionals named", s.LeadProfessionals)
		line += fmt.Sprintf("; %d child records merged", s.ChildMerges)
	} else {
		line += " (no triage service: nothing closed)"
	}
	return line + fmt.Sprintf("; %d acknowledgements", s.Acknowledged)
}

func readDemoState(path string) (demoState, bool, error) {
	var s demoState
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, false, nil
	}
	if err != nil {
		return s, false, fmt.Errorf("demo: read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		// A torn or foreign file: start afresh rather than refuse.
		return demoState{}, false, nil
	}
	return s, true, nil
}

// writeDemoState replaces the state file atomically, so a kill never leaves half of one.
func writeDemoState(path string, s demoState) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("demo: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

// knownReferrals lists the referrals already in the database by "agency/external
// reference", so a rerun of a plan finds what it sent before.
func knownReferrals(ctx context.Context, conn *grpc.ClientConn, token string) (map[string]string, error) {
	client := intakev1.NewIntakeServiceClient(conn)
	out := map[string]string{}
	page := ""
	for {
		cctx, cancel := demo.As(ctx, token)
		resp, err := client.ListReferrals(cctx, &intakev1.ListReferralsRequest{PageSize: 200, PageToken: page})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("demo: list referrals: %w", err)
		}
		for _, r := range resp.GetReferrals() {
			out[r.GetAgency()+"/"+r.GetExternalReference()] = r.GetId()
		}
		if page = resp.GetNextPageToken(); page == "" {
			return out, nil
		}
	}
}

// demoCredentials are the credentials a demo run makes; they are revoked when it ends, so
// none outlives the run (their tokens are never shown).
type demoCredentials struct {
	store *auth.Store
	ids   []string
}

func (c *demoCredentials) create(ctx context.Context, agency, kind string, role auth.Role) (string, error) {
	var partnerships []string
	if auth.HubRole(role) {
		// The demo hub serves both demo partnerships.
		partnerships = demo.Partnerships
	}
	cl, token, err := c.store.Create(ctx, agency, kind, role, "mash demo", partnerships...)
	if err != nil {
		return "", fmt.Errorf("demo: create %s credential for %s: %w", role, agency, err)
	}
	c.ids = append(c.ids, cl.ClientID)
	return token, nil
}

func (c *demoCredentials) revoke(ctx context.Context, log *zap.Logger) {
	for _, id := range c.ids {
		if err := c.store.Revoke(ctx, id, "mash demo"); err != nil {
			log.Warn("demo credential not revoked", zap.String("client_id", id), zap.Error(err))
		}
	}
}

// agencyKinds gives the credential kind of a directory agency by the roles it fills.
var agencyKinds = map[string]string{
	"police": "police", "gp": "health", "health_visitor": "health", "midwifery": "health", "paediatrics": "health",
	"school_nursing": "health", "camhs": "health", "adult_mental_health": "health", "school_dsl": "education",
	"education_welfare": "education", "housing": "housing", "youth_justice": "youth-justice",
	"domestic_abuse_services": "third-sector", "third_sector_family_support": "third-sector", "young_carers_service": "third-sector",
	"duty_manager": "hub", "emergency_duty": "local-authority",
}

// agencies makes a credential for every referring agency of the plan and every agency in
// the directory, so each acknowledges and answers for itself. The directory file is loaded
// by notify as it starts, so an empty directory is waited for when a file is configured.
// It also returns the agency filling each role that leads work after a decision.
func (c *demoCredentials) agencies(ctx context.Context, conn *grpc.ClientConn, manager string, fileConfigured bool) (map[string]string, map[string]string, error) {
	client := notifyv1.NewNotifyServiceClient(conn)
	var list []*notifyv1.Agency
	deadline := time.Now().Add(30 * time.Second)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		cctx, cancel := demo.As(ctx, manager)
		resp, err := client.ListAgencies(cctx, &notifyv1.ListAgenciesRequest{})
		cancel()
		if err != nil {
			return nil, nil, fmt.Errorf("demo: list agencies: %w", err)
		}
		if list = resp.GetAgencies(); len(list) > 0 {
			break
		}
		if !fileConfigured || time.Now().After(deadline) {
			return nil, nil, errors.New("demo: the agency directory is empty, so nobody would be told of a referral; set MASH_NOTIFY_DIRECTORY (scripts/demo/directory.yaml has demo agencies)")
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(delay):
		}
	}
	out, leads := map[string]string{}, map[string]string{}
	for _, a := range list {
		for _, r := range a.GetRoles() {
			if _, ok := leads[r]; !ok && (r == "childrens_social_care" || r == "early_help") {
				leads[r] = a.GetId()
			}
		}
	}
	for _, s := range demo.Sources() {
		tok, err := c.create(ctx, s.Agency, s.Kind, auth.RoleReferrer)
		if err != nil {
			return nil, nil, err
		}
		out[s.Agency] = tok
	}
	for _, a := range list {
		if _, ok := out[a.GetId()]; ok || auth.ValidateClient(a.GetId(), "hub", auth.RoleReferrer) != nil {
			continue
		}
		kind := "local-authority"
		for _, r := range a.GetRoles() {
			if k, ok := agencyKinds[r]; ok {
				kind = k
				break
			}
		}
		tok, err := c.create(ctx, a.GetId(), kind, auth.RoleReferrer)
		if err != nil {
			return nil, nil, err
		}
		out[a.GetId()] = tok
	}
	return out, leads, nil
}
