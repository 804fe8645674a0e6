-- Devices keep only what the apps' privacy policies allow, and a hash of the token.
CREATE TABLE IF NOT EXISTS devices (
    device_id uuid PRIMARY KEY,
    subject_id uuid NOT NULL,
    token_hash text NOT NULL UNIQUE,
    platform text NOT NULL,
    model text NOT NULL,
    os_version text NOT NULL,
    app_version text NOT NULL,
    language text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS devices_subject ON devices (subject_id);
