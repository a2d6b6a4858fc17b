package triage

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/services/triage/store"
)

// The errors callers see, built in one place so both transports say the same thing.

func caseNotFound(referralID string) error {
	return apierr.NotFound("no case for referral " + referralID + " (cases appear within seconds of receipt)")
}

// notFoundAs turns the store's not-found into the caller's, leaving other errors as they are.
func notFoundAs(err error, notFound error) error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound
	}
	return err
}

// checkVersionOf refuses a change made against version expected of what (a case or a
// disagreement) when it is now at current; expected 0 means the caller did not say.
func checkVersionOf(what, id string, expected, current int64) error {
	if expected > 0 && expected != current {
		return apierr.Conflict(fmt.Sprintf("%s %s changed since you loaded it (version %d, now %d); reload it and try again",
			what, id, expected, current))
	}
	return nil
}

func checkVersion(c store.Case, expected int64) error {
	return checkVersionOf("case", c.ReferralID, expected, c.Version)
}

func claimedByOther(c store.Case) error {
	if c.Assigned() {
		return apierr.FailedPrecondition(fmt.Sprintf("case %s is assigned to %s until a manager changes it; ask them or a manager to release it",
			c.ReferralID, c.Assignee))
	}
	return apierr.FailedPrecondition(fmt.Sprintf("case %s is claimed by %s until %s; ask them or a manager to release it, or wait for the claim to lapse",
		c.ReferralID, c.Assignee, c.ClaimExpiresAt.UTC().Format(time.RFC3339)))
}

// caseErased refuses a change to an erased case.
func caseErased(referralID string) error {
	return apierr.FailedPrecondition(fmt.Sprintf("case %s was erased: nothing more can be recorded about it", referralID))
}

func caseClosed(c store.Case) error {
	return apierr.FailedPrecondition(fmt.Sprintf("case %s is closed", c.ReferralID))
}

func invalid(field, reason string) error {
	return apierr.Invalid([]apierr.Violation{{Field: field, Reason: reason}})
}

// violationsOf is the field violations of err, a check's InvalidArgument error, for the
// gateway's check of a body it could not fully decode (server.Validator); nil for nil.
func violationsOf(err error) []apierr.Violation {
	var e *apierr.Error
	if errors.As(err, &e) {
		return e.Violations
	}
	return nil
}

// fromPeer passes a peer's gRPC status through with its code, so a caller sees rules'
// refusal (a stale decision version, an unknown agency) as rules gave it.
func fromPeer(peer string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("call %s: %w", peer, err)
	}
	if st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded {
		return apierr.Unavailable(fmt.Sprintf("the %s service did not answer; nothing was changed, retry shortly", peer))
	}
	return st.Err()
}
