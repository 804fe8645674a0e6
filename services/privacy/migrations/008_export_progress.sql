-- An export's progress, visible (GetExport, GET /v1/me/export) while it is built: the row is written when the
-- build starts and updated as each holder's items land in the archive. Counts and times only.
ALTER TABLE exports ADD COLUMN IF NOT EXISTS state text NOT NULL DEFAULT 'ready';
ALTER TABLE exports ADD COLUMN IF NOT EXISTS bytes_written bigint NOT NULL DEFAULT 0;
ALTER TABLE exports ADD COLUMN IF NOT EXISTS bytes_gathered bigint NOT NULL DEFAULT 0;
ALTER TABLE exports ADD COLUMN IF NOT EXISTS bytes_expected bigint NOT NULL DEFAULT 0;
ALTER TABLE exports ADD COLUMN IF NOT EXISTS parts_written integer NOT NULL DEFAULT 0;
ALTER TABLE exports ADD COLUMN IF NOT EXISTS parts_expected integer NOT NULL DEFAULT 0;
ALTER TABLE exports ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE exports ADD COLUMN IF NOT EXISTS error_code text NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS exports_subject ON exports (subject_id, created_at);
