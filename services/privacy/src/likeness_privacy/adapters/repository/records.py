"""Generation records, security events and the chained access log."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from likeness_platform.db import as_uuid as _uuid
from likeness_platform.errors import SubjectErasing
from likeness_privacy.adapters.repository._common import (
    NOT_ACTIVE,
    RepositoryBase,
    _chain_tail,
    _hold_subject,
    _is_active,
    _linked,
    _require_active,
    _was_active,
    resource_kind,
)
from likeness_privacy.domain import chain
from likeness_privacy.domain.pseudonyms import salted_commit


class RecordsRepository(RepositoryBase):
    async def add_generation(
        self, subject_id: str, pseudonym: str, interface: str, parameters: Mapping[str, str], status: str, latency_ms: float
    ) -> str:
        """Record a generation of an active subject; SubjectErasing once its erasure has started (checked in this transaction)."""
        record_id = uuid.uuid4()
        async with self.pool.connection() as conn, conn.transaction():
            await _require_active(conn, subject_id)
            await conn.execute(
                "INSERT INTO generation_records (record_id, subject_pseudonym, interface, parameters, status, latency_ms)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (record_id, pseudonym, interface, json.dumps(dict(parameters)), status, latency_ms),
            )
        return str(record_id)

    async def add_security_event(
        self,
        pseudonym: str | None,
        event_type: str,
        ip_hash: str,
        ip_prefix: str,
        caller: str = "",
        method: str = "",
        subject_id: str = "",
    ) -> None:
        """A security event stays (it is about the service's safety), but is linked to a subject only while it is active."""
        async with self.pool.connection() as conn, conn.transaction():
            if subject_id and not await _is_active(conn, subject_id):
                pseudonym = None
            await conn.execute(
                "INSERT INTO security_events (event_id, subject_pseudonym, event_type, ip_hash, ip_prefix, caller, method)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (uuid.uuid4(), pseudonym, event_type, ip_hash, ip_prefix, caller, method),
            )

    async def add_access(self, subject_id: str, actor: str, resource: str, purpose: str) -> str:
        """Chain an access of an active subject's data; SubjectErasing once its erasure has started.

        The chained body names only the kind of resource; the full resource (ids the subject's export
        contains) is kept beside it in resource_ref, committed to with the subject id, and unlinked with them.
        """
        salt = os.urandom(16)
        commit = salted_commit(salt, subject_id + "\n" + resource)
        kind = resource_kind(resource)
        now = datetime.now(UTC)
        body = {"subject_commit": commit, "actor": actor, "resource": kind, "purpose": purpose, "at": now.isoformat()}
        sid = _uuid(subject_id)
        if sid is None:
            raise SubjectErasing(NOT_ACTIVE)
        # Pipelined: the subject's check, the chain's lock and its last hash go in one round trip,
        # the entry and the commit in another (six round trips one by one); the lock is held
        # for those two only. The statements still run in this order, in one transaction.
        async with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            held = await _hold_subject(conn, sid)
            tail = await _chain_tail(conn, "access_log")
            if not await _was_active(held):
                raise SubjectErasing(NOT_ACTIVE)
            prev, entry_hash = await _linked(tail, body)
            await conn.execute(
                "INSERT INTO access_log (subject_id, salt, subject_commit, actor, resource, resource_ref, purpose, created_at, prev_hash, hash)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (sid, salt, commit, actor, kind, resource, purpose, now, prev, entry_hash),
            )
        return entry_hash

    async def access_entries(self) -> list[chain.ChainEntry]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT seq, subject_commit, actor, resource, purpose, created_at, prev_hash, hash FROM access_log ORDER BY seq"
            )
            return [
                chain.ChainEntry(
                    r[0],
                    {"subject_commit": r[1], "actor": r[2], "resource": r[3], "purpose": r[4], "at": r[5].astimezone(UTC).isoformat()},
                    r[6],
                    r[7],
                )
                for r in await cur.fetchall()
            ]

    async def recent_security_events(self, limit: int, since: datetime | None) -> list[dict[str, object]]:
        """The newest security events (no address hash, no subject pseudonym), newest first."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT event_type, caller, method, ip_prefix, created_at FROM security_events"
                " WHERE created_at >= coalesce(%s, '-infinity'::timestamptz) ORDER BY created_at DESC LIMIT %s",
                (since, limit),
            )
            return [
                {"event_type": r[0], "caller": r[1], "method": r[2], "ip_prefix": r[3], "created_at": r[4]} for r in await cur.fetchall()
            ]
