package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"

	"mash/pkg/config"
	"mash/services/audit"
	auditlog "mash/services/audit/tlog"
)

// auditCommand runs `mash audit keygen` and `mash audit verify`.
func auditCommand(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "keygen" && args[0] != "verify") {
		return fmt.Errorf("usage: mash audit keygen | verify --verify-key KEY [--origin O]")
	}
	if args[0] == "keygen" {
		return auditKeygen()
	}
	var vkey, origin *string
	pool, _, err := openDB(ctx, "audit verify", args[1:], func(s *config.Set) {
		vkey = s.String("verify-key", "MASH_AUDIT_VERIFY_KEY", "", "the audit log's public key (from mash audit keygen)")
		origin = s.String("origin", audit.EnvOrigin, audit.DefaultOrigin, "the log's checkpoint origin")
	}, func() error {
		if *vkey == "" {
			return fmt.Errorf("MASH_AUDIT_VERIFY_KEY: required: the public key the checkpoints must be signed with")
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer pool.Close()
	report, err := audit.VerifyDatabase(ctx, pool, *vkey, *origin)
	fmt.Printf("entries: %d\nredacted: %d\nroot: %s\n", report.Entries, report.Redacted, report.Root)
	if err != nil {
		if report.FirstMismatch >= 0 {
			fmt.Printf("first entry that does not match: %d (%s)\n", report.FirstMismatch, report.Reason)
		}
		return fmt.Errorf("audit log does not verify: %w", err)
	}
	fmt.Println("verified: every entry matches the signed checkpoint")
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
	fmt.Fprintln(os.Stderr, "new audit keys; the first two are secrets, the last is the public key auditors verify with:")
	fmt.Printf("%s=%s\n%s=%s\nMASH_AUDIT_VERIFY_KEY=%s\n", audit.EnvMasterKey, base64.StdEncoding.EncodeToString(master),
		audit.EnvSigningKey, skey, vkey)
	return nil
}
