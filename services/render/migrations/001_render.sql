-- Rendered outputs: encrypted blobs under the subject's data key, kept at most 24 h.
CREATE TABLE IF NOT EXISTS results (
    result_id uuid PRIMARY KEY,
    subject_id uuid NOT NULL,
    kind text NOT NULL,
    blob_name text NOT NULL UNIQUE,
    content_type text NOT NULL,
    width integer NOT NULL,
    height integer NOT NULL,
    size_bytes bigint NOT NULL,
    dpi integer NOT NULL DEFAULT 0,
    spec_id text NOT NULL DEFAULT '',
    -- Compliance report and links (e.g. the sheet made with a photo); numbers only, no image data.
    meta jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS results_subject ON results (subject_id);
CREATE INDEX IF NOT EXISTS results_expiry ON results (expires_at);

-- Template materials for portraits: not personal data.
CREATE TABLE IF NOT EXISTS templates (
    template_id text PRIMARY KEY,
    name text NOT NULL,
    style text NOT NULL,
    image bytea NOT NULL,
    meshes jsonb NOT NULL,
    width integer NOT NULL,
    height integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
