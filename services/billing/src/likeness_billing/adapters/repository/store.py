"""What every part of the billing repository shares: the pool, the schema, keyed hashes, locks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, LiteralString

from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

from likeness_billing.domain.pseudonyms import check_key, transaction_hash

# Applied by likeness_platform.db.apply_migrations; the package sits beside it in a checkout
# and in the image (editable install).
MIGRATIONS_DIR = Path(__file__).resolve().parents[4] / "migrations"
DEFAULT_SCHEMA = "billing"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

Params = tuple[Any, ...] | dict[str, Any]


def check_schema(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError("schema must be a lower-case SQL identifier")
    return schema


async def consistent_read(conn: AsyncConnection[Any]) -> None:
    # A subscription row and its purchases are written together; read them at one snapshot.
    await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


class Store:
    """The connection pool, schema and ledger key, with the query helpers built on them."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        ledger_key: bytes,
        schema: str = DEFAULT_SCHEMA,
    ) -> None:
        self._pool = pool
        self._key = check_key(ledger_key)
        self._schema = check_schema(schema)

    def _q(self, text: LiteralString) -> sql.Composed:
        """A query with `{s}` standing for the schema."""
        return sql.SQL(text).format(s=sql.Identifier(self._schema))

    def _hash(self, transaction_id: str) -> bytes:
        return transaction_hash(self._key, transaction_id)

    async def _lock(self, conn: AsyncConnection[Any], kind: str, key: str) -> None:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{self._schema}:{kind}:{key}",))

    async def _row(self, conn: AsyncConnection[Any], query: LiteralString, params: Params = ()) -> tuple[Any, ...] | None:
        cur = await conn.execute(self._q(query), params)
        return await cur.fetchone()

    async def _rowcount(self, conn: AsyncConnection[Any], query: LiteralString, params: Params = ()) -> int:
        cur = await conn.execute(self._q(query), params)
        return cur.rowcount

    async def _fetch_row(self, query: LiteralString, params: Params = ()) -> tuple[Any, ...] | None:
        """One row of a query run on its own connection."""
        async with self._pool.connection() as conn:
            return await self._row(conn, query, params)

    async def _fetch_rows(self, query: LiteralString, params: Params = ()) -> list[tuple[Any, ...]]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(self._q(query), params)
            return await cur.fetchall()

    async def _counts(self, subqueries: list[LiteralString], params: Params = ()) -> tuple[Any, ...]:
        """One row of aggregates, each `(SELECT ...)`, read in a single statement."""
        row = await self._fetch_row("SELECT " + ", ".join(subqueries), params)
        if row is None:
            raise RuntimeError("an aggregate query returned no row")
        return row
