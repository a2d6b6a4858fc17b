-- The record of erased cases (events' erased_cases, 1004): the audit service notes each
-- erasure it applied, in the transaction that shreds the case's key.
GRANT SELECT, INSERT ON audit.erased_cases TO mash_audit_writer;
