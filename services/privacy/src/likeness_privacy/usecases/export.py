"""Data export: one zip of what every holder keeps about a subject, sealed under its key, downloadable once."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from typing import Any

import structlog

from likeness_platform.crypto import open_sealed, seal
from likeness_platform.errors import NotFound, Unavailable
from likeness_privacy.adapters.repository import PrivacyRepository
from likeness_privacy.domain.errors import describe_error
from likeness_privacy.usecases.ports import Holders, PrivacyConfig
from likeness_privacy.usecases.subjects import Subjects

log = structlog.get_logger("likeness.privacy")


class Exports:
    def __init__(self, repo: PrivacyRepository, holders: Holders, subjects: Subjects, config: PrivacyConfig) -> None:
        self._repo = repo
        self._holders = holders
        self._subjects = subjects
        self._config = config

    async def request(self, subject_id: str) -> tuple[str, datetime, int]:
        """(export id, expiry, size in bytes); refused when any holder does not answer."""
        key, key_id = await self._subjects.data_key(subject_id)
        buffer = io.BytesIO()
        manifest: dict[str, Any] = {"subject_id": subject_id, "created_at": datetime.now(UTC).isoformat(), "holders": {}}
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
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
                except Exception as exc:
                    log.warning("export_holder_failed", holder=name, error=describe_error(exc))
                    raise Unavailable(f"the {name} service did not answer, so the export would be incomplete; try again") from None
                manifest["holders"][name] = items
            archive.writestr("manifest.json", json.dumps(manifest, indent=2))
        export_id, expires = await self._repo.store_export(
            subject_id, seal(key, buffer.getvalue(), key_id, _aad(subject_id)), self._config.export_ttl
        )
        await self._repo.add_access(subject_id, "privacy", f"privacy/export/{export_id}", "export")
        return export_id, expires, len(buffer.getvalue())

    async def download(self, export_id: str, subject_id: str) -> bytes:
        """The export's zip, once; afterwards (or after it expires) it is gone."""
        key, _ = await self._subjects.data_key(subject_id)
        sealed = await self._repo.take_export(export_id, subject_id)
        if sealed is None:
            raise NotFound("no such export (exports can be downloaded once and expire after an hour)", "EXPORT_NOT_FOUND")
        return open_sealed(key, sealed, _aad(subject_id))


def _aad(subject_id: str) -> bytes:
    return b"export:" + subject_id.encode()
