package console

import (
	"context"
	"net/http"
	"strings"

	triagev1 "github.com/mash-hub/mash/proto/mash/triage/v1"
)

// authoriseSharing is a manager's authorisation to share a case whose family has not given
// consent, with the lawful basis and the reason: triage checks and records it.
func (s *Service) authoriseSharing(w http.ResponseWriter, r *http.Request, rs *reqState) {
	req := &triagev1.AuthoriseSharingRequest{ReferralId: r.PathValue("id"), ExpectedVersion: version(r),
		LawfulBasis: strings.TrimSpace(r.PostFormValue("lawful-basis")), Reason: strings.TrimSpace(r.PostFormValue("sharing-reason"))}
	var pre []check
	if req.LawfulBasis == "" {
		pre = append(pre, check{"lawful-basis", "sharing.basis_missing"})
	}
	if req.Reason == "" {
		pre = append(pre, check{"sharing-reason", "sharing.reason_missing"})
	}
	a := action{form: "sharing", done: "sharing_authorised", pre: pre,
		fields: map[string]string{"lawfulBasis": "lawful-basis", "reason": "sharing-reason"}}
	s.actOn(w, r, rs, a, func(ctx context.Context) error {
		_, err := s.b.Triage.AuthoriseSharing(ctx, req)
		return err
	})
}

// revokeSharing withdraws a manager's authorisation; agencies told under it are told to
// disregard what they were sent.
func (s *Service) revokeSharing(w http.ResponseWriter, r *http.Request, rs *reqState) {
	req := &triagev1.RevokeSharingRequest{ReferralId: r.PathValue("id"), ExpectedVersion: version(r),
		Reason: strings.TrimSpace(r.PostFormValue("revoke-reason"))}
	var pre []check
	if req.Reason == "" {
		pre = append(pre, check{"revoke-reason", "sharing.revoke_reason_missing"})
	}
	a := action{form: "sharing", done: "sharing_revoked", pre: pre, fields: map[string]string{"reason": "revoke-reason"}}
	s.actOn(w, r, rs, a, func(ctx context.Context) error {
		_, err := s.b.Triage.RevokeSharing(ctx, req)
		return err
	})
}
