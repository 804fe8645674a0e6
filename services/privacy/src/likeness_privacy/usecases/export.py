"""Data export: one zip of what every holder keeps about a subject, sealed under its key, downloadable once."""

from __future__ import annotations

import json
import tempfile
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import structlog

from likeness_platform.crypto import open_sealed, seal
from likeness_platform.errors import NotFound, ResourceExhausted, Unavailable
from likeness_privacy.adapters.repository import PrivacyRepository
from likeness_privacy.domain.errors import describe_error
from likeness_privacy.usecases.ports import Holders, PrivacyConfig
from likeness_privacy.usecases.subjects import Subjects

log = structlog.get_logger("likeness.privacy")

# Up to this much of an export is built in memory, the rest on disk; it is stored and read in chunks of CHUNK_BYTES.
SPOOL_BYTES = 4 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024


class Exports:
    def __init__(self, repo: PrivacyRepository, holders: Holders, subjects: Subjects, config: PrivacyConfig) -> None:
        self._repo = repo
        self._holders = holders
        self._subjects = subjects
        self._config = config

    async def request(self, subject_id: str) -> tuple[str, datetime, int]:
        """(export id, expiry, size in bytes); refused when any holder does not answer or it outgrows the cap.

        Memory stays bounded whatever the export's size: the zip is written to a spooled temporary file (on
        disk past a few MiB), one holder item at a time, and stored as sealed 1 MiB chunks read back from it.
        """
        key, key_id = await self._subjects.data_key(subject_id)
        cap = self._config.export_max_bytes
        manifest: dict[str, Any] = {"subject_id": subject_id, "created_at": datetime.now(UTC).isoformat(), "holders": {}}
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
                for name in self._holders.names:
                    items = 0
                    # Export reads are access-logged like any other read. Privacy logs them here, before asking:
                    # the mesh policy lets only privacy call DataHolder.Export, so this is every export read, and
                    # a read whose entry cannot be written does not happen.
                    await self._repo.add_access(subject_id, "privacy", f"{name}/export", "export")
                    try:
                        async for item in self._holders.get(name).export(subject_id):
                            archive.writestr(f"{name}/{item.name}", item.data)
                            items += 1
                            if spool.tell() > cap:
                                raise ExportTooLarge(f"the export is larger than {cap} bytes; ask for help to get it in parts")
                    except ExportTooLarge:
                        raise
                    except Exception as exc:
                        log.warning("export_holder_failed", holder=name, error=describe_error(exc))
                        raise Unavailable(f"the {name} service did not answer, so the export would be incomplete; try again") from None
                    manifest["holders"][name] = items
                archive.writestr("manifest.json", json.dumps(manifest, indent=2))
            size = spool.tell()

            async def chunks(export_id: str) -> AsyncIterator[bytes]:
                spool.seek(0)
                idx, left = 0, size
                while True:
                    data = spool.read(CHUNK_BYTES)
                    left -= len(data)
                    yield seal(key, data, key_id, _chunk_aad(subject_id, export_id, idx, left <= 0))
                    idx += 1
                    if left <= 0:
                        return

            export_id, expires = await self._repo.store_export_chunks(subject_id, self._config.export_ttl, chunks)
        await self._repo.add_access(subject_id, "privacy", f"privacy/export/{export_id}", "export")
        return export_id, expires, size

    async def stream(self, export_id: str, subject_id: str) -> AsyncIterator[bytes]:
        """The export's zip, chunk by chunk, once; afterwards (or after it expires) it is gone."""
        key, _ = await self._subjects.data_key(subject_id)
        count = await self._repo.claim_export(export_id, subject_id)
        if count is None:
            raise NotFound("no such export (exports can be downloaded once and expire after an hour)", "EXPORT_NOT_FOUND")
        try:
            for idx in range(count):
                yield open_sealed(
                    key, await self._repo.export_chunk(export_id, idx), _chunk_aad(subject_id, export_id, idx, idx == count - 1)
                )
        finally:
            await self._repo.drop_export(export_id)

    async def download(self, export_id: str, subject_id: str) -> bytes:
        """The whole export's zip (for small exports and tests; the gRPC download streams)."""
        return b"".join([chunk async for chunk in self.stream(export_id, subject_id)])


class ExportTooLarge(ResourceExhausted):
    default_code = "EXPORT_TOO_LARGE"


def _chunk_aad(subject_id: str, export_id: str, idx: int, last: bool) -> bytes:
    # Bound to subject, export, position and end: chunks cannot be reordered, moved, dropped or cut short.
    return f"export:{subject_id}:{export_id}:{idx}:{'last' if last else 'more'}".encode()


def _aad(subject_id: str) -> bytes:
    return b"export:" + subject_id.encode()
