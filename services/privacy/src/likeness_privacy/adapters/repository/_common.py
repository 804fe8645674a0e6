"""Helpers shared by the parts of the privacy repository."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from likeness_platform.db import as_uuid as _uuid
from likeness_platform.db import from_row
from likeness_platform.errors import SubjectErasing
from likeness_privacy.domain import chain
from likeness_privacy.domain.records import SubjectRow


class RepositoryBase:
    """What every part of the repository shares: the connection pool."""

    pool: AsyncConnectionPool


async def _count(conn: Any, query: str | sql.Composable, params: tuple[Any, ...]) -> int:
    """The row count one of the schema's functions returns."""
    row = await (await conn.execute(query, params)).fetchone()
    return int(row[0]) if row else 0


async def _hold_subject(conn: Any, sid: Any) -> Any:
    """Inside a transaction: hold the subject's row (FOR SHARE) so erasure cannot start meanwhile,
    and ask for its state; the cursor that will hold it (in a pipeline, read it later)."""
    return await conn.execute("SELECT state FROM subjects WHERE subject_id = %s FOR SHARE", (sid,))


async def _was_active(held: Any) -> bool:
    """Whether _hold_subject's subject is active."""
    row = await held.fetchone()
    return row is not None and row[0] == "active"


async def _is_active(conn: Any, subject_id: str) -> bool:
    """Inside a transaction: whether the subject is active, holding its row (see _hold_subject)."""
    sid = _uuid(subject_id)
    return sid is not None and await _was_active(await _hold_subject(conn, sid))


NOT_ACTIVE = "the subject is unknown, being erased or erased; nothing more is recorded about it"


async def _require_active(conn: Any, subject_id: str) -> None:
    if not await _is_active(conn, subject_id):
        raise SubjectErasing(NOT_ACTIVE)


def resource_kind(resource: str) -> str:
    """What the chained access log keeps of a resource: its first two path segments (``ingestion/upload``), no ids."""
    return "/".join(resource.split("/")[:2])


def _subject(row: Mapping[str, Any]) -> SubjectRow:
    return from_row(SubjectRow, row)


# The advisory lock of each hash chain: one writer at a time extends it.
_CHAIN_LOCKS = {"erasure_ledger": "likeness-erasure-ledger", "access_log": "likeness-access-log"}


async def _chain_tail(conn: Any, table: str) -> Any:
    """Inside a transaction: lock the chain kept in `table` and ask for its last hash; the cursor
    that will hold it (in a pipeline, both statements go with whatever is queued before them)."""
    await conn.execute(sql.SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(sql.Literal(_CHAIN_LOCKS[table])))
    return await conn.execute(sql.SQL("SELECT hash FROM {} ORDER BY seq DESC LIMIT 1").format(sql.Identifier(table)))


async def _linked(tail: Any, body: dict[str, Any]) -> tuple[str, str]:
    """`body` linked to the chain's last entry, read from _chain_tail's cursor; (prev_hash, hash)."""
    last = await tail.fetchone()
    prev = last[0] if last else chain.GENESIS
    return prev, chain.link(prev, body)


async def _link_to_chain(conn: Any, table: str, body: dict[str, Any]) -> tuple[str, str]:
    """Inside a transaction: lock the chain kept in `table` and link `body` to its last entry; (prev_hash, hash)."""
    return await _linked(await _chain_tail(conn, table), body)
