package main

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// triageLate is a triage whose first answers arrive too late: the call lands on the server
// but the caller sees DeadlineExceeded, as under overload.
type triageLate struct {
	triagev1.TriageServiceClient
	c                       triagev1.Case
	lateClaims, lateDecides int
	claims, decides         int
}

func (f *triageLate) ClaimCase(_ context.Context, in *triagev1.ClaimCaseRequest, _ ...grpc.CallOption) (*triagev1.ClaimCaseResponse, error) {
	f.claims++
	if in.GetExpectedVersion() != f.c.GetVersion() || f.c.GetAssignee() != "" {
		return nil, status.Error(codes.FailedPrecondition, "case changed")
	}
	f.c.Assignee, f.c.Version = "user:bench", f.c.GetVersion()+1
	if f.lateClaims > 0 {
		f.lateClaims--
		return nil, status.Error(codes.DeadlineExceeded, "late")
	}
	return &triagev1.ClaimCaseResponse{Case: &f.c}, nil
}

func (f *triageLate) DecideCase(_ context.Context, in *triagev1.DecideCaseRequest, _ ...grpc.CallOption) (*triagev1.DecideCaseResponse, error) {
	f.decides++
	if in.GetExpectedVersion() != f.c.GetVersion() || f.c.GetState() != triagev1.CaseState_AWAITING_DECISION {
		return nil, status.Error(codes.FailedPrecondition, "case changed")
	}
	f.c.State, f.c.Version = triagev1.CaseState_DECIDED, f.c.GetVersion()+1
	if f.lateDecides > 0 {
		f.lateDecides--
		return nil, status.Error(codes.DeadlineExceeded, "late")
	}
	return &triagev1.DecideCaseResponse{}, nil
}

func (f *triageLate) GetCase(context.Context, *triagev1.GetCaseRequest, ...grpc.CallOption) (*triagev1.GetCaseResponse, error) {
	return &triagev1.GetCaseResponse{Case: &f.c}, nil
}

// A practitioner whose claim or decision timed out reads the case again: a claim that landed
// is not made again, and a decision that landed is not made twice; either way the case ends
// decided, so an overloaded run still decides everything.
func TestDecideRetriesWhatTimedOutWithoutRepeatingWhatLanded(t *testing.T) {
	decideRetryWait = time.Millisecond
	for _, tc := range []struct {
		name                    string
		lateClaims, lateDecides int
		wantClaims, wantDecides int
	}{
		{name: "claim landed late", lateClaims: 1, wantClaims: 1, wantDecides: 1},
		{name: "decision landed late", lateDecides: 1, wantClaims: 1, wantDecides: 1},
		{name: "both late", lateClaims: 1, lateDecides: 1, wantClaims: 1, wantDecides: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &triageLate{c: triagev1.Case{ReferralId: "r1", State: triagev1.CaseState_AWAITING_DECISION, Version: 3},
				lateClaims: tc.lateClaims, lateDecides: tc.lateDecides}
			if err := decideCase(context.Background(), f, job{id: "r1", version: 3}); err != nil {
				t.Fatalf("decideCase: %v", err)
			}
			if f.c.GetState() != triagev1.CaseState_DECIDED || f.claims != tc.wantClaims || f.decides != tc.wantDecides {
				t.Errorf("case %s after %d claims and %d decisions, want DECIDED after %d and %d",
					f.c.GetState(), f.claims, f.decides, tc.wantClaims, tc.wantDecides)
			}
		})
	}
}
