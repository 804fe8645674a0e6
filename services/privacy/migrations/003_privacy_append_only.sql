-- The audit tables (erasure_ledger, access_log, security_events, generation_records) are append-only
-- for the runtime role: it gets SELECT and INSERT on them, never UPDATE, DELETE or TRUNCATE (see
-- PRIVACY_APPEND_ONLY in likeness_privacy.adapters.repository and likeness_platform.db.grant_runtime).
-- What may still remove or unlink their rows goes through these functions. They run as their owner, the
-- migration role (SECURITY DEFINER), each with one fixed WHERE:
--   sweep_*: only rows older than the table's retention (domain/retention.py), whatever cutoff is asked;
--   forget_* / unlink_access_log: one subject's rows, for its erasure (the access log keeps the entry and
--   its hash chain, and loses the subject id and salt).
-- The erasure ledger has no function at all: nothing removes a ledger entry.
-- EXECUTE is revoked from PUBLIC here and granted to the runtime role only (grant_runtime).
-- search_path is pinned (pg_temp last) so the functions cannot be steered to other tables; the schema
-- name is the one privacy's composition root uses.

CREATE OR REPLACE FUNCTION sweep_generation_records(p_cutoff timestamptz) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = privacy, pg_temp AS $$
    WITH gone AS (
        DELETE FROM privacy.generation_records WHERE created_at < least(p_cutoff, now() - interval '90 days') RETURNING 1
    )
    SELECT count(*) FROM gone
$$;

CREATE OR REPLACE FUNCTION sweep_security_events(p_cutoff timestamptz) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = privacy, pg_temp AS $$
    WITH gone AS (
        DELETE FROM privacy.security_events WHERE created_at < least(p_cutoff, now() - interval '30 days') RETURNING 1
    )
    SELECT count(*) FROM gone
$$;

CREATE OR REPLACE FUNCTION sweep_access_log(p_cutoff timestamptz) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = privacy, pg_temp AS $$
    WITH gone AS (
        DELETE FROM privacy.access_log WHERE created_at < least(p_cutoff, now() - interval '365 days') RETURNING 1
    )
    SELECT count(*) FROM gone
$$;

CREATE OR REPLACE FUNCTION forget_generation_records(p_pseudonym text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = privacy, pg_temp AS $$
    WITH gone AS (DELETE FROM privacy.generation_records WHERE subject_pseudonym = p_pseudonym RETURNING 1)
    SELECT count(*) FROM gone
$$;

CREATE OR REPLACE FUNCTION forget_security_events(p_pseudonym text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = privacy, pg_temp AS $$
    WITH gone AS (DELETE FROM privacy.security_events WHERE subject_pseudonym = p_pseudonym RETURNING 1)
    SELECT count(*) FROM gone
$$;

CREATE OR REPLACE FUNCTION unlink_access_log(p_subject uuid) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = privacy, pg_temp AS $$
    WITH unlinked AS (
        UPDATE privacy.access_log SET subject_id = NULL, salt = NULL WHERE subject_id = p_subject RETURNING 1
    )
    SELECT count(*) FROM unlinked
$$;

REVOKE EXECUTE ON FUNCTION
    sweep_generation_records(timestamptz),
    sweep_security_events(timestamptz),
    sweep_access_log(timestamptz),
    forget_generation_records(text),
    forget_security_events(text),
    unlink_access_log(uuid)
FROM PUBLIC;
