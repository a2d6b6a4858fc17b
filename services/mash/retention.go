package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mash-hub/mash/pkg/config"
	"github.com/mash-hub/mash/services/triage"
	triagestore "github.com/mash-hub/mash/services/triage/store"
)

// retentionCommand lists the closed cases their retention schedule says are due for
// erasure, with the rule that makes each due (--dry-run), or erases them: each as mash
// cases erase does (key destroyed, every service told to blank its copy through the triage
// outbox, which a running triage relays), with an audit entry per case naming the operator
// and the rule.
func retentionCommand(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "run" {
		return errors.New("usage: mash retention run [--dry-run] [--at YYYY-MM-DD]")
	}
	var dryRun *bool
	var at *string
	pool, rest, err := openDB(ctx, "retention run", args[1:], func(s *config.Set) {
		dryRun = s.Bool("dry-run", "MASH_RETENTION_DRY_RUN", false, "list the cases due and the rule that makes each due; change nothing (without it: erase them)")
		at = s.String("at", "MASH_RETENTION_AT", "", "the day to judge at (YYYY-MM-DD, UTC); default now")
	}, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	if len(rest) > 0 {
		return fmt.Errorf("mash retention run: unexpected argument %q", rest[0])
	}
	when := time.Now().UTC()
	if *at != "" {
		if when, err = time.Parse(time.DateOnly, *at); err != nil {
			return fmt.Errorf("--at %q: must be a date, YYYY-MM-DD", *at)
		}
	}
	if !*dryRun {
		return eraseDue(ctx, pool, when)
	}
	due, err := triagestore.RetentionDue(ctx, pool, when)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "REFERRAL\tPARTNERSHIP\tRECORD\tCLOSED\tDUE\tRULE")
	for _, d := range due {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ReferralID, d.Partnership, d.RecordType,
			d.ClosedAt.UTC().Format(time.DateOnly), d.DueAt.UTC().Format(time.DateOnly), d.Rule())
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d cases due for erasure at %s (dry run: nothing changed)\n", len(due), when.Format(time.DateOnly))
	return nil
}

// eraseDue erases every case due at when, as the operator, and prints each with its rule.
func eraseDue(ctx context.Context, pool *pgxpool.Pool, when time.Time) error {
	run, err := triage.RunRetention(ctx, pool, when, triage.Eraser{ID: operator(), Role: "operator", ClientAddress: "local"}, time.Now)
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ERASED\tPARTNERSHIP\tRECORD\tCLOSED\tDUE\tRULE")
	for _, d := range run.Erased {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ReferralID, d.Partnership, d.RecordType,
			d.ClosedAt.UTC().Format(time.DateOnly), d.DueAt.UTC().Format(time.DateOnly), d.Rule())
	}
	if ferr := w.Flush(); ferr != nil && err == nil {
		err = ferr
	}
	for _, id := range run.Held {
		fmt.Fprintf(os.Stderr, "%s: not erased: a legal hold was placed on it during the run\n", id)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d cases erased at %s (each on the audit trail; a running triage tells every service)\n", len(run.Erased), when.Format(time.DateOnly))
	return nil
}
