"""Subjects and their wrapped data keys."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg.rows import dict_row

from likeness_platform.db import as_uuid as _uuid
from likeness_platform.db import fetch_row
from likeness_privacy.adapters.repository._common import RepositoryBase, _subject
from likeness_privacy.domain.records import SubjectRow


class SubjectsRepository(RepositoryBase):
    async def create_subject(self, kind: str, minor: bool, key_id: str, wrapped_for: Any, kek_id: str = "") -> SubjectRow:
        subject_id = uuid.uuid4()
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.cursor(row_factory=dict_row).execute(
                "INSERT INTO subjects (subject_id, kind, minor) VALUES (%s, %s, %s) RETURNING *", (subject_id, kind, minor)
            )
            row = await cur.fetchone()
            assert row is not None
            await conn.execute(
                "INSERT INTO data_keys (subject_id, key_id, wrapped, kek_id) VALUES (%s, %s, %s, %s)",
                (subject_id, key_id, wrapped_for(str(subject_id)), kek_id),
            )
        return _subject(row)

    async def get_subject(self, subject_id: str) -> SubjectRow | None:
        sid = _uuid(subject_id)
        row = await fetch_row(self.pool, "SELECT * FROM subjects WHERE subject_id = %s", (sid,)) if sid else None
        return _subject(row) if row else None

    async def get_wrapped_key(self, subject_id: str) -> tuple[str, bytes, str] | None:
        """(key id, wrapped key, id of the KEK that wrapped it), None when there is no key."""
        sid = _uuid(subject_id)
        if sid is None:
            return None
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT key_id, wrapped, kek_id FROM data_keys WHERE subject_id = %s", (sid,))
            row = await cur.fetchone()
        return (row[0], bytes(row[1]), row[2]) if row else None

    async def rewrap(self, current_kek_id: str, rewrap: Any, batch: int = 500) -> int:
        """Move up to `batch` keys not under the current KEK to it; `rewrap(subject_id, kek_id, wrapped)` gives
        the new wrapping (or None when the old KEK is gone). How many were moved."""
        moved = 0
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT subject_id, kek_id, wrapped FROM data_keys WHERE kek_id <> %s LIMIT %s FOR UPDATE SKIP LOCKED",
                (current_kek_id, batch),
            )
            for sid, kek_id, wrapped in await cur.fetchall():
                new = rewrap(str(sid), kek_id, bytes(wrapped))
                if new is None:
                    continue
                await conn.execute("UPDATE data_keys SET wrapped = %s, kek_id = %s WHERE subject_id = %s", (new, current_kek_id, sid))
                moved += 1
        return moved

    async def destroy_key(self, subject_id: str) -> int:
        async with self.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM data_keys WHERE subject_id = %s", (uuid.UUID(subject_id),))
            return cur.rowcount
