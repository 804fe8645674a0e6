"""Postgres repository of devices, and the gateway's DataHolder view of them."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from psycopg import sql
from psycopg.errors import UniqueViolation
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from likeness_gateway.domain.devices import Device
from likeness_platform.categories import Category
from likeness_platform.dataholder import ExportItem, Retention
from likeness_platform.db import as_uuid as _uuid
from likeness_platform.db import fetch_row, from_row, oldest_age

# What a person may correct about a device through the API (the rest is set by the platform or the server).
CORRECTABLE = ("language", "app_version")


def _device(row: Mapping[str, Any]) -> Device:
    return from_row(Device, row)


class DeviceRepository:
    name = "gateway"

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def add(
        self, subject_id: str, token_hash: str, info: Mapping[str, str], ttl: timedelta, attest_key_id: str | None = None
    ) -> Device:
        """A new device; KeyError when `attest_key_id` already registered one."""
        async with self.pool.connection() as conn:
            try:
                cur = await conn.cursor(row_factory=dict_row).execute(
                    "INSERT INTO devices (device_id, subject_id, token_hash, platform, model, os_version, app_version, language,"
                    " expires_at, attest_key_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now() + %s, %s) RETURNING *",
                    (
                        uuid.uuid4(),
                        uuid.UUID(subject_id),
                        token_hash,
                        info["platform"],
                        info["model"],
                        info["os_version"],
                        info["app_version"],
                        info["language"],
                        ttl,
                        attest_key_id,
                    ),
                )
            except UniqueViolation:
                raise KeyError("attest_key_id") from None
            row = await cur.fetchone()
        assert row is not None
        return _device(row)

    async def attest_key_used(self, attest_key_id: str) -> bool:
        return await fetch_row(self.pool, "SELECT 1 FROM devices WHERE attest_key_id = %s", (attest_key_id,)) is not None

    async def by_token_hash(self, token_hash: str) -> Device | None:
        """The device holding this token, read fresh on every call: no cache, so a revocation or erasure on any
        replica stops the token at once everywhere."""
        row = await fetch_row(self.pool, "SELECT * FROM devices WHERE token_hash = %s", (token_hash,))
        return _device(row) if row else None

    async def get(self, device_id: str) -> Device | None:
        did = _uuid(device_id)
        row = await fetch_row(self.pool, "SELECT * FROM devices WHERE device_id = %s", (did,)) if did else None
        return _device(row) if row else None

    async def rotate(self, device_id: str, old_hash: str, new_hash: str, ttl: timedelta) -> bool:
        """Replace an active device's token hash (the old token stops at once) and start a new term."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE devices SET token_hash = %s, expires_at = now() + %s WHERE device_id = %s AND token_hash = %s AND active",
                (new_hash, ttl, uuid.UUID(device_id), old_hash),
            )
            return cur.rowcount == 1

    async def revoke(self, device_id: str) -> bool:
        """Forget one device and so stop its token for good (the subject's other devices keep theirs).

        The row is deleted rather than deactivated: an inactive row means "erasure recorded", which still
        lets `DELETE /v1/me` be retried, and a revoked token must not do even that."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM devices WHERE device_id = %s AND active", (uuid.UUID(device_id),))
            return cur.rowcount == 1

    async def active_subjects(self, subject_ids: set[str]) -> set[str]:
        """Those of `subject_ids` with an active device (a subject whose erasure started has none)."""
        ids = [sid for sid in map(_uuid, subject_ids) if sid is not None]
        if not ids:
            return set()
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT DISTINCT subject_id FROM devices WHERE subject_id = ANY(%s) AND active", (ids,))
            return {str(r[0]) for r in await cur.fetchall()}

    async def deactivate_subject(self, subject_id: str) -> int:
        """Stop a subject's tokens at once (erasure started)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("UPDATE devices SET active = false WHERE subject_id = %s", (uuid.UUID(subject_id),))
            return cur.rowcount

    async def link(self, device_id: str, subject_id: str) -> str | None:
        """Move an active device to `subject_id` (an account's); the subject it had before, None when it is not active."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE devices d SET subject_id = %s FROM devices old WHERE d.device_id = %s AND d.active AND old.device_id = d.device_id"
                " RETURNING old.subject_id",
                (uuid.UUID(subject_id), uuid.UUID(device_id)),
            )
            row = await cur.fetchone()
        return str(row[0]) if row else None

    async def count_of_subject(self, subject_id: str) -> int:
        row = await fetch_row(self.pool, "SELECT count(*) AS n FROM devices WHERE subject_id = %s", (uuid.UUID(subject_id),))
        return int(row["n"]) if row else 0

    async def revoke_subject(self, subject_id: str) -> int:
        """Forget every device of a subject (after a password reset: whoever had the password is signed out)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM devices WHERE subject_id = %s AND active", (uuid.UUID(subject_id),))
            return cur.rowcount

    async def correct(self, device_id: str, fields: Mapping[str, str]) -> Device | None:
        """Correct what the person may correct about their device (language, app version)."""
        allowed = {name: value for name, value in fields.items() if name in CORRECTABLE}
        if not allowed:
            return await self.get(device_id)
        assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(name)) for name in allowed)
        query = sql.SQL("UPDATE devices SET {} WHERE device_id = %s AND active RETURNING *").format(assignments)
        async with self.pool.connection() as conn:
            cur = await conn.cursor(row_factory=dict_row).execute(query, (*allowed.values(), uuid.UUID(device_id)))
            row = await cur.fetchone()
        return _device(row) if row else None

    # DataHolder ---------------------------------------------------------------------------
    async def inventory(self, subject_id: str) -> dict[str, int]:
        sid = _uuid(subject_id)
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM devices WHERE subject_id = %s", (sid,))
            row = await cur.fetchone()
        return {Category.DEVICES: int(row[0]) if row else 0}

    async def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        sid = _uuid(subject_id)
        async with self.pool.connection() as conn:
            cur = await conn.cursor(row_factory=dict_row).execute("SELECT * FROM devices WHERE subject_id = %s", (sid,))
            rows = [asdict(_device(r)) for r in await cur.fetchall()]
        yield ExportItem(Category.DEVICES, "devices.json", "application/json", json.dumps(rows, indent=2, default=str).encode())

    async def erase(self, subject_id: str, request_id: str) -> tuple[dict[str, int], dict[str, int]]:
        sid = _uuid(subject_id)
        async with self.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM devices WHERE subject_id = %s", (sid,))
            erased = cur.rowcount
            # Stored idempotent responses go with the devices (ids and sizes only, but keyed by the subject).
            await conn.execute("DELETE FROM idempotency_keys WHERE subject_id = %s", (sid,))
        return {Category.DEVICES: erased}, await self.inventory(subject_id)

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]:
        # Devices live as long as the app install; they go with erasure, not by age. Idempotency keys last 24 h.
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'")
        return {Category.DEVICES: 0}

    async def retention(self) -> list[Retention]:
        count, age = await oldest_age(self.pool, "devices")
        return [Retention(Category.DEVICES, count, age, 0.0)]
