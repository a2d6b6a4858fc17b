-- Every column of the log's tables is either covered by a leaf or a signed checkpoint, or
-- checked against one by `mash audit verify`. These two were bookkeeping that nothing
-- committed to and nothing read, so an altered value could never be detected: they go.
-- (A case key's life starts with the first entry that uses it; the head's last move is the
-- recorded_at of its last entry.)
ALTER TABLE audit.head DROP COLUMN updated_at;
ALTER TABLE audit.case_keys DROP COLUMN created_at;
