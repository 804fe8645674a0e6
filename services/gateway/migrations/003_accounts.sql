-- Optional email + password accounts. An account is a subject's: every device linked to it carries that subject_id.
-- The address is sealed (AES-256-GCM) under the subject's data key, so erasing the subject's key shreds it; rows are
-- found by a keyed hash (HMAC) of the normalised address. The password is an argon2id hash.
CREATE TABLE IF NOT EXISTS accounts (
    account_id uuid PRIMARY KEY,
    subject_id uuid NOT NULL UNIQUE,
    email_hash text NOT NULL UNIQUE,
    email_sealed bytea NOT NULL,
    password_hash text NOT NULL,
    email_verified_at timestamptz,
    -- A correction of the address waits here until a code sent to the new address confirms it.
    pending_email_hash text,
    pending_email_sealed bytea,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- One-time codes (email verification, password reset): only a keyed hash is kept, with an expiry and a count of
-- wrong tries; a new code of the same purpose replaces the old one.
CREATE TABLE IF NOT EXISTS account_codes (
    account_id uuid NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    purpose text NOT NULL,
    code_hash text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, purpose)
);
CREATE INDEX IF NOT EXISTS account_codes_expires ON account_codes (expires_at);
-- A sign-up waits here until the code mailed to the address confirms it; only then is the account created.
-- It is stored the same way whether or not the address already has an account (its owner then gets a notice,
-- and no code), so nothing the signing-up device can see tells the two apart.
CREATE TABLE IF NOT EXISTS account_signups (
    subject_id uuid PRIMARY KEY,
    email_hash text NOT NULL,
    email_sealed bytea NOT NULL,
    password_hash text NOT NULL,
    code_hash text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
