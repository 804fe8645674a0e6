-- Tokens expire; a rotated or revoked token stops at once (its hash is replaced or the device is deactivated).
ALTER TABLE devices ADD COLUMN IF NOT EXISTS expires_at timestamptz NOT NULL DEFAULT now() + interval '90 days';

-- Idempotency keys: bound to (subject, key); the interface and a hash of the request body must match on a
-- replay, which gets the stored response. Rows older than 24 h no longer count and are deleted when met.
-- The stored response holds ids, sizes and a compliance report: no image data and no request text.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    subject_id uuid NOT NULL,
    key text NOT NULL,
    interface text NOT NULL,
    body_hash text NOT NULL,
    status_code integer,
    response jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject_id, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_at);

-- iOS App Attest (when configured): a key id attests one device only, so one attestation cannot register many.
ALTER TABLE devices ADD COLUMN IF NOT EXISTS attest_key_id text UNIQUE;
