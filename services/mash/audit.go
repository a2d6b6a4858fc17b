package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/mash-hub/mash/pkg/casekeys"
	"github.com/mash-hub/mash/pkg/config"
	"github.com/mash-hub/mash/services/audit"
	auditlog "github.com/mash-hub/mash/services/audit/tlog"
)

// auditCommand runs `mash audit keygen` and `mash audit verify`.
func auditCommand(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "keygen" && args[0] != "verify") {
		return fmt.Errorf("usage: mash audit keygen | verify --verify-key KEY [--origin O] [--export FILE]")
	}
	if args[0] == "keygen" {
		return auditKeygen()
	}
	var vkey, origin, previous, save *string
	declare := func(s *config.Set) {
		previous = s.String("previous", "MASH_AUDIT_PREVIOUS_CHECKPOINT", "", "a signed checkpoint kept from an earlier verification: prove the log still extends it")
		save = s.String("save", "MASH_AUDIT_SAVE_CHECKPOINT", "", "write the latest signed checkpoint here after a successful verification, for --previous next time")
		vkey = s.String("verify-key", "MASH_AUDIT_VERIFY_KEY", "", "the audit log's public key (from mash audit keygen)")
		origin = s.String("origin", audit.EnvOrigin, audit.DefaultOrigin, "the log's checkpoint origin")
		s.String("export", "MASH_AUDIT_EXPORT", "", "verify this export file (GET /v1/audit/export) offline instead of the live database")
	}
	check := func() error {
		if *vkey == "" {
			return fmt.Errorf("MASH_AUDIT_VERIFY_KEY: required: the public key the checkpoints must be signed with")
		}
		return nil
	}
	if exportFile, ok := exportFlag(args[1:]); ok {
		return verifyExportFile(args[1:], exportFile, declare, check)
	}
	pool, _, err := openDB(ctx, "audit verify", args[1:], declare, check)
	if err != nil {
		return err
	}
	defer pool.Close()
	// With the master key (where the operator has it) every payload is opened too, which
	// proves the wrapped case keys and nonces; the public key alone proves the rest.
	var opts audit.VerifyOptions
	if v, ok := os.LookupEnv(audit.EnvMasterKey); ok && v != "" {
		cfg, err := audit.ConfigFromEnv(os.LookupEnv)
		if err != nil {
			return err
		}
		opts.MasterKey = cfg.MasterKey
	}
	report, err := audit.VerifyDatabaseWith(ctx, pool, *vkey, *origin, opts)
	fmt.Printf("entries: %d\nredacted: %d\nroot: %s\n", report.Entries, report.Redacted, report.Root)
	if err != nil {
		if report.FirstMismatch >= 0 {
			fmt.Printf("first entry that does not match: %d (%s)\n", report.FirstMismatch, report.Reason)
		}
		return fmt.Errorf("audit log does not verify: %w", err)
	}
	fmt.Println("verified: every entry matches the signed checkpoint")
	if *previous != "" {
		prev, err := os.ReadFile(*previous)
		if err != nil {
			return fmt.Errorf("MASH_AUDIT_PREVIOUS_CHECKPOINT %s: %w", *previous, err)
		}
		if _, err := audit.VerifyConsistencyWith(ctx, pool, *vkey, *origin, prev); err != nil {
			return fmt.Errorf("audit log is not consistent with the previous checkpoint: %w", err)
		}
		fmt.Println("consistent: the log extends the previous checkpoint")
	}
	if *save != "" {
		// A checkpoint signed a moment after the verification above is still a signed
		// statement of the log; the next --previous run proves the log extends it.
		latest, err := audit.LatestCheckpoint(ctx, pool)
		if err != nil {
			return err
		}
		if err := os.WriteFile(*save, latest, 0o644); err != nil {
			return fmt.Errorf("MASH_AUDIT_SAVE_CHECKPOINT %s: %w", *save, err)
		}
		fmt.Println("saved the latest signed checkpoint to", *save)
	}
	return nil
}

// auditKeygen prints a new master key and checkpoint signing key pair as environment
// lines. The private lines are secrets: keep them in the deployment's secret store.
func auditKeygen() error {
	master := make([]byte, 32)
	if _, err := rand.Read(master); err != nil {
		return fmt.Errorf("generate master key: %w", err)
	}
	skey, vkey, err := auditlog.GenerateKey("mash-audit")
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "new audit and case keys; the first three are secrets, the last is the public key auditors verify with:")
	kek := make([]byte, casekeys.KEKSize)
	if _, err := rand.Read(kek); err != nil {
		return fmt.Errorf("generate case key-encryption key: %w", err)
	}
	fmt.Printf("%s=%s\n%s=%s\n%s=%s\nMASH_AUDIT_VERIFY_KEY=%s\n", audit.EnvMasterKey, base64.StdEncoding.EncodeToString(master),
		audit.EnvSigningKey, skey, EnvCaseKEK, base64.StdEncoding.EncodeToString(kek), vkey)
	return nil
}

// exportFlag reports whether the arguments name an export file: an external auditor
// verifies one with no database at all.
func exportFlag(args []string) (string, bool) {
	for i, a := range args {
		switch {
		case (a == "--export" || a == "-export") && i+1 < len(args):
			return args[i+1], true
		case strings.HasPrefix(a, "--export=") || strings.HasPrefix(a, "-export="):
			return a[strings.Index(a, "=")+1:], true
		}
	}
	v, ok := os.LookupEnv("MASH_AUDIT_EXPORT")
	return v, ok && v != ""
}

// verifyExportFile checks an export against its signed checkpoint and the public key alone.
func verifyExportFile(args []string, file string, declare func(*config.Set), check func() error) error {
	fs := flag.NewFlagSet("mash audit verify", flag.ContinueOnError)
	s := config.New(fs)
	declare(s)
	if err := s.Parse(args); err != nil {
		return err
	}
	if err := check(); err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("MASH_AUDIT_EXPORT %s: %w", file, err)
	}
	defer f.Close()
	report, err := audit.VerifyExport(f, s.Lookup("verify-key"), s.Lookup("origin"))
	fmt.Printf("entries: %d\nredacted: %d\ntree size: %d\n", report.Entries, report.Redacted, report.TreeSize)
	if err != nil {
		if report.FirstBad >= 0 {
			fmt.Printf("first entry that does not match: %d (line %d: %s)\n", report.FirstBad, report.Line, report.Reason)
		}
		return fmt.Errorf("export does not verify: %w", err)
	}
	fmt.Println("verified: every entry is in the signed checkpoint's tree")
	return nil
}
