"""Least-privilege database roles: each service's runtime role holds DML on its own schema only, migrations run
as the owner role, and privacy's audit tables (erasure ledger, access log, ...) are append-only for privacy."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from likeness_platform.categories import Category
from likeness_platform.db import open_service_pool
from likeness_platform.db_roles import SCHEMA_SERVICES, DatabaseRoles, provision_roles
from likeness_platform.settings import ServiceSettings
from likeness_privacy.adapters.repository import APPEND_ONLY, PrivacyRepository
from likeness_privacy.domain.retention import RETENTION

ROOT = Path(__file__).resolve().parents[1]

# One table of each schema, to try reading from the other services' roles.
A_TABLE = {"gateway": "devices", "ingestion": "uploads", "render": "results", "billing": "purchases", "privacy": "data_keys"}

# What each append-only table needs to take a row; created_at is set by the test.
AUDIT_ROWS = {
    "generation_records": (
        "INSERT INTO privacy.generation_records (record_id, subject_pseudonym, interface, parameters, status, latency_ms, created_at)"
        " VALUES (gen_random_uuid(), %(tag)s, 'test', '{}', 'ok', 1, %(at)s)"
    ),
    "security_events": (
        "INSERT INTO privacy.security_events (event_id, subject_pseudonym, event_type, ip_hash, ip_prefix, created_at)"
        " VALUES (gen_random_uuid(), %(tag)s, 'test', 'h', '192.0.2.0/24', %(at)s)"
    ),
    "access_log": (
        "INSERT INTO privacy.access_log (subject_commit, actor, resource, purpose, prev_hash, hash, created_at)"
        " VALUES (%(tag)s, 'test', 'test', 'test', 'x', 'x', %(at)s)"
    ),
}
TAG_COLUMN = {"generation_records": "subject_pseudonym", "security_events": "subject_pseudonym", "access_log": "subject_commit"}


def _user(url: str) -> str:
    return str(conninfo_to_dict(url)["user"])


@pytest.fixture
async def roles(database_url: str) -> AsyncIterator[tuple[DatabaseRoles, dict[str, AsyncConnectionPool]]]:
    """Every schema migrated by the owner role; a pool per service under its runtime role, as the services open it."""
    roles = provision_roles(database_url)
    pools: dict[str, AsyncConnectionPool] = {}
    try:
        for service in SCHEMA_SERVICES:
            settings = ServiceSettings(**roles.settings_for(service), db_pool_max=2)
            append_only = APPEND_ONLY if service == "privacy" else ()
            pools[service] = await open_service_pool(settings, service, ROOT / "services" / service / "migrations", append_only=append_only)
        yield roles, pools
    finally:
        for pool in pools.values():
            await pool.close()


async def _fails(pool: AsyncConnectionPool, query: str | sql.Composable, params: tuple = ()) -> None:
    async with pool.connection() as conn:
        with pytest.raises(errors.InsufficientPrivilege):
            await conn.execute(query, params)


@pytest.mark.parametrize("table", APPEND_ONLY)
async def test_privacy_runtime_role_cannot_update_or_delete_the_audit_tables(roles, table: str) -> None:
    _, pools = roles
    pool = pools["privacy"]
    ident = sql.Identifier(table)
    await _fails(pool, sql.SQL("UPDATE {} SET created_at = now()").format(ident))
    await _fails(pool, sql.SQL("DELETE FROM {}").format(ident))
    await _fails(pool, sql.SQL("TRUNCATE {}").format(ident))
    # Not the owner: it cannot drop the table or its rules either.
    await _fails(pool, sql.SQL("ALTER TABLE {} DISABLE TRIGGER ALL").format(ident))
    await _fails(pool, sql.SQL("DROP TABLE {}").format(ident))


async def test_privacy_runtime_role_appends_to_the_ledger_and_access_log_but_cannot_rewrite_them(roles) -> None:
    _, pools = roles
    repo = PrivacyRepository(pools["privacy"])
    subject = await repo.create_subject("device", False, "k1", lambda _sid: b"wrapped")
    await repo.add_access(subject.subject_id, "test", "test/resource", "test")
    erasure, _ = await repo.start_erasure(subject.subject_id, "pseudonym-" + uuid.uuid4().hex, "user_request", [])
    await repo.erase_records(subject.subject_id, erasure.subject_pseudonym)
    ledger_hash = await repo.complete_erasure(erasure, {"erasure_id": erasure.erasure_id, "reason": "user_request"})

    await _fails(pools["privacy"], "UPDATE erasure_ledger SET body = '{}' WHERE hash = %s", (ledger_hash,))
    await _fails(pools["privacy"], "DELETE FROM erasure_ledger WHERE hash = %s", (ledger_hash,))
    await _fails(pools["privacy"], "UPDATE access_log SET actor = 'forged'")
    await _fails(pools["privacy"], "DELETE FROM access_log")
    entries = await repo.ledger_entries()
    assert entries[-1].hash == ledger_hash
    # The erasure unlinked the access entry through its function: the entry stays, without the subject.
    async with pools["privacy"].connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM access_log WHERE subject_id = %s", (uuid.UUID(subject.subject_id),))
        assert await cur.fetchone() == (0,)


async def test_retention_functions_remove_only_what_is_past_retention(roles, database_url: str) -> None:
    _, pools = roles
    repo = PrivacyRepository(pools["privacy"])
    tag = "retention-" + uuid.uuid4().hex
    now = datetime.now(UTC)
    categories = {
        "generation_records": Category.GENERATION_RECORDS,
        "security_events": Category.SECURITY_EVENTS,
        "access_log": Category.ACCESS_LOG,
    }
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as admin:
        try:
            for table, category in categories.items():
                for age in (RETENTION[category] - timedelta(days=1), RETENTION[category] + timedelta(days=1)):
                    await admin.execute(AUDIT_ROWS[table], {"tag": tag, "at": now - age})
            # Even asked to remove everything up to now, a sweep keeps what is inside its retention.
            removed = await repo.sweep({category: now for category in categories.values()})
            assert all(removed[category] >= 1 for category in categories.values()), removed
            for table in categories:
                query = sql.SQL("SELECT created_at FROM privacy.{} WHERE {} = %s").format(
                    sql.Identifier(table), sql.Identifier(TAG_COLUMN[table])
                )
                left = [row[0] for row in await (await admin.execute(query, (tag,))).fetchall()]
                assert len(left) == 1, (table, left)
                assert now - left[0] < RETENTION[categories[table]], table
        finally:
            for table in categories:
                await admin.execute(
                    sql.SQL("DELETE FROM privacy.{} WHERE {} = %s").format(sql.Identifier(table), sql.Identifier(TAG_COLUMN[table])), (tag,)
                )


@pytest.mark.parametrize("service", SCHEMA_SERVICES)
async def test_a_service_role_cannot_read_another_services_schema(roles, service: str) -> None:
    _, pools = roles
    for other, table in A_TABLE.items():
        query = sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(other, table))
        if other == service:
            async with pools[service].connection() as conn:
                await conn.execute(query)
        else:
            await _fails(pools[service], query)
    if service != "privacy":
        await _fails(pools[service], "SELECT privacy.sweep_access_log(now())")


@pytest.mark.parametrize("service", SCHEMA_SERVICES)
async def test_migrations_run_under_the_owner_and_the_runtime_role_gets_no_ddl(roles, service: str) -> None:
    db_roles, pools = roles
    owner = _user(db_roles.owner_url)
    async with pools[service].connection() as conn:
        cur = await conn.execute("SELECT current_user, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
        assert await cur.fetchone() == (_user(db_roles.runtime_urls[service]), False, False)
        cur = await conn.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = %s", (service,))
        assert [row[0] for row in await cur.fetchall()] == [owner]
        cur = await conn.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = %s", (service,))
        assert await cur.fetchone() == (owner,)
    await _fails(pools[service], sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(service, "intruder")))
    await _fails(pools[service], "CREATE TABLE public.intruder (id int)")
    await _fails(pools[service], "CREATE SCHEMA intruder")
    await _fails(pools[service], sql.SQL("SELECT * FROM {}").format(sql.Identifier(service, "schema_migrations")))
