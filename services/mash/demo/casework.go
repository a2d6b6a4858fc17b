package demo

// The casework that follows a decision, step by step as the hub's staff and the agencies
// would do it: acknowledgements, research, strategy discussions, disagreements, closure.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// scheduleCasework plans what follows a decision: research with partner agencies, a
// strategy discussion where significant harm is suspected, a disagreement, the closure.
func (r *run) scheduleCasework(c *caseRun) {
	now := r.Clock.Now()
	h := c.ref.Handling
	if h.InformationRequest {
		ask := now.Add(time.Duration(10+c.rng.IntN(110)) * time.Minute)
		// The hub asks before it closes the case (triage refuses research on a closed one):
		// a quickly closed case is asked in the first half of its time.
		if close := r.closeTimeAt(c); h.Close && !ask.Before(close) {
			ask = now.Add(close.Sub(now) / 2)
		}
		r.schedule(ask, c, "request information", r.requestInformation)
	}
	pw := c.decision.GetCurrent().GetPathway()
	if c.level == rulesv1.Level_LEVEL_4 && (pw == "strategy_discussion" || pw == "immediate_protection") && c.rng.Float64() < 0.85 {
		at := now.Add(time.Duration(60+c.rng.IntN(300)) * time.Minute)
		if c.decision.GetCurrent().GetRag() != rulesv1.Rag_RAG_RED {
			at = r.Calendar.AddWorkingHours(now, time.Duration(2+c.rng.IntN(12))*time.Hour)
		}
		if h.Close {
			at = r.clampBeforeEnd(at, c)
		}
		r.schedule(at, c, "strategy discussion", r.strategy)
	}
	if h.Disagreement != NoDisagreement {
		r.schedule(r.Calendar.AddWorkingHours(now, time.Duration(1+c.rng.IntN(6))*time.Hour), c, "raise disagreement", r.raiseDisagreement)
	}
	if agency := r.leadAgency(c); agency != "" {
		// After the decision, before closure; the closure time is drawn here, where the
		// closure below would draw it, so the plan's other times are as before.
		at := now.Add(45 * time.Minute)
		if h.Close {
			if close := r.closeTimeAt(c); !at.Before(close) {
				at = now.Add(close.Sub(now) / 2)
			}
		}
		r.schedule(at, c, "name lead professional", func(ctx context.Context, c *caseRun) error { return r.nameLead(ctx, c, agency) })
	}
	if h.MergeDuplicate {
		r.schedule(now.Add(20*time.Minute), c, "merge child records", r.mergeDuplicate)
	}
	if h.Close {
		r.schedule(r.closeTimeAt(c), c, "close", r.close)
	}
	if r.worked++; r.worked%qaEvery == 1 {
		r.schedule(r.Calendar.AddWorkingHours(now, time.Duration(2+c.rng.IntN(20))*time.Hour), c, "quality review", r.qualityReview)
	}
}

// mergeDuplicate is the practitioner finding that the case's child record, made because the
// referral came without an NHS number from a new address, is a child the hub knows: the
// record offers the earlier one as a possible match, and the practitioner merges it in.
func (r *run) mergeDuplicate(ctx context.Context, c *caseRun) error {
	got, err := r.getCase(ctx, c)
	if err != nil || got == nil || got.GetCase().GetChildId() == "" {
		return err
	}
	pctx, cancel := As(ctx, c.practitioner)
	defer cancel()
	child, err := r.records.GetChild(pctx, &triagev1.GetChildRequest{ChildId: got.GetCase().GetChildId(), Reason: "Checking whether the child is known under an earlier record"})
	switch status.Code(err) {
	case codes.OK:
	case codes.Unimplemented, codes.NotFound:
		return nil // a triage service without child records, or a record merged already
	default:
		return fmt.Errorf("get child record: %w", err)
	}
	matches := child.GetPossibleMatches()
	if len(matches) == 0 {
		r.Log.Info("demo: no possible match offered for a duplicate child record", zap.String("referral_id", c.id))
		return nil
	}
	_, err = r.records.MergeChildren(pctx, &triagev1.MergeChildrenRequest{ChildId: child.GetChildId(), IntoChildId: matches[0].GetChildId(),
		Reason: "Same child: the family moved house and the referrer did not have the NHS number; the mother confirmed the earlier address."})
	switch status.Code(err) {
	case codes.OK:
		r.sum.ChildMerges++
		return nil
	case codes.FailedPrecondition, codes.AlreadyExists:
		return nil // merged by a run that was interrupted
	}
	return fmt.Errorf("merge child records: %w", err)
}

// qaEvery is how often a decided case is reviewed for quality assurance in the demo: the
// first and then every fourth.
const qaEvery = 4

// qualityReview is a manager's quality assurance review of the practitioner's decision:
// mostly agreement, sometimes a disagreement with its reason, each with a learning point.
func (r *run) qualityReview(ctx context.Context, c *caseRun) error {
	req := &triagev1.RecordQualityReviewRequest{ReferralId: c.id, Verdict: triagev1.QualityVerdict_AGREE,
		LearningPoint: "Good use of the referral's history in the decision."}
	if r.sum.QualityReviews%3 == 2 {
		req.Verdict = triagev1.QualityVerdict_DISAGREE
		req.Reason = "The household's earlier referrals called for a strategy discussion at this level."
		req.LearningPoint = "Check earlier referrals of siblings before confirming the level."
	}
	mctx, cancel := As(ctx, r.Manager)
	defer cancel()
	_, err := r.quality.RecordQualityReview(mctx, req)
	switch status.Code(err) {
	case codes.OK:
		r.sum.QualityReviews++
		return nil
	case codes.AlreadyExists:
		return nil // reviewed by a run that was interrupted
	case codes.Unimplemented:
		return nil // a triage service without quality assurance
	}
	return fmt.Errorf("quality review: %w", err)
}

// leadAgency is the agency that leads the work after a decision at level 3a or above:
// children's social care for significant harm (3b, 4), early help below; empty when the
// directory has no such agency or the level needs no lead.
func (r *run) leadAgency(c *caseRun) string {
	switch {
	case c.level == rulesv1.Level_LEVEL_4 || c.level == rulesv1.Level_LEVEL_3B:
		return r.LeadAgencies["childrens_social_care"]
	case c.level == rulesv1.Level_LEVEL_3A:
		return r.LeadAgencies["early_help"]
	}
	return ""
}

// leadTeams are the synthetic teams and people a lead agency names.
var leadTeams = [][2]string{
	{"Assessment team north", "Rhys Demoford (social worker)"},
	{"Family support east", "Megan Sampleton (family support worker)"},
	{"Child protection team", "Owen Testbury (senior social worker)"},
}

// nameLead names the lead professional after the decision, as a practitioner would.
func (r *run) nameLead(ctx context.Context, c *caseRun, agency string) error {
	team := leadTeams[fnv64(c.id)%uint64(len(leadTeams))]
	var resp *triagev1.NameLeadProfessionalResponse
	err := r.onLatest(ctx, c, c.caseVersion, func(version int64) error {
		pctx, cancel := As(ctx, c.practitioner)
		defer cancel()
		var err error
		resp, err = r.triage.NameLeadProfessional(pctx, &triagev1.NameLeadProfessionalRequest{ReferralId: c.id, ExpectedVersion: version,
			Agency: agency, Team: team[0], Person: team[1], Scope: triagev1.LeadProfessionalScope_LEAD_FOR_CHILD})
		return err
	})
	if err != nil {
		return fmt.Errorf("name lead professional: %w", err)
	}
	if cs := resp.GetCases(); len(cs) > 0 {
		c.caseVersion = cs[0].GetVersion()
	}
	r.sum.LeadProfessionals++
	// The agency is told before the history moves on, as every other notice is.
	return r.poll(ctx, "the lead agency told of referral "+c.id, func() (bool, error) {
		ns, err := r.notifications(ctx, c)
		if err != nil {
			return false, err
		}
		for _, n := range ns {
			if n.GetKind() == notifyv1.NotificationKind_LEAD_PROFESSIONAL && n.GetAgency() == agency {
				return true, nil
			}
		}
		return false, nil
	})
}

// closeTimeAt is when the case closes, drawn once per case so every step can plan around
// it.
func (r *run) closeTimeAt(c *caseRun) time.Time {
	if c.closeAt.IsZero() {
		c.closeAt = r.closeTime(c)
	}
	return c.closeAt
}

// closeTime is when the hub closes the case: quickly at the lower levels, after the
// assessment is under way at level 4.
func (r *run) closeTime(c *caseRun) time.Time {
	hours := map[rulesv1.Level][2]int{rulesv1.Level_LEVEL_1: {1, 10}, rulesv1.Level_LEVEL_2: {2, 14}, rulesv1.Level_LEVEL_3A: {8, 32},
		rulesv1.Level_LEVEL_3B: {8, 40}, rulesv1.Level_LEVEL_4: {16, 56}}[c.level]
	if hours[1] == 0 {
		hours = [2]int{4, 16}
	}
	d := time.Duration(hours[0]*60+c.rng.IntN((hours[1]-hours[0])*60)) * time.Minute
	at := r.Calendar.AddWorkingHours(r.Clock.Now(), d)
	at = r.clampBeforeEnd(at, c)
	if now := r.Clock.Now(); !at.After(now) {
		at = now.Add(time.Duration(1+c.rng.IntN(10)) * time.Minute)
	}
	return at
}

// scheduleAcks plans each agency's acknowledgement of what it was sent: most on time, some
// late, a few never (the duty manager then hears of it).
func (r *run) scheduleAcks(c *caseRun) {
	for _, n := range c.notices {
		k := n.GetKind()
		if c.scheduled[n.GetId()] || n.GetAgency() == "" || n.GetAcknowledgedAt() != nil || n.GetWithdrawnAt() != nil ||
			(k != notifyv1.NotificationKind_ACTION && k != notifyv1.NotificationKind_ENCOMPASS && k != notifyv1.NotificationKind_ESCALATION) {
			continue
		}
		c.scheduled[n.GetId()] = true
		// Each notification's fate follows from its id, so a rerun of the plan leaves the
		// same ones unacknowledged however its other choices went.
		fr := rand.New(rand.NewPCG(c.ref.Handling.Seed, fnv64(n.GetId())))
		fate := fr.Float64()
		if k != notifyv1.NotificationKind_ESCALATION && fate < 0.06 {
			continue // never acknowledged
		}
		late := fate > 0.85
		created := n.GetCreatedAt().AsTime()
		var at time.Time
		due := n.GetAckDue()
		switch {
		case k == notifyv1.NotificationKind_ESCALATION:
			at = created.Add(time.Duration(5+fr.IntN(40)) * time.Minute)
		case due != nil && late:
			at = due.AsTime().Add(time.Duration(10+fr.IntN(600)) * time.Minute)
		case due != nil:
			at = created.Add(time.Duration(float64(due.AsTime().Sub(created)) * (0.1 + 0.8*fr.Float64())))
		default:
			at = r.Calendar.AddWorkingHours(created, time.Duration(30+fr.IntN(16*60))*time.Minute)
		}
		id, agency := n.GetId(), n.GetAgency()
		r.schedule(at, c, "acknowledge "+id, func(ctx context.Context, c *caseRun) error { return r.acknowledge(ctx, c, id, agency) })
	}
}

func (r *run) acknowledge(ctx context.Context, c *caseRun, id, agency string) error {
	token, note := r.Agencies[agency], ""
	if token == "" {
		// An agency without a system of its own acknowledges by phone; a manager records it.
		token, note = r.Manager, "Acknowledged by telephone to the hub."
	}
	cctx, cancel := As(ctx, token)
	resp, err := r.notify.AcknowledgeNotification(cctx, &notifyv1.AcknowledgeNotificationRequest{NotificationId: id, Note: note})
	cancel()
	switch status.Code(err) {
	case codes.OK:
	case codes.Aborted, codes.NotFound, codes.FailedPrecondition:
		return nil // withdrawn by an override meanwhile: nothing to acknowledge
	default:
		return fmt.Errorf("acknowledge notification: %w", err)
	}
	if !resp.GetAlreadyAcknowledged() {
		r.sum.Acknowledged++
		if note != "" {
			r.sum.AckedByPhone++
		}
	}
	// Escalations the late acknowledgement caused reach the duty manager, who acknowledges.
	if _, err := r.notifications(ctx, c); err != nil {
		return err
	}
	r.scheduleAcks(c)
	return nil
}

var questions = map[string]string{
	"police":                "Any police history at the address or for the adults in the household?",
	"health":                "Is the child up to date with health checks, and any health concerns known?",
	"education":             "What is the child's attendance and presentation in school this term?",
	"local-authority":       "Is the family known to early help or housing, and with what outcome?",
	"third-sector":          "Is the family engaged with your service, and is anything of concern known?",
	"childrens_social_care": "Any previous social care involvement with this child or siblings?",
}

var answers = []string{
	"Nothing further known beyond the referral.",
	"Known to us: two earlier contacts in the last year, both closed after advice.",
	"Attendance 82% this term; child presents as tired but engaged.",
	"Family engaged well with our service last year; no current involvement.",
}

// requestInformation asks one of the agencies told of the decision what it knows.
func (r *run) requestInformation(ctx context.Context, c *caseRun) error {
	var agency string
	for _, n := range c.notices {
		if n.GetKind() == notifyv1.NotificationKind_ACTION && n.GetAgency() != "" && n.GetAgency() != r.dutyMgr && r.Agencies[n.GetAgency()] != "" {
			agency = n.GetAgency()
			break
		}
	}
	if agency == "" {
		agency = c.ref.Source.Agency
	}
	q := questions[c.ref.Source.Kind]
	if q == "" {
		q = questions["local-authority"]
	}
	cctx, cancel := As(ctx, c.practitioner)
	resp, err := r.triage.RequestInformation(cctx, &triagev1.RequestInformationRequest{ReferralId: c.id, Agency: agency, Question: q})
	cancel()
	if err != nil {
		return fmt.Errorf("request information from %s: %w", agency, err)
	}
	r.sum.InformationRequests++
	if !c.ref.Handling.InformationAnswered {
		return nil
	}
	req := resp.GetRequest()
	hours := time.Duration(30+c.rng.IntN(7*60)) * time.Minute
	if c.rng.Float64() < 0.2 {
		hours = time.Duration(9*60+c.rng.IntN(8*60)) * time.Minute // after the due time
	}
	r.schedule(r.Calendar.AddWorkingHours(r.Clock.Now(), hours), c, "answer information request", func(ctx context.Context, c *caseRun) error {
		token := r.Agencies[req.GetAgency()]
		if token == "" {
			token = c.practitioner // answered by phone, recorded by the hub
		}
		cctx, cancel := As(ctx, token)
		_, err := r.triage.AnswerInformationRequest(cctx, &triagev1.AnswerInformationRequestRequest{RequestId: req.GetId(), Answer: pick(c.rng, answers)})
		cancel()
		if err != nil {
			return fmt.Errorf("answer information request: %w", err)
		}
		r.sum.InformationAnswered++
		return nil
	})
	return nil
}

func (r *run) strategy(ctx context.Context, c *caseRun) error {
	c.section47 = c.rng.Float64() < 0.7
	outcome := "Threshold for a section 47 enquiry met; joint visit by police and social work today."
	if !c.section47 {
		outcome = "Significant harm not suspected on the information shared; child and family assessment instead."
	}
	now := r.Clock.Now()
	cctx, cancel := As(ctx, c.practitioner)
	_, err := r.triage.RecordStrategyDiscussion(cctx, &triagev1.RecordStrategyDiscussionRequest{ReferralId: c.id,
		HeldAt: timestamppb.New(now.Add(-time.Duration(20+c.rng.IntN(40)) * time.Minute)),
		Participants: []string{"Sam Exampleton (rct-mash, social worker)", "DS Jo Testwood (south-wales-police, public protection)",
			"Alex Sampleford (demo-health-visitor, health)"},
		Outcome: outcome, Section_47: c.section47})
	cancel()
	if err != nil {
		return fmt.Errorf("record strategy discussion: %w", err)
	}
	r.sum.StrategyDiscussions++
	return nil
}

var disagreementReasons = []string{
	"We believe the threshold for a statutory assessment is met: this is the third concern this term.",
	"The decision does not reflect the information we hold about the adult in the household.",
	"We disagree with no further action: the family declined early help last time.",
}

func (r *run) raiseDisagreement(ctx context.Context, c *caseRun) error {
	token := r.Agencies[c.ref.Source.Agency]
	cctx, cancel := As(ctx, token)
	resp, err := r.triage.RaiseDisagreement(cctx, &triagev1.RaiseDisagreementRequest{ReferralId: c.id, Reason: pick(c.rng, disagreementReasons)})
	cancel()
	if status.Code(err) == codes.FailedPrecondition {
		r.Log.Info("disagreement not accepted in the case's state", zap.String("referral_id", c.id), zap.Error(err))
		return nil
	}
	if err != nil {
		return fmt.Errorf("raise disagreement: %w", err)
	}
	r.sum.DisagreementsRaised++
	dis := resp.GetDisagreement()
	switch c.ref.Handling.Disagreement {
	case ResolvedByPractitioner:
		r.schedule(r.Calendar.AddWorkingHours(r.Clock.Now(), time.Duration(2+c.rng.IntN(10))*time.Hour), c, "resolve disagreement",
			func(ctx context.Context, c *caseRun) error {
				return r.resolveDisagreement(ctx, dis.GetId(), c.practitioner,
					"Practitioner shared the full history with the agency, which accepts the decision.")
			})
	case ResolvedAfterEscalation:
		r.schedule(r.Calendar.AddWorkingHours(r.Clock.Now(), time.Duration(4+c.rng.IntN(10))*time.Hour), c, "escalate disagreement",
			func(ctx context.Context, c *caseRun) error {
				mctx, cancel := As(ctx, c.practitioner)
				_, err := r.triage.EscalateDisagreement(mctx, &triagev1.EscalateDisagreementRequest{DisagreementId: dis.GetId(),
					Outcome: "Practitioner upheld the decision; the agency asked for a team manager's review."})
				cancel()
				if status.Code(err) == codes.PermissionDenied {
					mctx, cancel = As(ctx, r.Manager)
					_, err = r.triage.EscalateDisagreement(mctx, &triagev1.EscalateDisagreementRequest{DisagreementId: dis.GetId(),
						Outcome: "Practitioner upheld the decision; the agency asked for a team manager's review."})
					cancel()
				}
				if err != nil {
					return fmt.Errorf("escalate disagreement: %w", err)
				}
				r.sum.Escalations++
				r.schedule(r.Calendar.AddWorkingHours(r.Clock.Now(), time.Duration(6+c.rng.IntN(16))*time.Hour), c, "resolve disagreement",
					func(ctx context.Context, c *caseRun) error {
						return r.resolveDisagreement(ctx, dis.GetId(), r.Manager,
							"Team manager reviewed the history with the agency; level raised for review at the next referral.")
					})
				return nil
			})
	}
	return nil
}

func (r *run) resolveDisagreement(ctx context.Context, id, token, resolution string) error {
	cctx, cancel := As(ctx, token)
	_, err := r.triage.ResolveDisagreement(cctx, &triagev1.ResolveDisagreementRequest{DisagreementId: id, Resolution: resolution})
	cancel()
	if status.Code(err) == codes.PermissionDenied && token != r.Manager {
		return r.resolveDisagreement(ctx, id, r.Manager, resolution)
	}
	if err != nil {
		return fmt.Errorf("resolve disagreement: %w", err)
	}
	r.sum.DisagreementsResolved++
	return nil
}

// outcomeFor is a closure outcome plausible for the level.
func outcomeFor(c *caseRun) (triagev1.CaseOutcome, string) {
	x := c.rng.Float64()
	switch c.level {
	case rulesv1.Level_LEVEL_1:
		if c.ref.Handling.PreferNFA || x < 0.55 {
			return triagev1.CaseOutcome_NO_FURTHER_ACTION, "No further action by the hub; referrer advised."
		}
		return triagev1.CaseOutcome_ADVICE_AND_SIGNPOSTING, "Family signposted to universal services."
	case rulesv1.Level_LEVEL_2:
		if c.ref.Handling.PreferNFA {
			return triagev1.CaseOutcome_NO_FURTHER_ACTION, "Needs met by universal services; no further action by the hub."
		}
		if x < 0.75 {
			return triagev1.CaseOutcome_SINGLE_AGENCY_SUPPORT, "Single-agency plan led by the agency named in the decision."
		}
		return triagev1.CaseOutcome_ADVICE_AND_SIGNPOSTING, "Advice given to the family and referrer."
	case rulesv1.Level_LEVEL_3A:
		if x < 0.85 {
			return triagev1.CaseOutcome_EARLY_HELP, "Team Around the Family with a named key worker."
		}
		return triagev1.CaseOutcome_SINGLE_AGENCY_SUPPORT, "Family declined TAF; school leads a single-agency plan."
	case rulesv1.Level_LEVEL_3B:
		if x < 0.75 {
			return triagev1.CaseOutcome_INTENSIVE_SUPPORT, "Intensive family support allocated."
		}
		return triagev1.CaseOutcome_EARLY_HELP, "Early help with a key worker; to be reviewed in six weeks."
	case rulesv1.Level_LEVEL_4:
		if c.section47 {
			return triagev1.CaseOutcome_SECTION_47_ENQUIRY, "Section 47 enquiry under way following the strategy discussion."
		}
		if x < 0.15 {
			return triagev1.CaseOutcome_ALREADY_OPEN_TO_SOCIAL_CARE, "Passed to the allocated social worker of the open case."
		}
		return triagev1.CaseOutcome_STATUTORY_ASSESSMENT, "Child and family assessment by the duty and assessment team."
	}
	return triagev1.CaseOutcome_ADVICE_AND_SIGNPOSTING, "Advice and signposting."
}

func (r *run) close(ctx context.Context, c *caseRun) error {
	var kase *triagev1.Case
	err := r.poll(ctx, "decided case of referral "+c.id, func() (bool, error) {
		resp, err := r.getCase(ctx, c)
		if err != nil || resp == nil {
			return false, err
		}
		kase = resp.GetCase()
		return kase.GetState() == triagev1.CaseState_DECIDED || kase.GetState() == triagev1.CaseState_CLOSED, nil
	})
	if err != nil {
		return err
	}
	if kase.GetState() == triagev1.CaseState_CLOSED {
		return nil
	}
	c.level = kase.GetLevel()
	outcome, note := outcomeFor(c)
	err = r.onLatest(ctx, c, kase.GetVersion(), func(version int64) error {
		cctx, cancel := As(ctx, c.practitioner)
		defer cancel()
		_, err := r.triage.CloseCase(cctx, &triagev1.CloseCaseRequest{ReferralId: c.id, ExpectedVersion: version, Outcome: outcome, Note: note})
		return err
	})
	if err != nil {
		return fmt.Errorf("close case: %w", err)
	}
	r.sum.Closed++
	if _, err := r.notifications(ctx, c); err != nil {
		return err
	}
	r.scheduleAcks(c)
	return nil
}

// Sharing without consent, as a duty manager would judge it: where the decision finds a
// risk of significant harm (level 3b or 4) the law allows it and the manager authorises
// soon after the decision; below that, a manager records a judgement that a lawful basis
// applies for about one case in four, and the rest stay held back, as the console shows.
const (
	demoLawfulBasis   = "UK GDPR Art 6(1)(e) and Art 9(2)(g); DPA 2018 Sch 1 para 18 (safeguarding of children and individuals at risk)"
	reasonHarm        = "Risk of significant harm: sharing without the family's consent is necessary and proportionate to protect the child."
	reasonJudgement   = "Manager's judgement: the child's needs cannot be met without the named agencies, and the family's objection does not outweigh them."
	judgementFraction = 0.25
)

// scheduleSharingAuthorisation plans a manager's authorisation for a decided case held back
// for want of consent, before the case closes.
func (r *run) scheduleSharingAuthorisation(c *caseRun) {
	if c.level < rulesv1.Level_LEVEL_3B && c.rng.Float64() >= judgementFraction {
		return
	}
	now := r.Clock.Now()
	at := now.Add(time.Duration(15+c.rng.IntN(90)) * time.Minute)
	if close := r.closeTimeAt(c); c.ref.Handling.Close && !at.Before(close) {
		at = now.Add(close.Sub(now) / 2)
	}
	r.schedule(at, c, "authorise sharing", r.authoriseSharing)
}

// authoriseSharing is the manager's authorisation, with the reason and lawful basis; then
// the agencies are told, and their acknowledgements planned.
func (r *run) authoriseSharing(ctx context.Context, c *caseRun) error {
	reason := reasonJudgement
	if c.level >= rulesv1.Level_LEVEL_3B {
		reason = reasonHarm
	}
	var resp *triagev1.AuthoriseSharingResponse
	err := r.onLatest(ctx, c, c.caseVersion, func(version int64) error {
		mctx, cancel := As(ctx, r.Manager)
		defer cancel()
		var err error
		resp, err = r.triage.AuthoriseSharing(mctx, &triagev1.AuthoriseSharingRequest{ReferralId: c.id, ExpectedVersion: version,
			LawfulBasis: demoLawfulBasis, Reason: reason})
		return err
	})
	if err != nil {
		return fmt.Errorf("authorise sharing: %w", err)
	}
	c.caseVersion = resp.GetCase().GetVersion()
	r.sum.SharingAuthorised++
	err = r.poll(ctx, "notifications shared on the authorisation for referral "+c.id, func() (bool, error) {
		ns, err := r.notifications(ctx, c)
		if err != nil {
			return false, err
		}
		for _, n := range ns {
			// Every role the decision names is told now (a role no agency fills, as a failed
			// notification staff see): the decision's version marks them.
			if n.GetKind() == notifyv1.NotificationKind_ACTION && n.GetDecisionId() == c.decision.GetId() &&
				n.GetDecisionVersion() >= c.decision.GetVersion() {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	r.scheduleAcks(c)
	return nil
}
