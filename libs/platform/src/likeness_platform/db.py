"""PostgreSQL access: an async pool per service schema and idempotent SQL migrations."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import structlog
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from likeness_platform.settings import ServiceSettings

T = TypeVar("T")

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


async def open_service_pool(settings: ServiceSettings, schema: str, migrations_dir: Path) -> AsyncConnectionPool:
    """A service's pool on its migrated schema; exits with a clear message when no database is configured."""
    if not settings.database_url:
        raise SystemExit("LIKENESS_DATABASE_URL is not set (make run starts an embedded PostgreSQL and sets it)")
    await apply_migrations(settings.database_url, schema, migrations_dir)
    return await open_pool(settings.database_url, schema, settings.db_pool_min, settings.db_pool_max)


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


def from_row(cls: type[T], row: Mapping[str, Any], **values: Any) -> T:
    """A dataclass from a row by column name: UUID columns become their text, `values` set or override fields.

    Fields the row lacks keep their defaults; a required one missing raises TypeError naming it.
    """
    kwargs = {f.name: _plain(row[f.name]) for f in dataclasses.fields(cls) if f.name in row and f.name not in values}  # type: ignore[arg-type]
    return cls(**kwargs, **values)


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


async def fetch_row(pool: AsyncConnectionPool[Any], query: str, params: Sequence[Any]) -> dict[str, Any] | None:
    """The first row `query` returns, as a column -> value dict; None when there is none."""
    async with pool.connection() as conn:
        cur = await conn.cursor(row_factory=dict_row).execute(query, params)
        return await cur.fetchone()


def as_uuid(value: object) -> uuid.UUID | None:
    """`value` as a UUID for a query parameter; None when it is not one (so a malformed id finds nothing)."""
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def table_name(table: str, schema: str | None = None) -> sql.Composable:
    """A table identifier, schema-qualified when `schema` is given (else the pool's search_path decides)."""
    if schema is None:
        return sql.Identifier(table)
    return sql.Identifier(_check_schema(schema), table)


async def oldest_age(
    pool: AsyncConnectionPool[Any], table: str, *, schema: str | None = None, column: str = "created_at"
) -> tuple[int, float]:
    """How many rows `table` holds and the age in seconds of the oldest (by `column`); (0, 0.0) when empty."""
    query = sql.SQL("SELECT count(*), coalesce(extract(epoch FROM now() - min({column})), 0) FROM {table}").format(
        column=sql.Identifier(column), table=table_name(table, schema)
    )
    async with pool.connection() as conn:
        row = await (await conn.execute(query)).fetchone()
    if row is None:
        raise RuntimeError("an aggregate query returned no row")
    return int(row[0]), float(row[1])
