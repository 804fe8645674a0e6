"""PostgreSQL access: an async pool per service schema and idempotent SQL migrations."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool

log = structlog.get_logger("likeness.db")

_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _check_schema(schema: str) -> str:
    if not _SCHEMA.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


async def apply_migrations(database_url: str, schema: str, migrations_dir: Path) -> list[str]:
    """Apply the `NNN_*.sql` files of a service once each, in order, under an advisory lock; return those applied now."""
    _check_schema(schema)
    files = sorted(p for p in migrations_dir.glob("*.sql"))
    applied_now: list[str] = []
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        # Several replicas may start at once: one applies, the others wait and find nothing to do.
        await conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"likeness-migrate-{schema}",))
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
                "version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur = await conn.execute(f'SELECT version FROM "{schema}".schema_migrations')
            done = {row[0] for row in await cur.fetchall()}
            for path in files:
                if path.name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(f'SET LOCAL search_path TO "{schema}", public')
                    await conn.execute(path.read_text())  # type: ignore[arg-type]
                    await conn.execute(f'INSERT INTO "{schema}".schema_migrations (version) VALUES (%s)', (path.name,))
                applied_now.append(path.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"likeness-migrate-{schema}",))
    if applied_now:
        log.info("migrations_applied", schema=schema, files=applied_now)
    return applied_now


async def open_pool(database_url: str, schema: str, min_size: int = 1, max_size: int = 8) -> AsyncConnectionPool:
    """An open async pool whose connections use the service's schema by default."""
    _check_schema(schema)
    pool = AsyncConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        kwargs={"options": f"-c search_path={schema},public", "autocommit": True},
        open=False,
    )
    await pool.open(wait=True, timeout=30)
    return pool
