-- Erased subjects' tombstones (likeness_platform.sealed_store): a write for a subject found here is refused,
-- in the write's own transaction. Only a hash of the subject id is kept, and only for an hour.
CREATE TABLE IF NOT EXISTS erased_subjects (
    subject_hash text PRIMARY KEY,
    erased_at timestamptz NOT NULL DEFAULT now()
);
