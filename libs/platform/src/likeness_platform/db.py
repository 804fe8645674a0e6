"""PostgreSQL access: an async pool per service schema and idempotent SQL migrations."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Collection, Mapping, Sequence
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


async def apply_migrations(
    database_url: str, schema: str, migrations_dir: Path, *, runtime_role: str | None = None, append_only: Collection[str] = ()
) -> list[str]:
    """Apply the `NNN_*.sql` files of a service once each, in order, under an advisory lock; return those applied now.

    `database_url` is the owner role's: it creates the schema and owns what the migrations create. When a
    `runtime_role` other than the owner is given, every run then grants it exactly what a service needs (see
    `grant_runtime`), so tables added by later migrations are covered too.
    """
    _check_schema(schema)
    files = sorted(p for p in migrations_dir.glob("*.sql"))
    applied_now: list[str] = []
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        # Several replicas may start at once: one applies, the others wait and find nothing to do.
        await conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"likeness-migrate-{schema}",))
        try:
            ident = sql.Identifier(schema)
            await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
            await conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {}.schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(ident)
            )
            cur = await conn.execute(sql.SQL("SELECT version FROM {}.schema_migrations").format(ident))
            done = {row[0] for row in await cur.fetchall()}
            for path in files:
                if path.name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql.SQL("SET LOCAL search_path TO {}, public").format(ident))
                    await conn.execute(path.read_text())  # type: ignore[arg-type]
                    await conn.execute(sql.SQL("INSERT INTO {}.schema_migrations (version) VALUES (%s)").format(ident), (path.name,))
                applied_now.append(path.name)
            if runtime_role is not None and runtime_role != await _current_role(conn):
                await grant_runtime(conn, schema, runtime_role, append_only)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"likeness-migrate-{schema}",))
    if applied_now:
        log.info("migrations_applied", schema=schema, files=applied_now)
    return applied_now


# Privileges of a runtime role on the tables of its schema.
_DML = sql.SQL("SELECT, INSERT, UPDATE, DELETE")
_APPEND_ONLY = sql.SQL("SELECT, INSERT")


async def grant_runtime(conn: psycopg.AsyncConnection[Any], schema: str, role: str, append_only: Collection[str] = ()) -> None:
    """Give `role` (a service's runtime role) DML on the tables of `schema` and nothing more, in one transaction.

    USAGE on the schema (not CREATE), SELECT/INSERT/UPDATE/DELETE on each table but SELECT/INSERT only on the
    `append_only` ones, nothing on `schema_migrations`, USAGE on the sequences (for serial columns) and EXECUTE
    on the schema's functions, which nobody else gets: SECURITY DEFINER functions are how an append-only table
    is swept or unlinked, each with its own fixed WHERE. Run as the schema's owner.
    """
    _check_schema(schema)
    cur = await conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v') ORDER BY c.relname",
        (schema,),
    )
    tables = [row[0] for row in await cur.fetchall()]
    missing = sorted(set(append_only) - set(tables))
    if missing:
        raise ValueError(f"append-only tables {missing} are not in schema {schema!r}")
    names = {"s": sql.Identifier(schema), "r": sql.Identifier(role)}
    async with conn.transaction():
        await conn.execute(sql.SQL("REVOKE CREATE ON SCHEMA {s} FROM {r}").format(**names))
        await conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {s} TO {r}").format(**names))
        for table in tables:
            ident = sql.Identifier(schema, table)
            await conn.execute(sql.SQL("REVOKE ALL ON TABLE {t} FROM {r}").format(t=ident, **names))
            if table == "schema_migrations":
                continue
            privileges = _APPEND_ONLY if table in append_only else _DML
            await conn.execute(sql.SQL("GRANT {p} ON TABLE {t} TO {r}").format(p=privileges, t=ident, **names))
        await conn.execute(sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {r}").format(**names))
        await conn.execute(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO {r}").format(**names))
        await conn.execute(sql.SQL("REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA {s} FROM PUBLIC").format(**names))
        await conn.execute(sql.SQL("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {s} TO {r}").format(**names))
    log.info("runtime_role_granted", schema=schema, role=role, append_only=sorted(append_only))


async def _current_role(conn: psycopg.AsyncConnection[Any]) -> str:
    row = await (await conn.execute("SELECT current_user")).fetchone()
    assert row is not None
    return str(row[0])


async def open_service_pool(
    settings: ServiceSettings, schema: str, migrations_dir: Path, *, append_only: Collection[str] = ()
) -> AsyncConnectionPool:
    """A service's pool on its migrated schema, under its runtime role; exits with a clear message when no database is configured.

    Migrations run as the owner role of `migration_database_url`, which then grants the runtime role of
    `database_url` DML on the schema (SELECT and INSERT only on `append_only` tables). Without a migration URL
    one role does both (a single-role setup: no grants).
    """
    await migrate_service(settings, schema, migrations_dir, append_only=append_only)
    return await open_pool(settings.database_url, schema, settings.db_pool_min, settings.db_pool_max)


async def migrate_service(settings: ServiceSettings, schema: str, migrations_dir: Path, *, append_only: Collection[str] = ()) -> list[str]:
    """What a service does to its schema before serving (see open_service_pool); returns the files applied now.

    Also the whole of `python -m likeness_platform.migrate` (the chart's migrations Job).
    """
    if not settings.database_url:
        raise SystemExit("LIKENESS_DATABASE_URL is not set (make run starts an embedded PostgreSQL and sets it)")
    runtime_role = None
    if settings.migration_database_url:
        async with await psycopg.AsyncConnection.connect(settings.database_url, autocommit=True) as conn:
            runtime_role = await _current_role(conn)
            row = await (await conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).fetchone()
            if row is not None and row[0]:
                log.warning("runtime_role_is_superuser", schema=schema, role=runtime_role)
    return await apply_migrations(
        settings.migration_database_url or settings.database_url,
        schema,
        migrations_dir,
        runtime_role=runtime_role,
        append_only=append_only,
    )


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
