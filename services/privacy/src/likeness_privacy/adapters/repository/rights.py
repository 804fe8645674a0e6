"""Consents, inquiries, notices and notice contacts in the privacy schema."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from likeness_platform.categories import Category
from likeness_platform.db import as_uuid as _uuid
from likeness_privacy.adapters.repository._common import _count, _require_active
from likeness_privacy.domain.rights import ConsentRecord

_INQUIRY_NAMES = ("inquiry_id", "subject_id", "topic", "message", "answer", "answered_by", "answered_at", "created_at")
# The column lists as composed SQL identifiers (never text pasted into a query).
_INQUIRY_COLUMNS = sql.SQL(", ").join(map(sql.Identifier, _INQUIRY_NAMES))
_INQUIRY_COLUMNS_I = sql.SQL(", ").join(sql.Identifier("i", name) for name in _INQUIRY_NAMES)


class RightsRepository:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    # Consents -----------------------------------------------------------------------------------

    async def add_consents(self, subject_id: str, changes: list[tuple[str, bool]], policy_version: str, source: str) -> None:
        """Append consent records of an active subject in one transaction; SubjectErasing once its erasure started."""
        async with self.pool.connection() as conn, conn.transaction():
            await _require_active(conn, subject_id)
            for purpose, granted in changes:
                await conn.execute(
                    "INSERT INTO consents (subject_id, purpose, granted, policy_version, source) VALUES (%s, %s, %s, %s, %s)",
                    (_uuid(subject_id), purpose, granted, policy_version, source),
                )

    async def consent_history(self, subject_id: str) -> list[ConsentRecord]:
        sid = _uuid(subject_id)
        if sid is None:
            return []
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT purpose, granted, policy_version, source, created_at FROM consents WHERE subject_id = %s ORDER BY seq", (sid,)
            )
            return [ConsentRecord(*row) for row in await cur.fetchall()]

    async def consent_granted(self, subject_id: str, purpose: str) -> bool:
        """The latest record of `purpose` grants it and the subject is active (an erasing subject consents to nothing)."""
        sid = _uuid(subject_id)
        if sid is None:
            return False
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT c.granted FROM consents c JOIN subjects s USING (subject_id)"
                " WHERE c.subject_id = %s AND c.purpose = %s AND s.state = 'active' ORDER BY c.seq DESC LIMIT 1",
                (sid, purpose),
            )
            row = await cur.fetchone()
        return bool(row and row[0])

    # Inquiries ----------------------------------------------------------------------------------

    async def add_inquiry(self, inquiry_id: str, subject_id: str, topic: str, sealed: bytes) -> dict[str, Any]:
        async with self.pool.connection() as conn, conn.transaction():
            await _require_active(conn, subject_id)
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                sql.SQL("INSERT INTO inquiries (inquiry_id, subject_id, topic, message) VALUES (%s, %s, %s, %s) RETURNING {}").format(
                    _INQUIRY_COLUMNS
                ),
                (uuid.UUID(inquiry_id), _uuid(subject_id), topic, sealed),
            )
            row = await cur.fetchone()
        assert row is not None
        return row

    async def inquiries_of(self, subject_id: str) -> list[dict[str, Any]]:
        sid = _uuid(subject_id)
        if sid is None:
            return []
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                sql.SQL("SELECT {} FROM inquiries WHERE subject_id = %s ORDER BY created_at DESC").format(_INQUIRY_COLUMNS), (sid,)
            )
            return await cur.fetchall()

    async def list_inquiries(self, answered: bool, limit: int) -> list[dict[str, Any]]:
        """Inquiries of active subjects, oldest first (an erasing subject's are about to go)."""
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                sql.SQL(
                    "SELECT {} FROM inquiries i JOIN subjects s USING (subject_id)"
                    " WHERE s.state = 'active' AND (i.answer IS NOT NULL) = %s ORDER BY i.created_at LIMIT %s"
                ).format(_INQUIRY_COLUMNS_I),
                (answered, limit),
            )
            return await cur.fetchall()

    async def get_inquiry(self, inquiry_id: str) -> dict[str, Any] | None:
        iid = _uuid(inquiry_id)
        if iid is None:
            return None
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(sql.SQL("SELECT {} FROM inquiries WHERE inquiry_id = %s").format(_INQUIRY_COLUMNS), (iid,))
            return await cur.fetchone()

    async def answer_inquiry(self, inquiry_id: str, subject_id: str, sealed: bytes, by: str) -> dict[str, Any] | None:
        """Store the first answer of an active subject's inquiry; None when it was answered meanwhile."""
        async with self.pool.connection() as conn, conn.transaction():
            await _require_active(conn, subject_id)
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                sql.SQL(
                    "UPDATE inquiries SET answer = %s, answered_by = %s, answered_at = now()"
                    " WHERE inquiry_id = %s AND answer IS NULL RETURNING {}"
                ).format(_INQUIRY_COLUMNS),
                (sealed, by, uuid.UUID(inquiry_id)),
            )
            return await cur.fetchone()

    # Contacts -----------------------------------------------------------------------------------

    async def set_contact(self, subject_id: str, channel: str, sealed: bytes | None) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            if sealed is None:
                await conn.execute("DELETE FROM notice_contacts WHERE subject_id = %s AND channel = %s", (_uuid(subject_id), channel))
                return
            await _require_active(conn, subject_id)
            await conn.execute(
                "INSERT INTO notice_contacts (subject_id, channel, sealed) VALUES (%s, %s, %s)"
                " ON CONFLICT (subject_id, channel) DO UPDATE SET sealed = excluded.sealed, updated_at = now()",
                (_uuid(subject_id), channel, sealed),
            )

    async def contacts_of(self, subject_id: str) -> list[tuple[str, bytes, datetime]]:
        """(channel, sealed, updated_at) of one subject's contacts, for its export."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT channel, sealed, updated_at FROM notice_contacts WHERE subject_id = %s ORDER BY channel", (_uuid(subject_id),)
            )
            return [(str(r[0]), bytes(r[1]), r[2]) for r in await cur.fetchall()]

    async def contacts(self, notice_id: str, everyone: bool, created_before: datetime | None, page: int = 500) -> AsyncIterator[Any]:
        """(subject_id, channel, sealed) of the active subjects a notice is addressed to, in pages (keyset on subject)."""
        after = uuid.UUID(int=0)
        while True:
            async with self.pool.connection() as conn:
                if everyone:
                    cur = await conn.execute(
                        "SELECT c.subject_id, c.channel, c.sealed FROM notice_contacts c JOIN subjects s USING (subject_id)"
                        " WHERE s.state = 'active' AND c.subject_id > %s AND (%s::timestamptz IS NULL OR s.created_at <= %s)"
                        " ORDER BY c.subject_id, c.channel LIMIT %s",
                        (after, created_before, created_before, page),
                    )
                else:
                    cur = await conn.execute(
                        "SELECT c.subject_id, c.channel, c.sealed FROM notice_contacts c JOIN subjects s USING (subject_id)"
                        " JOIN notice_recipients r ON r.subject_id = c.subject_id AND r.notice_id = %s"
                        " WHERE s.state = 'active' AND c.subject_id > %s ORDER BY c.subject_id, c.channel LIMIT %s",
                        (uuid.UUID(notice_id), after, page),
                    )
                rows = await cur.fetchall()
            full = len(rows) == page
            if full:
                # The last subject's channels may straddle pages: it starts the next page whole.
                last = rows[-1][0]
                rows = [row for row in rows if row[0] != last]
            for row in rows:
                yield str(row[0]), row[1], bytes(row[2])
            if not full:
                return
            after = rows[-1][0]

    # Notices ------------------------------------------------------------------------------------

    async def add_notice(self, notice: dict[str, Any], subject_ids: list[str]) -> int:
        """Store a notice and its recipients (active subjects only); how many subjects it is addressed to."""
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO notices (notice_id, kind, title, body, policy_version, effective_at, everyone, published_by, published_at)"
                " VALUES (%(notice_id)s, %(kind)s, %(title)s, %(body)s, %(policy_version)s, %(effective_at)s, %(everyone)s,"
                " %(published_by)s, %(published_at)s)",
                notice,
            )
            if notice["everyone"]:
                cur = await conn.execute(
                    "SELECT count(*) FROM subjects WHERE state = 'active' AND (%(kind)s = 'policy_change' OR created_at <= %(published_at)s)",
                    notice,
                )
                row = await cur.fetchone()
                return int(row[0]) if row else 0
            ids = [u for u in (_uuid(s) for s in subject_ids) if u is not None]
            cur = await conn.execute(
                "INSERT INTO notice_recipients (notice_id, subject_id)"
                " SELECT %s, subject_id FROM subjects WHERE subject_id = ANY(%s) AND state = 'active' ON CONFLICT DO NOTHING",
                (notice["notice_id"], ids),
            )
            return cur.rowcount

    async def get_notice(self, notice_id: str) -> dict[str, Any] | None:
        nid = _uuid(notice_id)
        if nid is None:
            return None
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute("SELECT * FROM notices WHERE notice_id = %s", (nid,))
            return await cur.fetchone()

    async def notices_for(self, subject_id: str) -> list[dict[str, Any]]:
        """Notices addressed to a subject: listed for it, for everyone who was a subject when it was published, or policy changes."""
        sid = _uuid(subject_id)
        if sid is None:
            return []
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(
                "SELECT n.* FROM notices n, subjects s WHERE s.subject_id = %(s)s AND ("
                " (n.everyone AND (n.kind = 'policy_change' OR s.created_at <= n.published_at))"
                " OR EXISTS (SELECT 1 FROM notice_recipients r WHERE r.notice_id = n.notice_id AND r.subject_id = %(s)s))"
                " ORDER BY n.published_at DESC LIMIT 200",
                {"s": sid},
            )
            return await cur.fetchall()

    # The subject's data as one holder ---------------------------------------------------------

    async def inventory(self, subject_id: str) -> dict[str, int]:
        sid = _uuid(subject_id)
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM consents WHERE subject_id = %(s)s),"
                " (SELECT count(*) FROM inquiries WHERE subject_id = %(s)s),"
                " (SELECT count(*) FROM notice_recipients WHERE subject_id = %(s)s),"
                " (SELECT count(*) FROM notice_contacts WHERE subject_id = %(s)s)",
                {"s": sid},
            )
            row = await cur.fetchone()
        assert row is not None
        names = (Category.CONSENTS, Category.INQUIRIES, Category.NOTICE_RECIPIENTS, Category.NOTICE_CONTACTS)
        return dict(zip(names, (int(v) for v in row), strict=True))

    async def erase(self, subject_id: str) -> dict[str, int]:
        sid = uuid.UUID(subject_id)
        async with self.pool.connection() as conn, conn.transaction():
            consents = await _count(conn, "SELECT forget_consents(%s)", (sid,))
            inquiries = (await conn.execute("DELETE FROM inquiries WHERE subject_id = %s", (sid,))).rowcount
            recipients = (await conn.execute("DELETE FROM notice_recipients WHERE subject_id = %s", (sid,))).rowcount
            contacts = (await conn.execute("DELETE FROM notice_contacts WHERE subject_id = %s", (sid,))).rowcount
        return {
            Category.CONSENTS: consents,
            Category.INQUIRIES: inquiries,
            Category.NOTICE_RECIPIENTS: recipients,
            Category.NOTICE_CONTACTS: contacts,
        }

    async def sweep_inquiries(self, cutoff: datetime) -> int:
        async with self.pool.connection() as conn:
            return (await conn.execute("DELETE FROM inquiries WHERE created_at < %s", (cutoff,))).rowcount

    async def oldest_inquiry(self) -> tuple[int, float]:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM inquiries")
            row = await cur.fetchone()
        assert row is not None
        return int(row[0]), float(row[1])
