-- Billing: purchases, subscriptions, processed notifications, quotas, tombstones, ledger.
-- Names are unqualified: likeness_platform.db.apply_migrations creates the service schema
-- (`billing`) and runs this file with search_path set to it. Idempotent (IF NOT EXISTS).

-- One row per App Store transaction (one per renewal period for subscriptions), bound to a
-- subject. Holds the newest signed copy Apple gave us; price and storefront are never kept.
CREATE TABLE IF NOT EXISTS purchases (
    transaction_id          text PRIMARY KEY,
    original_transaction_id text NOT NULL,
    subject_id              uuid NOT NULL,
    product_id              text NOT NULL,
    product_type            text NOT NULL,
    purchase_date           timestamptz NOT NULL,
    expires_date            timestamptz,
    offer_type              smallint,
    offer_discount_type     text,
    environment             text NOT NULL,
    revocation_date         timestamptz,
    revocation_reason       smallint,
    signed_date             timestamptz NOT NULL,
    app_account_token       text,
    signed_transaction      text NOT NULL,
    created_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS purchases_subject_idx ON purchases (subject_id);
CREATE INDEX IF NOT EXISTS purchases_original_idx ON purchases (original_transaction_id);

-- One row per auto-renewable subscription. The status claim columns come from the snapshot
-- with the newest signedDate (last_signed_date, last_event_key); older snapshots are ignored.
-- expires_date and product_id are derived from the purchases rows and kept for reading.
CREATE TABLE IF NOT EXISTS subscriptions (
    original_transaction_id text PRIMARY KEY,
    subject_id              uuid NOT NULL,
    environment             text NOT NULL,
    product_id              text,
    status                  text NOT NULL
        CHECK (status IN ('active', 'grace', 'billing_retry', 'expired', 'revoked')),
    will_renew              boolean NOT NULL,
    expires_date            timestamptz,
    grace_expires_date      timestamptz,
    last_signed_date        timestamptz,
    last_event_key          text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CHECK ((last_signed_date IS NULL) = (last_event_key IS NULL))
);
CREATE INDEX IF NOT EXISTS subscriptions_subject_idx ON subscriptions (subject_id);

-- Every notification ever received, by notificationUUID (the dedup key is kept for good).
-- The payload is kept only until the notification is applied; subject_id only while it waits.
-- original_transaction_hash is a keyed hash, cleared by the retention sweep.
CREATE TABLE IF NOT EXISTS processed_notifications (
    notification_uuid         uuid PRIMARY KEY,
    notification_type         text NOT NULL,
    subtype                   text,
    signed_date               timestamptz NOT NULL,
    environment               text,
    received_at               timestamptz NOT NULL DEFAULT now(),
    outcome                   text NOT NULL
        CHECK (outcome IN ('pending', 'parked', 'applied', 'ignored', 'dropped', 'expired')),
    original_transaction_hash bytea,
    subject_id                uuid,
    payload                   text,
    CHECK (payload IS NULL OR outcome IN ('pending', 'parked'))
);
CREATE INDEX IF NOT EXISTS processed_notifications_waiting_idx
    ON processed_notifications (original_transaction_hash) WHERE payload IS NOT NULL;
CREATE INDEX IF NOT EXISTS processed_notifications_subject_idx
    ON processed_notifications (subject_id) WHERE subject_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS processed_notifications_received_idx
    ON processed_notifications (received_at);

-- One row per consumed generation. A request id is consumed at most once per subject, even
-- when a retry crosses midnight UTC; `free` marks rows that count against the allowance.
CREATE TABLE IF NOT EXISTS quota_usage (
    subject_id  uuid NOT NULL,
    request_id  text NOT NULL,
    day         date NOT NULL,
    free        boolean NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject_id, request_id)
);
CREATE INDEX IF NOT EXISTS quota_usage_day_idx ON quota_usage (subject_id, day);
CREATE INDEX IF NOT EXISTS quota_usage_created_idx ON quota_usage (created_at);

-- Original transactions of erased subjects, as keyed hashes: later notifications for them are
-- acknowledged and dropped instead of recreating anything.
CREATE TABLE IF NOT EXISTS tombstones (
    original_transaction_hash bytea PRIMARY KEY,
    erased_at                 timestamptz NOT NULL DEFAULT now()
);

-- Pseudonymous accounting record of erased purchases: keyed hashes, product and dates only.
CREATE TABLE IF NOT EXISTS ledger (
    transaction_hash          bytea PRIMARY KEY,
    original_transaction_hash bytea NOT NULL,
    product_id                text NOT NULL,
    product_type              text NOT NULL,
    environment               text NOT NULL,
    purchase_date             timestamptz NOT NULL,
    expires_date              timestamptz,
    revocation_date           timestamptz,
    recorded_at               timestamptz NOT NULL DEFAULT now()
);
