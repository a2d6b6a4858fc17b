package triage

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/server"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// defaultDashboardWindow is the range of a dashboard request without one.
const defaultDashboardWindow = 90 * 24 * time.Hour

func pct(num, den int64) float64 {
	if den == 0 {
		return 0
	}
	return 100 * float64(num) / float64(den)
}

func (a *grpcAPI) GetDashboard(ctx context.Context, req *triagev1.GetDashboardRequest) (*triagev1.GetDashboardResponse, error) {
	id, err := server.Require(ctx, auth.ReadDashboard)
	if err != nil {
		return nil, err
	}
	if p := req.GetPartnership(); p != "" && !id.Serves(p) {
		return nil, apierr.PermissionDenied(fmt.Sprintf("partnership %q: this credential serves %s, not that partnership", p, strings.Join(id.Partnerships, ", ")))
	}
	s := a.svc
	now := s.now().UTC()
	to, from := now, now.Add(-defaultDashboardWindow)
	if req.GetTo() != nil {
		to = req.GetTo().AsTime().UTC()
	}
	if req.GetFrom() != nil {
		from = req.GetFrom().AsTime().UTC()
	} else if req.GetTo() != nil {
		from = to.Add(-defaultDashboardWindow)
	}
	if !from.Before(to) {
		return nil, invalid("from", "must be before to")
	}
	// Asked for no partnership, a caller serving some sees the figures of those together.
	d, err := s.store.Dashboard(ctx, store.DashboardQuery{Partnership: req.GetPartnership(), Partnerships: servedPartnerships(id), From: from, To: to,
		Now: now, Location: s.calendar.Location()})
	if err != nil {
		return nil, err
	}
	resp := &triagev1.GetDashboardResponse{
		From: timestamppb.New(from), To: timestamppb.New(to), Referrals: d.Referrals,
		DecidedWithinOneWorkingDayPercent: pct(d.DecidedOnTime, d.HumanDecided),
		MedianMinutesToDecision:           d.MedianMinutesToDecision,
		WithinRagTimePercent:              pct(d.WithinRAG, d.RAGJudged),
		ReReferralPercent:                 pct(d.ReReferrals, d.Referrals),
		ReReferralAfterNfaPercent:         pct(d.ReReferralsAfterNFA, d.ReReferrals),
		StepUps:                           d.StepUps, StepDowns: d.StepDowns,
		DisagreementsRaised: d.DisagreementsRaised, DisagreementsResolved: d.DisagreementsResolved,
		EncompassNotifications: d.EncompassCount, EncompassOnTimePercent: pct(d.EncompassOnTime, d.EncompassJudged),
	}
	for _, t := range d.BySource {
		resp.BySourceAgency = append(resp.BySourceAgency, &triagev1.Tally{Label: t.Key, Count: t.Count})
	}
	for _, t := range d.RAGs {
		n, _ := strconv.Atoi(t.Key)
		resp.RagDistribution = append(resp.RagDistribution, &triagev1.Tally{Label: rulesv1.Rag(n).String(), Count: t.Count})
	}
	for _, t := range d.Weeks {
		resp.ReferralsByWeek = append(resp.ReferralsByWeek, &triagev1.Tally{Label: t.Key, Count: t.Count})
	}
	for _, o := range d.Outcomes {
		level := rulesv1.Level(o.Level)
		if n := len(resp.OutcomesByLevel); n == 0 || resp.OutcomesByLevel[n-1].Level != level {
			resp.OutcomesByLevel = append(resp.OutcomesByLevel, &triagev1.LevelOutcomes{Level: level})
		}
		last := resp.OutcomesByLevel[len(resp.OutcomesByLevel)-1]
		last.Outcomes = append(last.Outcomes, &triagev1.Tally{Label: triagev1.CaseOutcome(o.Outcome).String(), Count: o.Count})
	}
	resp.LeadProfessionalsNamed, resp.LeadProfessionalPercent = d.LeadNamed, pct(d.LeadNamed, d.HumanDecided)
	for _, t := range d.LeadAgencies {
		resp.LeadProfessionalAgencies = append(resp.LeadProfessionalAgencies, &triagev1.Tally{Label: t.Key, Count: t.Count})
	}
	resp.AcknowledgementTimes = turnaroundsToProto(d.Acks)
	resp.InformationRequestTurnaround = turnaroundsToProto(d.InfoRequests)
	return resp, nil
}

func turnaroundsToProto(ts []store.Turnaround) []*triagev1.AgencyTurnaround {
	var out []*triagev1.AgencyTurnaround
	for _, t := range ts {
		out = append(out, &triagev1.AgencyTurnaround{Agency: t.Agency, Count: t.Count, MedianMinutes: t.MedianMinutes,
			OnTimePercent: pct(t.OnTime, t.Judged)})
	}
	return out
}
