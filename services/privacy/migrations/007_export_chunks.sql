-- Exports are built on disk and stored as sealed chunks (1 MiB each, each sealed under the subject's key
-- with the export id, its index and whether it is the last in its associated data), so neither building
-- nor downloading one holds it in memory. Chunks go with their export (download, expiry, erasure).
CREATE TABLE IF NOT EXISTS export_chunks (
    export_id uuid NOT NULL REFERENCES exports (export_id) ON DELETE CASCADE,
    idx integer NOT NULL,
    sealed bytea NOT NULL,
    PRIMARY KEY (export_id, idx)
);
