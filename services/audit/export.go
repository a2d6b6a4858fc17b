package audit

import (
	"encoding/base64"
	"io"

	"github.com/mash-hub/mash/services/audit/exportfile"
)

// The export format (JSON lines: entries, the signed checkpoint, an inclusion proof per
// entry) and its offline verifier live in package exportfile, which depends only on
// auditlog so an external auditor's tool can use it without this service.

// Report is the outcome of VerifyExport.
type Report = exportfile.Report

// ErrBadExport is wrapped when an export is not in the export format at all.
var ErrBadExport = exportfile.ErrBadExport

// VerifyExport checks an export trusting nothing but the log's public key vkey and its
// origin: it opens the signed checkpoint, decodes each leaf, checks each inclusion proof
// against the checkpoint's root, and names the first entry that fails (the error then
// wraps auditlog.ErrMismatch). See exportfile.Verify.
func VerifyExport(r io.Reader, vkey, origin string) (Report, error) {
	return exportfile.Verify(r, vkey, origin)
}

var (
	entryLine      = exportfile.EntryLine
	checkpointLine = exportfile.CheckpointLine
	proofLine      = exportfile.ProofLine
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
