-- Garment materials for outfits (RGBA PNG with its anchors, in image pixels): not personal data.
CREATE TABLE IF NOT EXISTS outfits (
    outfit_id text PRIMARY KEY,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    image bytea NOT NULL,
    anchors jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
