package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/server"
	rulesv1 "github.com/mash-hub/mash/proto/mash/rules/v1"
	"github.com/mash-hub/mash/services/rules/pack"
)

const (
	defaultReplayLast     = 1000
	maxReplayLast         = 100000
	defaultReplayExamples = 20
)

// ReplayPack re-runs a candidate pack over the facts past decisions saw and compares with
// what the rules recommended then. Using the stored facts (history included as it was)
// isolates the effect of the threshold change from everything else.
// checkReplay is ReplayPack's check of its request.
func checkReplay(req *rulesv1.ReplayPackRequest) []apierr.Violation {
	var vs []apierr.Violation
	if last := req.GetLast(); last < 0 || last > maxReplayLast {
		vs = append(vs, apierr.Violation{Field: "last", Reason: fmt.Sprintf("must be between 1 and %d", maxReplayLast)})
	}
	if (req.GetFrom() == nil) != (req.GetTo() == nil) {
		vs = append(vs, apierr.Violation{Field: "from", Reason: "from and to go together: give both or neither"})
	}
	if req.GetFrom() != nil && req.GetTo() != nil && !req.GetFrom().AsTime().Before(req.GetTo().AsTime()) {
		vs = append(vs, apierr.Violation{Field: "to", Reason: "must be after from"})
	}
	return vs
}

func (a *grpcAPI) ReplayPack(ctx context.Context, req *rulesv1.ReplayPackRequest) (*rulesv1.ReplayPackResponse, error) {
	id, err := server.Require(ctx, auth.ManagePacks)
	if err != nil {
		return nil, err
	}
	if vs := checkReplay(req); len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	last := int(req.GetLast())
	if last == 0 {
		last = defaultReplayLast
	}
	examples := int(req.GetExamples())
	if examples <= 0 {
		examples = defaultReplayExamples
	}
	candidate, err := loadPack(req.GetSource())
	if err != nil {
		return nil, err
	}
	// A replay reads the partnership's past decisions.
	if err := checkPackScope(id, candidate.Partnership); err != nil {
		return nil, err
	}
	if req.GetLast() == 0 && req.GetFrom() != nil {
		// A date range without a count means the whole range, up to the cap.
		last = maxReplayLast
	}
	var from, to *time.Time
	if req.GetFrom() != nil && req.GetTo() != nil {
		f, t := req.GetFrom().AsTime(), req.GetTo().AsTime()
		from, to = &f, &t
	}
	inputs, err := a.svc.store.RecentDecisions(ctx, candidate.Partnership, last, from, to)
	if err != nil {
		return nil, err
	}
	resp := &rulesv1.ReplayPackResponse{Referrals: int32(len(inputs))}
	for _, in := range inputs {
		var rec pack.TestFacts
		if err := json.Unmarshal(in.Facts, &rec); err != nil {
			return nil, fmt.Errorf("replay: decode facts of referral %s: %w", in.ReferralID, err)
		}
		var before rulesv1.Outcome
		if err := proto.Unmarshal(in.Current, &before); err != nil {
			return nil, fmt.Errorf("replay: decode outcome of referral %s: %w", in.ReferralID, err)
		}
		after := outcomeToProto(candidate.Evaluate(rec.Facts()))
		levelChanged := after.GetLevel() != before.GetLevel()
		ragChanged := after.GetRag() != before.GetRag()
		agenciesChanged := !slices.Equal(after.GetAgencies(), before.GetAgencies())
		if levelChanged {
			resp.LevelChanged++
		}
		if ragChanged {
			resp.RagChanged++
		}
		if agenciesChanged {
			resp.AgenciesChanged++
		}
		if levelChanged || ragChanged || agenciesChanged {
			resp.Changed++
			if len(resp.Examples) < examples {
				resp.Examples = append(resp.Examples, &rulesv1.ReplayChange{ReferralId: in.ReferralID, Before: &before, After: after})
			}
		}
	}
	return resp, nil
}
