-- Outfits registered by operators (not personal data): layers as JSON [{"colour": [r, g, b], "polygon": [[x, y], ...], "shade": s}].
CREATE TABLE IF NOT EXISTS outfits (
    outfit_id text PRIMARY KEY,
    name text NOT NULL,
    layers jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
