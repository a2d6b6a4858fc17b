package triage

import (
	"context"
	"errors"
	"fmt"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/server"
	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
	"github.com/mash-hub/mash/services/triage/store"
)

// Legal hold events; both carry the case and the manager's reason.
const (
	EventLegalHoldPlaced = eventsv1.SubjectCaseLegalHoldPlaced
	EventLegalHoldLifted = eventsv1.SubjectCaseLegalHoldLifted
)

// maxHoldReason bounds a hold's reason: a sentence or two, not a document.
const maxHoldReason = 2000

func checkHoldReason(reason string) error {
	switch {
	case strings.TrimSpace(reason) == "":
		return invalid("reason", "is required: why the case must be kept, or why it need no longer be")
	case utf8.RuneCountInString(reason) > maxHoldReason:
		return invalid("reason", fmt.Sprintf("is longer than %d characters", maxHoldReason))
	case !utf8.ValidString(reason) || strings.ContainsRune(reason, 0):
		return invalid("reason", "must be UTF-8 text without NUL characters")
	}
	return nil
}

func (a *grpcAPI) PlaceLegalHold(ctx context.Context, req *triagev1.PlaceLegalHoldRequest) (*triagev1.PlaceLegalHoldResponse, error) {
	id, err := server.Require(ctx, auth.HoldCases)
	if err != nil {
		return nil, err
	}
	if err := checkHoldReason(req.GetReason()); err != nil {
		return nil, err
	}
	var hold store.LegalHold
	_, err = a.svc.changeCase(ctx, req.GetReferralId(), id, func(tx pgx.Tx, c store.Case) (store.Case, string, string, error) {
		hold, err = store.PlaceHold(ctx, tx, c.ReferralID, req.GetReason(), id.ClientID, a.svc.now().UTC())
		if errors.Is(err, store.ErrHeld) {
			return c, "", "", apierr.FailedPrecondition(fmt.Sprintf("case %s is already under legal hold", c.ReferralID))
		}
		return c, EventLegalHoldPlaced, req.GetReason(), err
	})
	if err != nil {
		return nil, err
	}
	return &triagev1.PlaceLegalHoldResponse{Hold: holdToProto(hold)}, nil
}

func (a *grpcAPI) LiftLegalHold(ctx context.Context, req *triagev1.LiftLegalHoldRequest) (*triagev1.LiftLegalHoldResponse, error) {
	id, err := server.Require(ctx, auth.HoldCases)
	if err != nil {
		return nil, err
	}
	if err := checkHoldReason(req.GetReason()); err != nil {
		return nil, err
	}
	var hold store.LegalHold
	_, err = a.svc.changeCase(ctx, req.GetReferralId(), id, func(tx pgx.Tx, c store.Case) (store.Case, string, string, error) {
		hold, err = store.LiftHold(ctx, tx, c.ReferralID, req.GetReason(), id.ClientID, a.svc.now().UTC())
		if errors.Is(err, store.ErrNotHeld) {
			return c, "", "", apierr.FailedPrecondition(fmt.Sprintf("case %s is not under legal hold", c.ReferralID))
		}
		return c, EventLegalHoldLifted, req.GetReason(), err
	})
	if err != nil {
		return nil, err
	}
	return &triagev1.LiftLegalHoldResponse{Hold: holdToProto(hold)}, nil
}

func holdToProto(h store.LegalHold) *triagev1.LegalHold {
	return &triagev1.LegalHold{ReferralId: h.ReferralID, Reason: h.Reason, PlacedBy: h.PlacedBy, PlacedAt: timestamppb.New(h.PlacedAt),
		LiftedBy: h.LiftedBy, LiftReason: h.LiftReason, LiftedAt: ts(h.LiftedAt)}
}
