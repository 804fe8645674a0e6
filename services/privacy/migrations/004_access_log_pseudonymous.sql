-- Pseudonymous access log: the chained row keeps only the kind of resource read (e.g. ingestion/upload);
-- the full resource (with its upload/result id) sits in resource_ref, inside the salted commitment, and
-- goes with the subject id and salt when the subject is erased. Rows written before this migration keep
-- their resource as it was chained.
ALTER TABLE access_log ADD COLUMN IF NOT EXISTS resource_ref text;

CREATE OR REPLACE FUNCTION unlink_access_log(p_subject uuid) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = privacy, pg_temp AS $$
    WITH unlinked AS (
        UPDATE privacy.access_log SET subject_id = NULL, salt = NULL, resource_ref = NULL WHERE subject_id = p_subject RETURNING 1
    )
    SELECT count(*) FROM unlinked
$$;

REVOKE EXECUTE ON FUNCTION unlink_access_log(uuid) FROM PUBLIC;
