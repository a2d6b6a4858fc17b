package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/metadata"

	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// decide plays the practitioners: each case the tracker finds on the queue is claimed and
// its recommendation confirmed through triage, the one decision door. The returned func waits
// for them to finish once jobs is closed.
func decide(ctx context.Context, triage triagev1.TriageServiceClient, token string, workers int, jobs <-chan job) (wait func()) {
	md := metadata.Pairs("authorization", "Bearer "+token)
	var failures atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := decideCase(metadata.NewOutgoingContext(ctx, md), triage, j); err != nil && failures.Add(1) <= 3 {
					fmt.Fprintf(os.Stderr, "loadgen pipeline: decide %s: %v\n", j.id, err)
				}
			}
		}()
	}
	return wg.Wait
}

// decideAttempts bounds how often a practitioner tries one case: an overloaded server times
// calls out, and a case left undecided would leave the run incomplete.
const decideAttempts = 5

// decideRetryWait is the wait before a case's second try; each try after waits one more.
var decideRetryWait = time.Second

// decideCase claims the case and confirms its recommendation. A failed try reads the case
// again before the next: the claim may have landed before the decision failed, and a case
// decided meanwhile (the decision landed, its answer did not) is done.
func decideCase(ctx context.Context, triage triagev1.TriageServiceClient, j job) error {
	version, claimed := j.version, false
	for attempt := 1; ; attempt++ {
		var err error
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if !claimed {
			var c *triagev1.ClaimCaseResponse
			if c, err = triage.ClaimCase(cctx, &triagev1.ClaimCaseRequest{ReferralId: j.id, ExpectedVersion: version}); err == nil {
				version, claimed = c.GetCase().GetVersion(), true
			}
		}
		if err == nil {
			_, err = triage.DecideCase(cctx, &triagev1.DecideCaseRequest{ReferralId: j.id,
				ExpectedVersion: version, Confirm: true, Reason: "bench: confirmed"})
		}
		cancel()
		if err == nil || attempt == decideAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * decideRetryWait):
		}
		cctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		got, gerr := triage.GetCase(cctx, &triagev1.GetCaseRequest{ReferralId: j.id})
		cancel()
		if gerr != nil {
			continue // try again as before; the next failure says why
		}
		c := got.GetCase()
		if c.GetState() >= triagev1.CaseState_DECIDED {
			return nil
		}
		version, claimed = c.GetVersion(), c.GetAssignee() != ""
	}
}
