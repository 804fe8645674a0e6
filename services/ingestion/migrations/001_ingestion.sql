CREATE TABLE IF NOT EXISTS uploads (
    upload_id uuid PRIMARY KEY,
    subject_id uuid NOT NULL,
    -- Random name of the encrypted blob; reveals nothing about subject or content.
    blob_name text NOT NULL UNIQUE,
    sha256 text NOT NULL,
    size_bytes bigint NOT NULL,
    format text NOT NULL,
    width integer NOT NULL,
    height integer NOT NULL,
    purpose text NOT NULL,
    retention_class text NOT NULL,
    state text NOT NULL DEFAULT 'stored',
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_subject ON uploads (subject_id);
CREATE INDEX IF NOT EXISTS uploads_expiry ON uploads (expires_at);
