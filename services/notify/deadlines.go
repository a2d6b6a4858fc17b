package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/adminact"
	"github.com/mash-hub/mash/pkg/apierr"
	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/server"
	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/store"
)

// Acknowledgement deadlines through the API. They are partnership settings, like the
// directory file's ackDeadlines, and apply at once: the four-eyes rule guards where a
// child's data goes (routing, secrets), and a deadline decides only when the duty manager
// hears that no one acknowledged. Each change is in the directory's change log (before and
// after) and on the audit trail as an administrative act.

// EventAdminDirectory is the subject of notify's administrative acts on the directory.
const EventAdminDirectory = eventsv1.SubjectAdminDirectory

func (a *grpcAPI) GetAckDeadlines(ctx context.Context, req *notifyv1.GetAckDeadlinesRequest) (*notifyv1.GetAckDeadlinesResponse, error) {
	id, err := server.Require(ctx, auth.ReadDirectory)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.GetPartnership()) == "" {
		return nil, apierr.Invalid([]apierr.Violation{{Field: "partnership", Reason: "is required"}})
	}
	// Another partnership's settings are as unknown as a missing one's; the default
	// partnership's apply to every partnership without its own, so anyone may read them.
	_, all := id.PartnershipScope()
	visible := all || req.GetPartnership() == DefaultPartnership || id.Serves(req.GetPartnership())
	p, err := a.svc.store.Partnership(ctx, req.GetPartnership())
	if errors.Is(err, store.ErrNotFound) || (err == nil && !visible) {
		return nil, apierr.NotFound(fmt.Sprintf("partnership %s is not in the directory", req.GetPartnership()))
	}
	if err != nil {
		return nil, err
	}
	return deadlinesToProto(p), nil
}

// ackDeadlinesOf reads a SetAckDeadlines request: its deadlines, and what is wrong with it.
func ackDeadlinesOf(req *notifyv1.SetAckDeadlinesRequest) ([]directory.AckDeadline, []apierr.Violation) {
	var vs []apierr.Violation
	if strings.TrimSpace(req.GetPartnership()) == "" {
		vs = append(vs, apierr.Violation{Field: "partnership", Reason: "is required"})
	}
	if strings.TrimSpace(req.GetReason()) == "" {
		vs = append(vs, apierr.Violation{Field: "reason", Reason: "is required: the directory's change log says why"})
	}
	if m := req.GetRedAckMinutes(); m < 0 || m > 24*60 {
		vs = append(vs, apierr.Violation{Field: "redAckMinutes", Reason: "must be between 1 and 1440 (0 keeps the current figure)"})
	}
	deadlines := make([]directory.AckDeadline, len(req.GetDeadlines()))
	for i, d := range req.GetDeadlines() {
		deadlines[i] = directory.AckDeadline{Role: strings.TrimSpace(d.GetRole()), RAG: strings.ToUpper(strings.TrimSpace(d.GetRag())),
			Within: strings.TrimSpace(d.GetWithin())}
		if err := deadlines[i].Check(); err != nil {
			vs = append(vs, apierr.Violation{Field: fmt.Sprintf("deadlines[%d]", i), Reason: err.Error()})
		}
	}
	return deadlines, vs
}

// checkAckDeadlines is SetAckDeadlines' check of its request.
func checkAckDeadlines(req *notifyv1.SetAckDeadlinesRequest) []apierr.Violation {
	_, vs := ackDeadlinesOf(req)
	return vs
}

func (a *grpcAPI) SetAckDeadlines(ctx context.Context, req *notifyv1.SetAckDeadlinesRequest) (*notifyv1.SetAckDeadlinesResponse, error) {
	id, err := server.Require(ctx, auth.ChangeDirectory)
	if err != nil {
		return nil, err
	}
	deadlines, vs := ackDeadlinesOf(req)
	if len(vs) > 0 {
		return nil, apierr.Invalid(vs)
	}
	if err := checkDirectoryScope(id, req.GetPartnership()); err != nil {
		return nil, err
	}
	var p directory.Partnership
	err = pgx.BeginFunc(ctx, a.svc.store.Pool(), func(tx pgx.Tx) error {
		var err error
		if p, err = store.PartnershipForUpdate(ctx, tx, req.GetPartnership()); errors.Is(err, store.ErrNotFound) {
			return apierr.NotFound(fmt.Sprintf("partnership %s is not in the directory: load it from the directory file first", req.GetPartnership()))
		} else if err != nil {
			return err
		}
		p.AckDeadlines = deadlines
		if m := req.GetRedAckMinutes(); m != 0 {
			p.RedAckMinutes = int(m)
		}
		if err := store.PutPartnership(ctx, tx, p, id.Actor(), req.GetReason()); err != nil {
			return err
		}
		act := adminact.Act{Subject: EventAdminDirectory, Verb: "ack-deadlines", Target: p.ID, Reason: req.GetReason(), Partnership: p.ID,
			Detail: deadlinesText(p)}.By(ctx, id)
		return adminact.Insert(ctx, tx, store.Schema, act, a.svc.now())
	})
	if err != nil {
		return nil, err
	}
	a.svc.directoryChanged()
	a.svc.relay.Wake()
	a.svc.log.Info("acknowledgement deadlines set", zap.String("partnership", p.ID), zap.Int("deadlines", len(p.AckDeadlines)),
		zap.String("by", id.Actor()))
	return &notifyv1.SetAckDeadlinesResponse{Deadlines: deadlinesToProto(p)}, nil
}

func deadlinesToProto(p directory.Partnership) *notifyv1.GetAckDeadlinesResponse {
	out := &notifyv1.GetAckDeadlinesResponse{Partnership: p.ID, RedAckMinutes: int32(p.RedAckMinutes)}
	for _, d := range p.AckDeadlines {
		out.Deadlines = append(out.Deadlines, &notifyv1.AckDeadline{Role: d.Role, Rag: d.RAG, Within: d.Within})
	}
	for _, d := range directory.DefaultAckDeadlines {
		out.Defaults = append(out.Defaults, &notifyv1.AckDeadline{Role: d.Role, Rag: d.RAG, Within: d.Within})
	}
	out.Defaults = append(out.Defaults, &notifyv1.AckDeadline{Role: "*", Rag: "RED", Within: fmt.Sprintf("%dm", p.RedAckMinutes)})
	return out
}

// deadlinesText is the deadlines as the audit trail records them.
func deadlinesText(p directory.Partnership) string {
	parts := make([]string, 0, len(p.AckDeadlines)+1)
	for _, d := range p.AckDeadlines {
		parts = append(parts, d.Role+"/"+d.RAG+" within "+d.Within)
	}
	parts = append(parts, fmt.Sprintf("Red otherwise within %dm", p.RedAckMinutes))
	return strings.Join(parts, "; ")
}
