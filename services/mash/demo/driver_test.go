package demo

import (
	"context"
	"errors"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// caseReader answers GetCase with a case at version, or with nothing when version is 0.
type caseReader struct {
	triagev1.TriageServiceClient
	version int64
}

func (f caseReader) GetCase(context.Context, *triagev1.GetCaseRequest, ...grpc.CallOption) (*triagev1.GetCaseResponse, error) {
	if f.version == 0 {
		return nil, status.Error(codes.NotFound, "no such case")
	}
	return &triagev1.GetCaseResponse{Case: &triagev1.Case{Version: f.version}}, nil
}

// A change refused because the case moved on runs once more on the version the case has now,
// and only then; anything else is returned as it came.
func TestOnLatestRetriesOnceOnTheCurrentVersion(t *testing.T) {
	moved := status.Error(codes.Aborted, "case changed since you loaded it")
	other := errors.New("unavailable")
	for _, tc := range []struct {
		name    string
		current int64           // the version GetCase reads; 0: the case is not found
		answer  map[int64]error // what the change answers at each version
		want    error           // what onLatest returns
		tried   []int64         // the versions the change ran with
	}{
		{"accepted at once", 5, map[int64]error{3: nil}, nil, []int64{3}},
		{"moved on, then accepted", 5, map[int64]error{3: moved, 5: nil}, nil, []int64{3, 5}},
		{"moved on twice", 5, map[int64]error{3: moved, 5: moved}, moved, []int64{3, 5}},
		{"another failure is not retried", 5, map[int64]error{3: other}, other, []int64{3}},
		{"moved on, case gone", 0, map[int64]error{3: moved}, moved, []int64{3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &run{triage: caseReader{version: tc.current}}
			var tried []int64
			err := r.onLatest(context.Background(), &caseRun{id: "r-1", practitioner: "token"}, 3, func(v int64) error {
				tried = append(tried, v)
				return tc.answer[v]
			})
			if !errors.Is(err, tc.want) || !slices.Equal(tried, tc.tried) {
				t.Fatalf("returned %v after versions %v; want %v after %v", err, tried, tc.want, tc.tried)
			}
		})
	}
}
