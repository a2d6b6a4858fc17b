package events

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	eventsv1 "github.com/mash-hub/mash/proto/mash/events/v1"
)

// Router is a consumer's Handler made of typed handlers, one per subject or per payload
// message type, registered with On and OnType: a consumer says what it does with a
// DecisionMade, and the router unpacks the payload, instead of every consumer switching on
// subject strings and unpacking Anys by hand. Registration checks each subject against the
// event catalogue: a subject that is not there, or that carries another message, is refused
// when the consumer is built, not when the first event arrives.
type Router struct {
	bySubject map[string]Handler
	byType    map[protoreflect.FullName]Handler
	// Default handles events no registration matches; nil acknowledges them unhandled
	// (producers may add events without breaking a consumer).
	Default Handler
	errs    []error
}

// NewRouter returns an empty router.
func NewRouter() *Router {
	return &Router{bySubject: map[string]Handler{}, byType: map[protoreflect.FullName]Handler{}}
}

// TypedHandler applies one event whose payload is an M.
type TypedHandler[M proto.Message] func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope, m M) error

// On registers h for the given subjects, each of which the catalogue must declare as
// carrying an M. Errors are kept for Err (and NewConsumer's caller) to report.
func On[M proto.Message](r *Router, h TypedHandler[M], subjects ...string) {
	name := newOf[M]().ProtoReflect().Descriptor().FullName()
	if len(subjects) == 0 {
		r.errs = append(r.errs, fmt.Errorf("router: no subjects for %s (use OnType for every subject it is on)", name))
	}
	for _, s := range subjects {
		if !carries(s, name) {
			r.errs = append(r.errs, fmt.Errorf("router: the event catalogue has no subject %s carrying %s", s, name))
			continue
		}
		if _, dup := r.bySubject[s]; dup {
			r.errs = append(r.errs, fmt.Errorf("router: two handlers for %s", s))
		}
		r.bySubject[s] = typed(h)
	}
}

// OnType registers h for every event whose payload is an M, whatever its subject (a
// consumer of every event, such as the audit log). Handlers by subject come first.
func OnType[M proto.Message](r *Router, h TypedHandler[M]) {
	name := newOf[M]().ProtoReflect().Descriptor().FullName()
	if _, dup := r.byType[name]; dup {
		r.errs = append(r.errs, fmt.Errorf("router: two handlers for %s", name))
	}
	r.byType[name] = typed(h)
}

// Err reports what registration refused; a consumer must not run with it.
func (r *Router) Err() error {
	if len(r.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%v", r.errs)
}

// Subjects are the subjects registered with On, sorted: the consumer's FilterSubjects when
// it takes nothing else.
func (r *Router) Subjects() []string {
	out := make([]string, 0, len(r.bySubject))
	for s := range r.bySubject {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Handle is the router as a Handler.
func (r *Router) Handle(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
	if h, ok := r.bySubject[env.GetType()]; ok {
		return h(ctx, tx, env)
	}
	if p := env.GetPayload(); p != nil {
		if h, ok := r.byType[p.MessageName()]; ok {
			return h(ctx, tx, env)
		}
	}
	if r.Default != nil {
		return r.Default(ctx, tx, env)
	}
	return nil
}

// typed unpacks the payload as an M before calling h.
func typed[M proto.Message](h TypedHandler[M]) Handler {
	return func(ctx context.Context, tx pgx.Tx, env *eventsv1.Envelope) error {
		m := newOf[M]()
		if err := env.GetPayload().UnmarshalTo(m); err != nil {
			return fmt.Errorf("decode %s %s as %s: %w", env.GetType(), env.GetEventId(), m.ProtoReflect().Descriptor().FullName(), err)
		}
		return h(ctx, tx, env, m)
	}
}

// newOf is a new, empty M (M is a pointer to a generated message).
func newOf[M proto.Message]() M {
	var zero M
	return zero.ProtoReflect().Type().New().Interface().(M)
}

// carries reports whether the catalogue declares subject as carrying the message name.
func carries(subject string, name protoreflect.FullName) bool {
	for _, e := range eventsv1.Catalogue {
		if e.Subject == subject && e.Message == string(name) {
			return true
		}
	}
	return false
}
