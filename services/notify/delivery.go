package notify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/mash-hub/mash/pkg/auth"
	"github.com/mash-hub/mash/pkg/db"
	"github.com/mash-hub/mash/pkg/events"
	"github.com/mash-hub/mash/pkg/failpoint"
	notifyv1 "github.com/mash-hub/mash/proto/mash/notify/v1"
	"github.com/mash-hub/mash/services/notify/channel"
	"github.com/mash-hub/mash/services/notify/directory"
	"github.com/mash-hub/mash/services/notify/store"
)

// leaseFor is how long a claimed notification stays with its sender: past it, a sender that
// died is presumed gone and another claims the row. Longer than any attempt can take.
func (s *Service) leaseFor() time.Duration { return 2*s.cfg.SendTimeout + 5*time.Second }

// waitBudget is how long a claimed notification may wait for its agency's slot: its lease
// less one attempt and a margin for reading the directory and recording the result. One
// that waits longer gives its claim back unsent rather than be claimed again while waiting.
func (s *Service) waitBudget() time.Duration { return s.leaseFor() - s.cfg.SendTimeout - 2*time.Second }

// deliverLoop claims due notifications and sends each in its own goroutine, bounded overall
// and per agency, until ctx ends.
func (s *Service) deliverLoop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
		for ctx.Err() == nil {
			n, err := s.DeliverDue(ctx)
			if err != nil {
				if ctx.Err() == nil { // a claim cut short by shutdown did not fail
					s.log.Error("claim notifications", zap.Error(err))
				}
				break
			}
			if n == 0 {
				break
			}
		}
		if _, err := s.DeliverNoticesDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("claim change notices", zap.Error(err))
		}
		timer.Reset(s.cfg.Poll)
	}
}

// DeliverDue claims the notifications due now (as many as there are free sending slots, and
// of each agency as many as it has room for) and starts sending them, most urgent first; it
// returns how many it claimed. Tests call it with an injected clock.
func (s *Service) DeliverDue(ctx context.Context) (int, error) {
	free := cap(s.inflight) - len(s.inflight)
	if free == 0 {
		s.slotsFull.Store(true)
		return 0, nil
	}
	var claimed, giveBack []store.Notification
	var claimedRows int
	room, skipPartnerships, skipAgencies := s.agencies.allowances()
	err := pgx.BeginFunc(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		ns, err := store.Claim(ctx, tx, s.now().UTC(), s.leaseFor(), free, skipPartnerships, skipAgencies)
		if err != nil {
			return err
		}
		claimedRows = len(ns)
		claimed, giveBack = trim(ns, room)
		if len(giveBack) > 0 {
			ids := make([]string, len(giveBack))
			for i, n := range giveBack {
				ids[i] = n.ID
			}
			if err := store.Unclaim(ctx, tx, ids); err != nil {
				return err
			}
		}
		b := &pgx.Batch{}
		var sendable []store.Notification
		var asideIDs, asideReasons []string
		var asideDue []time.Time
		for _, n := range claimed {
			if n.Attempts == 1 {
				env, raw, err := s.event(ctx, EventSent, n, 1, "", auth.Actor{})
				if err != nil {
					if ctx.Err() != nil {
						return err
					}
					// Its case's key cannot be read (a different key-encryption key, say):
					// this one waits, rather than fail the claim of every agency's messages.
					reason := truncate("not attempted: its event cannot be sealed: "+err.Error(), 500)
					s.log.Error("notification set aside", zap.String("notification_id", n.ID), zap.String("referral_id", n.ReferralID),
						zap.String("agency", n.Agency), zap.Error(err))
					s.metrics.attempts.WithLabelValues(n.Channel, "not_attempted").Inc()
					asideIDs, asideReasons = append(asideIDs, n.ID), append(asideReasons, reason)
					asideDue = append(asideDue, s.now().UTC().Add(s.setAsideFor(n)))
					continue
				}
				events.AppendOutbox(ctx, b, store.Schema, env, raw)
			}
			sendable = append(sendable, n)
		}
		claimed = sendable
		if len(asideIDs) > 0 {
			if err := store.SetAside(ctx, tx, asideIDs, asideDue, asideReasons); err != nil {
				return err
			}
		}
		if b.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return 0, err
	}
	s.agencies.claimed(claimed, giveBack, room)
	if len(claimed) > 0 {
		s.relay.Wake()
	}
	if claimedRows == free {
		// More may be due than there were slots: the first slot freed claims again, rather
		// than the next poll or commit (a poll's wait, under load, is slots left idle).
		s.slotsFull.Store(true)
	}
	waitUntil := time.Now().Add(s.waitBudget())
	for _, n := range claimed {
		s.inflight <- struct{}{}
		s.sending.Add(1)
		go func() {
			defer func() {
				<-s.inflight
				s.sending.Done()
				if s.slotsFull.CompareAndSwap(true, false) {
					s.Wake()
				}
			}()
			s.deliver(context.WithoutCancel(ctx), n, waitUntil)
		}()
	}
	return len(claimed), nil
}

// deliver makes one attempt and records it. It runs detached from the service's context so
// shutdown lets an attempt finish and be recorded; the send timeout bounds it, and
// waitUntil the wait for the agency's slot.
func (s *Service) deliver(ctx context.Context, n store.Notification, waitUntil time.Time) {
	dir, err := s.directoryOf(ctx, s.store.Pool(), n.Partnership)
	var res store.Result
	var a directory.Agency
	var found bool
	if err == nil {
		a, found, err = s.agencyByID(ctx, s.store.Pool(), dir, n.Agency)
	}
	switch {
	case err != nil:
		res = s.retryOrFail(n, fmt.Sprintf("read agency %s: %v", n.Agency, err))
	case !found:
		res = store.Result{Final: true, Detail: fmt.Sprintf("agency %s is no longer in the directory", n.Agency)}
	default:
		res = s.attempt(ctx, n, a, dir.partnership.ConsoleURL, waitUntil)
	}
	if s.agencies.sent(n) {
		s.Wake()
	}
	failpoint.Inject("notify.after-send-before-record")
	if err := s.record(ctx, n, res); err != nil {
		// The lease runs out and the row is claimed again: the receiver drops the repeat
		// by its idempotency key.
		s.log.Error("record delivery attempt", zap.String("notification_id", n.ID), zap.Error(err))
	}
}

func (s *Service) attempt(ctx context.Context, n store.Notification, a directory.Agency, consoleURL string, waitUntil time.Time) store.Result {
	sem := s.agencies.slot(n, a.Concurrency)
	select {
	case sem <- struct{}{}:
	default:
		wait := time.NewTimer(time.Until(waitUntil))
		defer wait.Stop()
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return s.retryOrFail(n, "shutting down before the attempt")
		case <-wait.C:
			// Not sent: the agency is slower than when this was claimed. Waiting on would
			// outlast the lease and have the notification claimed, and sent, twice.
			s.metrics.attempts.WithLabelValues(a.Channel, "not_attempted").Inc()
			return s.retryOrFail(n, fmt.Sprintf("not attempted: %s had no free sending slot within %s", n.Agency, s.waitBudget()))
		}
	}
	defer func() { <-sem }()
	target := a.Endpoint()
	m := channel.Message{ID: n.ID, Agency: n.Agency, Kind: kindName(n.Kind), Reference: n.Reference, Body: n.Payload}
	if consoleURL != "" {
		m.Link = consoleURL + "/referrals/" + n.ReferralID
	}
	if target.Kind == channel.KindNATS {
		// The message will rest on the agency stream in clear: the intent is recorded first,
		// so an erasure reaches it even if its place is never recorded (see noteAgencySend).
		erased, err := s.noteAgencySend(ctx, n, target.Subject)
		switch {
		case err != nil:
			return s.retryOrFail(n, err.Error())
		case erased:
			return store.Result{Final: true, Detail: "cancelled: the case was erased"}
		}
	}
	sctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	defer cancel()
	start := time.Now()
	receipt, err := s.channels.Send(sctx, target, m)
	s.agencies.observe(n, time.Since(start))
	s.metrics.attempts.WithLabelValues(a.Channel, resultLabel(err)).Inc()
	s.metrics.attemptSeconds.WithLabelValues(a.Channel).Observe(time.Since(start).Seconds())
	if err == nil && receipt.Sequence > 0 {
		// The message rests on the agency stream in clear: its place is recorded before the
		// delivery counts, so that erasing the case can delete it. A record that fails is
		// retried as a failed attempt; the re-send is recognised by the stream (same
		// Nats-Msg-Id) and answered with the same place.
		if rerr := s.noteAgencyMessage(ctx, n, receipt, true); rerr != nil {
			return s.retryOrFail(n, rerr.Error())
		}
	}
	switch {
	case err == nil:
		return store.Result{OK: true, Final: true, Detail: receipt.Detail}
	case channel.IsPermanent(err):
		return store.Result{Final: true, Detail: err.Error()}
	}
	return s.retryOrFail(n, err.Error())
}

func resultLabel(err error) string {
	switch {
	case err == nil:
		return "ok"
	case channel.IsPermanent(err):
		return "permanent"
	}
	return "retry"
}

// retryOrFail schedules the next attempt with exponential backoff and jitter, or fails the
// notification when its attempts are spent.
func (s *Service) retryOrFail(n store.Notification, detail string) store.Result {
	if n.Attempts-n.RetryBase >= s.cfg.MaxAttempts {
		return store.Result{Final: true, Detail: fmt.Sprintf("gave up after %d attempts: %s", n.Attempts-n.RetryBase, detail)}
	}
	return store.Result{Detail: detail, Retry: s.now().UTC().Add(s.backoff(n.Attempts))}
}

// setAsideFor is how long a notification whose attempt could not start waits before it is
// claimed again: as long as it has waited so far, within the backoff's bounds, so a cause
// that passes (a database hiccup) costs seconds and one that needs a person (a wrong key)
// costs a claim every few minutes, not every poll.
func (s *Service) setAsideFor(n store.Notification) time.Duration {
	d := min(max(s.now().Sub(n.CreatedAt), s.cfg.BaseBackoff), s.cfg.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// backoff is the delay after attempt n failed: base·2^(n-1) capped, then a random half to
// whole of it, so agencies recovering from an outage are not hit by every retry at once.
func (s *Service) backoff(n int) time.Duration {
	d := s.cfg.BaseBackoff
	for i := 1; i < n && d < s.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.cfg.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// recordBatch bounds how many attempt results share one transaction.
const recordBatch = 128

// recording is one result waiting for the recorder.
type recording struct {
	rec  store.Recorded
	done chan error
}

// record hands an attempt's result to the recorder and waits until it is committed.
func (s *Service) record(ctx context.Context, n store.Notification, res store.Result) error {
	rec := store.Recorded{N: n, At: s.now().UTC(), Result: res}
	subject := ""
	switch {
	case res.OK:
		subject = EventDelivered
	case res.Final:
		subject = EventFailed
	}
	if subject != "" {
		env, raw, err := s.event(ctx, subject, n, n.Attempts, res.Detail, auth.Actor{})
		if err != nil {
			return err
		}
		rec.EventID, rec.Subject, rec.Event = env.GetEventId(), subject, raw
	}
	if res.Retry.IsZero() {
		rec.Result.Retry = rec.At
	}
	r := recording{rec: rec, done: make(chan error, 1)}
	select {
	case s.results <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// recordLoop commits attempt results in groups: whatever arrived while the previous group
// was committing goes in the next, so under load many attempts share one commit and one
// round trip, and alone an attempt waits for nobody.
func (s *Service) recordLoop(ctx context.Context) {
	for {
		var first recording
		var ok bool
		select {
		case first, ok = <-s.results:
			if !ok {
				return
			}
		case <-ctx.Done():
			return
		}
		group := []recording{first}
	more:
		for len(group) < recordBatch {
			select {
			case r, ok := <-s.results:
				if !ok {
					break more
				}
				group = append(group, r)
			default:
				break more
			}
		}
		s.commitGroup(ctx, group)
	}
}

// commitGroup records a group of attempts in one transaction, run again when Postgres ends
// it as a deadlock victim: a decision's consumer locking a referral's notifications, or an
// agency's acknowledgement, can cross the group's locks. Failing, the group would leave its
// rows SENDING until their lease ran out, and every agency in it would be sent the same
// message again.
func (s *Service) commitGroup(ctx context.Context, group []recording) {
	recs := make([]store.Recorded, len(group))
	for i, g := range group {
		recs[i] = g.rec
	}
	var recorded []bool
	err := db.InTx(ctx, s.store.Pool(), func(tx pgx.Tx) error {
		var err error
		recorded, err = store.RecordAttempts(ctx, tx, recs)
		return err
	})
	for _, g := range group {
		g.done <- err
	}
	if err != nil {
		return
	}
	s.relay.Wake()
	for i, r := range recs {
		if recorded[i] {
			s.logAttempt(r)
		}
	}
}

func (s *Service) logAttempt(r store.Recorded) {
	n, res := r.N, r.Result
	switch {
	case res.OK:
		s.metrics.deliveryLatency.WithLabelValues(n.Kind).Observe(r.At.Sub(n.CreatedAt).Seconds())
		s.log.Info("notification delivered", zap.String("notification_id", n.ID), zap.String("referral_id", n.ReferralID),
			zap.String("agency", n.Agency), zap.String("kind", n.Kind), zap.Int("attempt", n.Attempts), zap.String("receipt", res.Detail))
	case res.Final:
		s.log.Warn("notification failed: in the dead-letter list", zap.String("notification_id", n.ID), zap.String("referral_id", n.ReferralID),
			zap.String("agency", n.Agency), zap.String("kind", n.Kind), zap.Int("attempt", n.Attempts), zap.String("error", res.Detail))
	default:
		s.log.Info("notification attempt failed; will retry", zap.String("notification_id", n.ID), zap.String("agency", n.Agency),
			zap.Int("attempt", n.Attempts), zap.Time("next_attempt_at", res.Retry), zap.String("error", res.Detail))
	}
}

func kindName(kind string) string {
	if v, ok := notifyv1.NotificationKind_value[kind]; ok {
		switch notifyv1.NotificationKind(v) {
		case notifyv1.NotificationKind_ACTION:
			return "notification"
		case notifyv1.NotificationKind_WITHDRAWAL:
			return "withdrawal"
		case notifyv1.NotificationKind_ESCALATION:
			return "escalation"
		case notifyv1.NotificationKind_RECEIPT:
			return "receipt"
		case notifyv1.NotificationKind_OUTCOME:
			return "outcome"
		case notifyv1.NotificationKind_ENCOMPASS:
			return "encompass"
		case notifyv1.NotificationKind_INFORMATION_REQUEST:
			return "information-request"
		case notifyv1.NotificationKind_DISAGREEMENT:
			return "disagreement"
		case notifyv1.NotificationKind_LEAD_PROFESSIONAL:
			return "lead-professional"
		}
	}
	return "notification"
}
