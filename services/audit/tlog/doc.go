// Package auditlog is the cryptographic core of the mash audit trail: canonical leaf
// encoding, RFC 6962 / RFC 9162 Merkle tree hashes and proofs, C2SP tlog-checkpoint
// signing, and a streaming verifier. It does no I/O: storage (Postgres) and serving wrap
// it elsewhere, and an auditor's offline tool can use it without the database.
//
// The import path is github.com/mash-hub/mash/services/audit/tlog; the package is named
// auditlog so that it sits beside golang.org/x/mod/sumdb/tlog (imported as tlog), whose
// Hash, HashReader, RecordProof and TreeProof types appear in this API unchanged.
//
// Invariants callers rely on:
//
//   - A leaf is the canonical byte string made by [Entry.MarshalLeaf]. Those stored bytes are
//     what gets hashed, now and at every later verification; nothing is ever re-marshalled
//     to verify, so a change in how an Entry would be encoded cannot break old proofs.
//   - Leaves carry identifiers, types, roles, the decision summary, times and the SHA-256 of
//     the encrypted payload, never personal data, so erasing a case (destroying its key)
//     leaves every leaf and proof valid.
//   - Tree hashing is RFC 6962: leaf hash SHA-256(0x00 || leaf), node hash
//     SHA-256(0x01 || left || right), empty tree SHA-256(""). Hashes are stored in the
//     x/mod/sumdb/tlog stored-hash order, so one table (or [MemoryHashes]) answers every
//     root and proof query.
//   - A tree inside the database only detects tampering relative to a head held outside it:
//     every checkpoint is signed with a key that does not live in the database, and auditors
//     keep the last one they verified ([VerifyConsistencyChain]).
//   - Everything that parses untrusted input ([UnmarshalLeaf], [ParseCheckpoint],
//     [OpenCheckpoint], [DecodeProof]) accepts exactly one encoding per value, so a flipped
//     bit can never produce a different string that still verifies.
package auditlog
