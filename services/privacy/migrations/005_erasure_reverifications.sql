-- A completed erasure is looked at once more after a grace period longer than any request deadline, and
-- whatever a late write left is erased. Until then privacy keeps the subject id sealed under the KEK (never
-- in clear); the row goes once the re-verification finds nothing.
CREATE TABLE IF NOT EXISTS erasure_reverifications (
    erasure_id uuid PRIMARY KEY,
    sealed_subject bytea NOT NULL,
    due_at timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS erasure_reverifications_due ON erasure_reverifications (due_at);
