-- A person's rights beyond access and erasure (issue #22): consents, inquiries, notices and the
-- channels notices reach people through. Everything keyed by a subject goes with its erasure.

-- Consent history: append-only for the runtime role (see APPEND_ONLY); a subject's rows leave only
-- through forget_consents, for its erasure.
CREATE TABLE IF NOT EXISTS consents (
    seq bigserial PRIMARY KEY,
    subject_id uuid NOT NULL,
    purpose text NOT NULL,
    granted boolean NOT NULL,
    policy_version text NOT NULL DEFAULT '',
    source text NOT NULL DEFAULT 'app',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS consents_subject ON consents (subject_id, purpose, seq);

CREATE OR REPLACE FUNCTION forget_consents(p_subject uuid) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = privacy, pg_temp AS $$
    WITH gone AS (DELETE FROM privacy.consents WHERE subject_id = p_subject RETURNING 1)
    SELECT count(*) FROM gone
$$;
REVOKE EXECUTE ON FUNCTION forget_consents(uuid) FROM PUBLIC;

-- Complaints and inquiries: message and answer sealed under the subject's data key (bound to the
-- inquiry id), so a missed copy is unreadable once the key is destroyed.
CREATE TABLE IF NOT EXISTS inquiries (
    inquiry_id uuid PRIMARY KEY,
    subject_id uuid NOT NULL,
    topic text NOT NULL,
    message bytea NOT NULL,
    answer bytea,
    answered_by text,
    answered_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS inquiries_subject ON inquiries (subject_id);
CREATE INDEX IF NOT EXISTS inquiries_open ON inquiries (created_at) WHERE answer IS NULL;

-- Notices hold no personal data; an incident's affected subjects are listed in notice_recipients
-- (a notice for everyone lists nobody).
CREATE TABLE IF NOT EXISTS notices (
    notice_id uuid PRIMARY KEY,
    kind text NOT NULL,
    title text NOT NULL,
    body text NOT NULL,
    policy_version text NOT NULL DEFAULT '',
    effective_at timestamptz,
    everyone boolean NOT NULL,
    published_by text NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS notice_recipients (
    notice_id uuid NOT NULL REFERENCES notices (notice_id),
    subject_id uuid NOT NULL,
    PRIMARY KEY (notice_id, subject_id)
);
CREATE INDEX IF NOT EXISTS notice_recipients_subject ON notice_recipients (subject_id);

-- Where a subject can be reached (APNs device token, verified account email), sealed under its key.
CREATE TABLE IF NOT EXISTS notice_contacts (
    subject_id uuid NOT NULL,
    channel text NOT NULL,
    sealed bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject_id, channel)
);
