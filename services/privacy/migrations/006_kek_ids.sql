-- Each wrapped data key names the KEK that wrapped it ('' for keys wrapped before KEKs had ids), so KEKs can
-- rotate: a rewrap job moves every key to the current KEK, and a retired KEK is destroyed after the backup
-- window (LIKENESS_KEK_BACKUP_WINDOW_DAYS), after which no restored backup can unwrap an erased subject's key.
ALTER TABLE data_keys ADD COLUMN IF NOT EXISTS kek_id text NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS data_keys_kek ON data_keys (kek_id);
