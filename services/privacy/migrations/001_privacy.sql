CREATE TABLE IF NOT EXISTS subjects (
    subject_id uuid PRIMARY KEY,
    kind text NOT NULL,
    state text NOT NULL DEFAULT 'active',
    minor boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Wrapped (KEK-encrypted) data keys; deleting the row is crypto-shredding.
CREATE TABLE IF NOT EXISTS data_keys (
    subject_id uuid PRIMARY KEY,
    key_id text NOT NULL,
    wrapped bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS erasures (
    erasure_id uuid PRIMARY KEY,
    -- Cleared when the erasure completes; the keyed pseudonym remains as the tombstone.
    subject_id uuid,
    subject_pseudonym text NOT NULL,
    reason text NOT NULL,
    status text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    deadline timestamptz NOT NULL,
    completed_at timestamptz,
    ledger_hash text,
    deadline_breached boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS erasures_pseudonym ON erasures (subject_pseudonym);
CREATE INDEX IF NOT EXISTS erasures_open ON erasures (status) WHERE status = 'in_progress';

CREATE TABLE IF NOT EXISTS erasure_receipts (
    erasure_id uuid NOT NULL REFERENCES erasures (erasure_id),
    holder text NOT NULL,
    erased jsonb,
    remaining jsonb,
    completed_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    last_error text NOT NULL DEFAULT '',
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (erasure_id, holder)
);

-- Hash-chained: each entry's hash covers the previous entry's hash.
CREATE TABLE IF NOT EXISTS erasure_ledger (
    seq bigserial PRIMARY KEY,
    erasure_id uuid NOT NULL UNIQUE,
    body jsonb NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Hash-chained access log. subject_id and salt are cleared on erasure; the salted
-- commitment keeps the chain verifiable without linking the entry to the subject.
CREATE TABLE IF NOT EXISTS access_log (
    seq bigserial PRIMARY KEY,
    subject_id uuid,
    salt bytea,
    subject_commit text NOT NULL,
    actor text NOT NULL,
    resource text NOT NULL,
    purpose text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    prev_hash text NOT NULL,
    hash text NOT NULL
);
CREATE INDEX IF NOT EXISTS access_log_subject ON access_log (subject_id);

CREATE TABLE IF NOT EXISTS generation_records (
    record_id uuid PRIMARY KEY,
    subject_pseudonym text NOT NULL,
    interface text NOT NULL,
    parameters jsonb NOT NULL,
    status text NOT NULL,
    latency_ms double precision NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS generation_records_subject ON generation_records (subject_pseudonym);

CREATE TABLE IF NOT EXISTS security_events (
    event_id uuid PRIMARY KEY,
    subject_pseudonym text,
    event_type text NOT NULL,
    ip_hash text NOT NULL,
    ip_prefix text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS security_events_subject ON security_events (subject_pseudonym);

-- Export archives, sealed with the subject's data key, downloadable once.
CREATE TABLE IF NOT EXISTS exports (
    export_id uuid PRIMARY KEY,
    subject_id uuid NOT NULL,
    sealed bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
