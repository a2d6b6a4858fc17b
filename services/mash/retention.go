package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"mash/pkg/config"
	triagestore "mash/services/triage/store"
)

// retentionCommand lists the closed cases their retention schedule says are due for
// erasure, with the rule that makes each due. Erasing them is not part of this build, so the
// command runs only as a dry run.
func retentionCommand(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "run" {
		return errors.New("usage: mash retention run --dry-run [--at YYYY-MM-DD]")
	}
	var dryRun *bool
	var at *string
	pool, rest, err := openDB(ctx, "retention run", args[1:], func(s *config.Set) {
		dryRun = s.Bool("dry-run", "MASH_RETENTION_DRY_RUN", false, "list the cases due and the rule that makes each due; change nothing")
		at = s.String("at", "MASH_RETENTION_AT", "", "the day to judge at (YYYY-MM-DD, UTC); default now")
	}, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	if len(rest) > 0 {
		return fmt.Errorf("mash retention run: unexpected argument %q", rest[0])
	}
	if !*dryRun {
		return errors.New("mash retention run: --dry-run is required: this build lists the cases due but cannot erase them yet")
	}
	when := time.Now().UTC()
	if *at != "" {
		if when, err = time.Parse(time.DateOnly, *at); err != nil {
			return fmt.Errorf("--at %q: must be a date, YYYY-MM-DD", *at)
		}
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
