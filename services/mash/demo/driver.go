package demo

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mash-hub/mash/pkg/calendar"
	intakev1 "github.com/mash-hub/mash/proto/mash/intake/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// Driver plays a Plan against running services, as the referring agencies, the agencies
// told and the hub's staff would, each with their own credential.
type Driver struct {
	// Conn reaches every service's gRPC API.
	Conn     grpc.ClientConnInterface
	Clock    *Clock
	Calendar *calendar.Calendar
	Log      *zap.Logger
	// Agencies maps an agency id to its credential: every referring agency of the plan, and
	// the agencies that acknowledge notifications and answer information requests.
	Agencies map[string]string
	// LeadAgencies maps an agency role (childrens_social_care, early_help) to the agency of
	// the directory that fills it, for naming lead professionals after decisions.
	LeadAgencies map[string]string
	// Practitioners decide and work cases; Manager escalates and resolves disagreements and
	// records acknowledgements given by telephone.
	Practitioners []string
	Manager       string
	// Known maps "agency/external reference" to the referral id of referrals already in the
	// database: a resumed run does not send them again (intake would judge dates in them
	// against a later clock than they were made for).
	Known map[string]string
	// Wait bounds each wait for an asynchronous effect (a decision, a notification).
	Wait time.Duration
	// Progress, when set, is told the simulated time after every step.
	Progress func(time.Time)
}

// Summary counts what a run did.
type Summary struct {
	// Casework says the triage service answered; without it the run stops at the rules'
	// confirm and override, and nothing is closed.
	Casework                                 bool
	Submitted, Replayed, Conflicting         int
	Confirmed, StepUps, StepDowns, RAGChange int
	Undecided, Closed                        int
	Acknowledged, AckedByPhone               int
	InformationRequests, InformationAnswered int
	StrategyDiscussions                      int
	DisagreementsRaised, Escalations         int
	DisagreementsResolved                    int
	// SharingHeld counts decided cases whose family had not consented, so nothing left the
	// hub; SharingAuthorised those a manager then authorised to share without consent.
	SharingHeld, SharingAuthorised int
	// QualityReviews counts managers' quality assurance reviews of decided cases.
	QualityReviews int
	// ChildMerges counts duplicate child records merged by a practitioner.
	ChildMerges int
	// LeadProfessionals counts the lead professionals named after decisions.
	LeadProfessionals int
	// Beyond counts steps that would fall after the plan's end: they have not happened yet.
	Beyond int
}

// caseRun is one referral being played.
type caseRun struct {
	ref          Referral
	rng          *rand.Rand
	id           string // referral id, once submitted
	decision     *rulesv1.Decision
	caseVersion  int64
	practitioner string
	level        rulesv1.Level
	section47    bool
	scheduled    map[string]bool // notification ids whose acknowledgement is planned
	notices      []*notifyv1.Notification
	alreadyDone  bool      // decided before this run (a resumed run)
	closeAt      time.Time // when the hub closes the case, once planned
}

type step struct {
	at  time.Time
	seq int
	c   *caseRun
	do  func(ctx context.Context, c *caseRun) error
	// what names the step in errors and logs.
	what string
}

type queue []*step

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(*step)) }
func (q *queue) Pop() any {
	old := *q
	s := old[len(old)-1]
	*q = old[:len(old)-1]
	return s
}

// run is the state of one Run.
type run struct {
	*Driver
	plan    Plan
	q       queue
	seq     int
	sum     Summary
	intake  intakev1.IntakeServiceClient
	rules   rulesv1.RulesServiceClient
	notify  notifyv1.NotifyServiceClient
	triage  triagev1.TriageServiceClient
	quality triagev1.QualityServiceClient
	records triagev1.RecordsServiceClient
	dutyMgr string
	// worked counts the decided cases whose casework was planned: every qaEvery-th is
	// sampled for a manager's quality review (a count, not a draw, so the cases' random
	// streams are the same as without it).
	worked int
}

// Run plays plan: every step at its simulated time, in time order, the clock advanced to
// each step's time before it runs. Steps that would come after plan.End are left undone,
// which is what leaves a live queue and open cases behind.
func (d *Driver) Run(ctx context.Context, plan Plan) (Summary, error) {
	if d.Conn == nil || d.Clock == nil || d.Calendar == nil || d.Manager == "" || len(d.Practitioners) == 0 {
		return Summary{}, errors.New("demo driver: connection, clock, calendar, manager and practitioners are required")
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	if d.Wait == 0 {
		d.Wait = 30 * time.Second
	}
	r := &run{Driver: d, plan: plan, intake: intakev1.NewIntakeServiceClient(d.Conn), rules: rulesv1.NewRulesServiceClient(d.Conn),
		notify: notifyv1.NewNotifyServiceClient(d.Conn), triage: triagev1.NewTriageServiceClient(d.Conn), quality: triagev1.NewQualityServiceClient(d.Conn),
		records: triagev1.NewRecordsServiceClient(d.Conn), dutyMgr: "demo-mash-duty-manager"}
	var err error
	if r.sum.Casework, err = r.hasCasework(ctx); err != nil {
		return r.sum, err
	}
	if !r.sum.Casework {
		d.Log.Warn("the triage service is not running: referrals keep the rules' recommendation, and no case is decided, worked or closed")
	}
	for _, ref := range plan.Referrals {
		c := &caseRun{ref: ref, rng: rand.New(rand.NewPCG(ref.Handling.Seed, 0x74726961)), scheduled: map[string]bool{}}
		c.practitioner = d.Practitioners[c.rng.IntN(len(d.Practitioners))]
		r.schedule(ref.ReceivedAt, c, "submit", r.submit)
		if !ref.Handling.Decide {
			r.sum.Undecided++
		}
	}
	week := plan.Start
	for r.q.Len() > 0 {
		s := heap.Pop(&r.q).(*step)
		now := d.Clock.AdvanceTo(s.at)
		if err := s.do(ctx, s.c); err != nil {
			return r.sum, fmt.Errorf("demo referral %d (%s) %s at %s: %w", s.c.ref.Index+1, s.c.ref.Submission.GetExternalReference(), s.what,
				now.Format(time.RFC3339), err)
		}
		if d.Progress != nil {
			d.Progress(now)
		}
		if now.Sub(week) >= 7*24*time.Hour {
			week = now
			d.Log.Info("demo progress", zap.Time("simulated", now), zap.Int("submitted", r.sum.Submitted+r.sum.Replayed), zap.Int("closed", r.sum.Closed))
		}
	}
	d.Clock.AdvanceTo(plan.End)
	return r.sum, nil
}

// schedule plans a step; one that would fall after the plan's end is counted and dropped.
func (r *run) schedule(at time.Time, c *caseRun, what string, do func(context.Context, *caseRun) error) {
	if at.After(r.plan.End) {
		r.sum.Beyond++
		return
	}
	if now := r.Clock.Now(); at.Before(now) {
		at = now // a step planned in the past of a resumed run happens now
	}
	r.seq++
	heap.Push(&r.q, &step{at: at, seq: r.seq, c: c, do: do, what: what})
}

// clampBeforeEnd keeps a step that must happen (a closure) inside the period.
func (r *run) clampBeforeEnd(at time.Time, c *caseRun) time.Time {
	if latest := r.plan.End.Add(-time.Duration(10+c.rng.IntN(240)) * time.Minute); at.After(latest) {
		at = latest
	}
	return at
}

// As is a call as the holder of token, with the demo's timeout.
func As(ctx context.Context, token string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token), cancel
}

func (r *run) hasCasework(ctx context.Context) (bool, error) {
	cctx, cancel := As(ctx, r.Manager)
	defer cancel()
	_, err := r.triage.ListQueue(cctx, &triagev1.ListQueueRequest{PageSize: 1})
	switch status.Code(err) {
	case codes.OK:
		return true, nil
	case codes.Unimplemented:
		return false, nil
	}
	return false, fmt.Errorf("triage ListQueue: %w", err)
}

// poll calls f until it reports done, backing off from a few milliseconds: asynchronous
// effects here take milliseconds, and a fixed sleep would either waste time or be too short.
func (r *run) poll(ctx context.Context, what string, f func() (bool, error)) error {
	deadline := time.Now().Add(r.Wait)
	delay := 2 * time.Millisecond
	for {
		done, err := f()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s after %s; are every service's consumers running? (see the log above)", what, r.Wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

func (r *run) submit(ctx context.Context, c *caseRun) error {
	if id, ok := r.Known[c.ref.Source.Agency+"/"+c.ref.Submission.GetExternalReference()]; ok {
		c.id = id
		r.sum.Replayed++
	} else {
		token, ok := r.Agencies[c.ref.Source.Agency]
		if !ok {
			return fmt.Errorf("no credential for referring agency %s", c.ref.Source.Agency)
		}
		cctx, cancel := As(ctx, token)
		resp, err := r.intake.SubmitReferral(cctx, &intakev1.SubmitReferralRequest{Referral: c.ref.Submission})
		cancel()
		if status.Code(err) == codes.AlreadyExists {
			// The reference was used with other content (a run of this seed on another day):
			// that referral is left as it is, and nothing of this one happens.
			r.sum.Conflicting++
			return nil
		}
		if err != nil {
			return fmt.Errorf("submit: %w", err)
		}
		ack := resp.GetAcknowledgement()
		c.id = ack.GetReferralId()
		if ack.GetReplay() {
			r.sum.Replayed++
		} else {
			r.sum.Submitted++
		}
	}
	if err := r.waitDecision(ctx, c); err != nil {
		return err
	}
	// The notifications the referral causes are made at the service's clock, so the clock
	// waits for them before moving on: the receipt, and in immediate danger (level 4, Red)
	// police and social care told on the recommendation. (A resumed run finds them made
	// long ago.)
	cur := c.decision.GetCurrent()
	if cur.GetLevel() == rulesv1.Level_LEVEL_4 && cur.GetRag() == rulesv1.Rag_RAG_RED {
		if err := r.waitNotified(ctx, c, 1); err != nil {
			return err
		}
	} else if err := r.waitReceipt(ctx, c); err != nil {
		return err
	}
	r.scheduleAcks(c)
	if !c.ref.Handling.Decide {
		return nil
	}
	at := r.decisionTime(c)
	claim := at.Add(-time.Duration(2+c.rng.IntN(25)) * time.Minute)
	if claim.Before(c.ref.ReceivedAt) {
		claim = c.ref.ReceivedAt
	}
	r.schedule(claim, c, "claim", func(ctx context.Context, c *caseRun) error {
		if err := r.claim(ctx, c); err != nil || c.alreadyDone {
			return err
		}
		r.schedule(at, c, "decide", r.decide)
		return nil
	})
	return nil
}

func (r *run) waitDecision(ctx context.Context, c *caseRun) error {
	return r.poll(ctx, "threshold decision for referral "+c.id, func() (bool, error) {
		cctx, cancel := As(ctx, c.practitioner)
		defer cancel()
		resp, err := r.rules.GetDecision(cctx, &rulesv1.GetDecisionRequest{ReferralId: c.id})
		if status.Code(err) == codes.NotFound {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("get decision: %w", err)
		}
		c.decision = resp.GetDecision()
		c.level = c.decision.GetCurrent().GetLevel()
		return true, nil
	})
}

// waitNotified waits until notify has applied the decision at version (the referrer's
// outcome notification carries it) and keeps the referral's notifications.
func (r *run) waitNotified(ctx context.Context, c *caseRun, version int64) error {
	return r.poll(ctx, fmt.Sprintf("notifications for referral %s decision version %d", c.id, version), func() (bool, error) {
		ns, err := r.notifications(ctx, c)
		if err != nil {
			return false, err
		}
		for _, n := range ns {
			if n.GetDecisionId() == c.decision.GetId() && n.GetDecisionVersion() >= version {
				return true, nil
			}
		}
		return false, nil
	})
}

// waitReceipt waits until notify has made the referrer's receipt.
func (r *run) waitReceipt(ctx context.Context, c *caseRun) error {
	return r.poll(ctx, fmt.Sprintf("receipt for referral %s", c.id), func() (bool, error) {
		ns, err := r.notifications(ctx, c)
		if err != nil {
			return false, err
		}
		for _, n := range ns {
			if n.GetKind() == notifyv1.NotificationKind_RECEIPT {
				return true, nil
			}
		}
		return false, nil
	})
}

func (r *run) notifications(ctx context.Context, c *caseRun) ([]*notifyv1.Notification, error) {
	var out []*notifyv1.Notification
	token := ""
	for {
		cctx, cancel := As(ctx, c.practitioner)
		resp, err := r.notify.ListNotifications(cctx, &notifyv1.ListNotificationsRequest{ReferralId: c.id, PageSize: 200, PageToken: token})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("list notifications: %w", err)
		}
		out = append(out, resp.GetNotifications()...)
		if token = resp.GetNextPageToken(); token == "" {
			c.notices = out
			return out, nil
		}
	}
}

// decisionTime is when the practitioner decides: Red within hours, day or night; others
// within the working day; about one in ten late.
func (r *run) decisionTime(c *caseRun) time.Time {
	rec, late := c.ref.ReceivedAt, c.ref.Handling.Late
	if c.decision.GetCurrent().GetRag() == rulesv1.Rag_RAG_RED {
		if late {
			return rec.Add(time.Duration(300+c.rng.IntN(300)) * time.Minute)
		}
		return rec.Add(time.Duration(20+c.rng.IntN(160)) * time.Minute)
	}
	if late {
		return r.Calendar.AddWorkingHours(rec, time.Duration(9*60+c.rng.IntN(11*60))*time.Minute)
	}
	return r.Calendar.AddWorkingHours(rec, time.Duration(30+c.rng.IntN(6*60))*time.Minute)
}

func (r *run) getCase(ctx context.Context, c *caseRun) (*triagev1.GetCaseResponse, error) {
	cctx, cancel := As(ctx, c.practitioner)
	defer cancel()
	resp, err := r.triage.GetCase(cctx, &triagev1.GetCaseRequest{ReferralId: c.id})
	if err != nil && status.Code(err) != codes.NotFound {
		return nil, fmt.Errorf("get case: %w", err)
	}
	return resp, nil
}

// onLatest runs change with the case version the caller read. When the case moved on
// meanwhile (ABORTED: an event about it was projected, or an acknowledgement came in), it
// reads the case again and runs change once more on what the case is now, as a practitioner
// reloading the page would.
func (r *run) onLatest(ctx context.Context, c *caseRun, version int64, change func(version int64) error) error {
	err := change(version)
	if status.Code(err) != codes.Aborted {
		return err
	}
	g, gerr := r.getCase(ctx, c)
	if gerr != nil || g == nil {
		return err
	}
	return change(g.GetCase().GetVersion())
}

// claim opens the case and takes it. A case decided before (a resumed run) is left alone.
func (r *run) claim(ctx context.Context, c *caseRun) error {
	if !r.sum.Casework {
		if c.decision.GetStatus() != rulesv1.DecisionStatus_RECOMMENDED {
			c.alreadyDone = true
		}
		return nil
	}
	var kase *triagev1.Case
	err := r.poll(ctx, "case of referral "+c.id+" awaiting a decision", func() (bool, error) {
		resp, err := r.getCase(ctx, c)
		if err != nil || resp == nil {
			return false, err
		}
		kase = resp.GetCase()
		return kase.GetState() != triagev1.CaseState_AWAITING_RULES, nil
	})
	if err != nil {
		return err
	}
	if kase.GetState() != triagev1.CaseState_AWAITING_DECISION {
		c.alreadyDone = true
		if kase.GetState() == triagev1.CaseState_DECIDED && c.ref.Handling.Close {
			c.caseVersion, c.level = kase.GetVersion(), kase.GetLevel()
			r.schedule(r.closeTime(c), c, "close", r.close)
		}
		return nil
	}
	cctx, cancel := As(ctx, c.practitioner)
	resp, err := r.triage.ClaimCase(cctx, &triagev1.ClaimCaseRequest{ReferralId: c.id})
	cancel()
	if code := status.Code(err); code == codes.Aborted || code == codes.FailedPrecondition {
		// Still claimed by a practitioner of an earlier, interrupted run: a manager frees it.
		mctx, cancel := As(ctx, r.Manager)
		_, rerr := r.triage.ReleaseCase(mctx, &triagev1.ReleaseCaseRequest{ReferralId: c.id})
		cancel()
		if rerr != nil {
			return fmt.Errorf("claim: %w; release by manager: %w", err, rerr)
		}
		cctx, cancel = As(ctx, c.practitioner)
		resp, err = r.triage.ClaimCase(cctx, &triagev1.ClaimCaseRequest{ReferralId: c.id})
		cancel()
	}
	if err != nil {
		return fmt.Errorf("claim: %w", err)
	}
	c.caseVersion = resp.GetCase().GetVersion()
	return nil
}

var overrideReasons = map[Override][]string{
	StepUp: {
		"History of earlier referrals shows an escalating pattern the rules do not weigh fully.",
		"Police checks show a known risk in the household; the level is raised.",
		"Child's own account in the school's follow-up call raises the concern.",
	},
	StepDown: {
		"Family already engaged with early help and the key worker confirms the plan is working.",
		"Follow-up call with the referrer: the concern is lower than the referral suggested.",
		"Support from one agency is enough; the school is already meeting the need.",
	},
	RaiseRAG: {"Incident is recent and the alleged perpetrator is expected home tonight."},
	LowerRAG: {"Child is safe with a relative for the next few days; response can follow the normal timescale."},
}

// override is the outcome the practitioner chooses instead of the recommendation, and why;
// ok is false when the plan's override makes no sense for this outcome (a step up from
// level 4), and the practitioner confirms instead.
func override(kind Override, cur *rulesv1.Outcome, rng *rand.Rand) (level rulesv1.Level, rag rulesv1.Rag, pathway string, agencies []string, reason string, ok bool) {
	level, rag, agencies = cur.GetLevel(), cur.GetRag(), slices.Clone(cur.GetAgencies())
	switch kind {
	case StepUp:
		if level >= rulesv1.Level_LEVEL_4 || level == rulesv1.Level_LEVEL_UNSPECIFIED {
			return level, rag, "", nil, "", false
		}
		level++
	case StepDown:
		if level <= rulesv1.Level_LEVEL_1 {
			return level, rag, "", nil, "", false
		}
		level--
	case RaiseRAG:
		if rag >= rulesv1.Rag_RAG_RED {
			return level, rag, "", nil, "", false
		}
		rag = max(rag+1, rulesv1.Rag_RAG_GREEN)
	case LowerRAG:
		if rag <= rulesv1.Rag_RAG_GREEN {
			return level, rag, "", nil, "", false
		}
		rag--
	default:
		return level, rag, "", nil, "", false
	}
	pathway = cur.GetPathway()
	if level != cur.GetLevel() {
		pathway = map[rulesv1.Level]string{rulesv1.Level_LEVEL_1: "nfa_advice", rulesv1.Level_LEVEL_2: "single_agency",
			rulesv1.Level_LEVEL_3A: "taf", rulesv1.Level_LEVEL_3B: "intensive_family_support", rulesv1.Level_LEVEL_4: "assessment"}[level]
		switch {
		case level == rulesv1.Level_LEVEL_4:
			rag = max(rag, rulesv1.Rag_RAG_AMBER)
			if !slices.Contains(agencies, "childrens_social_care") {
				agencies = append(agencies, "childrens_social_care")
			}
		case cur.GetLevel() == rulesv1.Level_LEVEL_4:
			agencies = slices.DeleteFunc(agencies, func(a string) bool { return a == "childrens_social_care" })
			if !slices.Contains(agencies, "early_help") && level >= rulesv1.Level_LEVEL_3A {
				agencies = append(agencies, "early_help")
			}
		}
		if level <= rulesv1.Level_LEVEL_2 {
			rag = rulesv1.Rag_RAG_GREEN
		}
	}
	return level, rag, pathway, agencies, pick(rng, overrideReasons[kind]), true
}

func (r *run) decide(ctx context.Context, c *caseRun) error {
	cur := c.decision.GetCurrent()
	level, rag, pathway, agencies, reason, isOverride := override(c.ref.Handling.Override, cur, c.rng)
	if !r.sum.Casework {
		return nil // decisions are made only in triage: without it the recommendation stands
	}
	req := &triagev1.DecideCaseRequest{ReferralId: c.id, Confirm: !isOverride}
	if isOverride {
		req.Level, req.Rag, req.Pathway, req.Agencies, req.Reason = level, rag, pathway, agencies, reason
	}
	var resp *triagev1.DecideCaseResponse
	err := r.onLatest(ctx, c, c.caseVersion, func(version int64) error {
		req.ExpectedVersion = version
		cctx, cancel := As(ctx, c.practitioner)
		defer cancel()
		var err error
		resp, err = r.triage.DecideCase(cctx, req)
		return err
	})
	if err != nil {
		return fmt.Errorf("decide case: %w", err)
	}
	c.caseVersion = resp.GetCase().GetVersion()
	if d := resp.GetDecision(); d != nil {
		c.decision = d
	}
	c.level = c.decision.GetCurrent().GetLevel()
	switch {
	case !isOverride:
		r.sum.Confirmed++
	case level > cur.GetLevel():
		r.sum.StepUps++
	case level < cur.GetLevel():
		r.sum.StepDowns++
	default:
		r.sum.RAGChange++
	}
	// A person's decision is what is shared (beyond immediate danger), so the clock waits
	// for notify to act on it.
	if err := r.waitNotified(ctx, c, c.decision.GetVersion()); err != nil {
		return err
	}
	r.scheduleAcks(c)
	if !r.sum.Casework {
		return nil
	}
	r.scheduleCasework(c)
	if resp.GetCase().GetSharingHeld() != "" {
		r.sum.SharingHeld++
		r.scheduleSharingAuthorisation(c)
	}
	return nil
}

// fnv64 is the FNV-1a hash of s.
func fnv64(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}
