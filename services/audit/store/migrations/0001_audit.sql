-- The audit trail. Entries, tree hashes and checkpoints are append-only: the writer role
-- (2000_writer_role.sql) may only insert and read them, and the triggers below refuse
-- UPDATE, DELETE and TRUNCATE for everyone, superusers included, as a second line.

-- Events accepted by the consumer but not yet in the tree. The consumer inserts here in the
-- transaction that records the event in its inbox; the sequencer moves batches into entries
-- in received order and deletes them here, in one transaction.
CREATE TABLE audit.pending (
    id             bigserial PRIMARY KEY,
    event_id       uuid NOT NULL UNIQUE,
    event_type     text NOT NULL,
    occurred_at    timestamptz NOT NULL,
    received_at    timestamptz NOT NULL,
    partnership    text NOT NULL,
    referral_id    text NOT NULL,
    child_id       text NOT NULL,
    actor          text NOT NULL,
    actor_role     text NOT NULL,
    agency         text NOT NULL,
    pack_version   text NOT NULL,
    decision       text NOT NULL,
    payload_sha256 bytea NOT NULL CHECK (length(payload_sha256) = 32)
);

-- One row per leaf of the Merkle tree; seq is the leaf index, assigned by the sequencer.
-- leaf holds the canonical leaf bytes (auditlog.Entry.MarshalLeaf), hashed as stored.
CREATE TABLE audit.entries (
    seq            bigint PRIMARY KEY CHECK (seq >= 0),
    event_id       uuid NOT NULL UNIQUE,
    event_type     text NOT NULL,
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL,
    partnership    text NOT NULL,
    referral_id    text NOT NULL,
    child_id       text NOT NULL,
    actor          text NOT NULL,
    actor_role     text NOT NULL,
    agency         text NOT NULL,
    pack_version   text NOT NULL,
    decision       text NOT NULL,
    leaf           bytea NOT NULL,
    payload_sha256 bytea NOT NULL CHECK (length(payload_sha256) = 32)
);
CREATE INDEX entries_referral ON audit.entries (referral_id, seq);

-- Stored hashes of the tree in golang.org/x/mod/sumdb/tlog order (StoredHashIndex), so
-- roots and proofs are read, not recomputed.
CREATE TABLE audit.tree_hashes (
    idx  bigint PRIMARY KEY CHECK (idx >= 0),
    hash bytea NOT NULL CHECK (length(hash) = 32)
);

-- The head of the log: one row, advanced by the sequencer with compare-and-swap on
-- tree_size, so two sequencers can never fork the log.
CREATE TABLE audit.head (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    tree_size  bigint NOT NULL CHECK (tree_size >= 0),
    root       bytea NOT NULL CHECK (length(root) = 32),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- The empty tree's root is SHA-256 of the empty string.
INSERT INTO audit.head (tree_size, root) VALUES (0, sha256(''::bytea));

-- Every signed checkpoint (a C2SP tlog-checkpoint signed note), kept forever.
CREATE TABLE audit.checkpoints (
    tree_size  bigint PRIMARY KEY,
    note       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One data key per case (referral), wrapped (AES-256-GCM) by the master key held outside
-- the database. Destroying it (wrapped_key NULL, destroyed_at set) crypto-shreds every
-- payload of the case while every leaf and proof stays valid.
CREATE TABLE audit.case_keys (
    id             uuid PRIMARY KEY,
    referral_id    text NOT NULL UNIQUE,
    wrapped_key    bytea,
    created_at     timestamptz NOT NULL DEFAULT now(),
    destroyed_at   timestamptz,
    destroyed_by   text,
    destroy_reason text,
    CHECK ((wrapped_key IS NULL) = (destroyed_at IS NOT NULL))
);

-- The personal data of each event: the envelope bytes sealed with the case key. The entry
-- holds SHA-256 of ciphertext.
CREATE TABLE audit.payloads (
    event_id    uuid PRIMARY KEY,
    case_key_id uuid NOT NULL REFERENCES audit.case_keys (id),
    nonce       bytea NOT NULL,
    ciphertext  bytea NOT NULL
);

CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit.%: % refused: the audit log is append-only', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON audit.entries
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON audit.entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER tree_hashes_append_only BEFORE UPDATE OR DELETE ON audit.tree_hashes
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER tree_hashes_no_truncate BEFORE TRUNCATE ON audit.tree_hashes
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON audit.checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON audit.checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
