"""Data export: one zip of what every holder keeps about a subject, sealed under its key, downloadable once.

Its progress is visible while it is built (`progress`): the export's row is written before the first holder is
asked and updated as items land in the archive (bytes and holders done, against the bytes the holders announced).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import IO, Any

import structlog

from likeness_platform.crypto import open_sealed, seal
from likeness_platform.dataholder import ExportItem
from likeness_platform.errors import DomainError, FailedPrecondition, NotFound, ResourceExhausted, Unavailable
from likeness_privacy.adapters.repository import PrivacyRepository
from likeness_privacy.domain.errors import describe_error
from likeness_privacy.domain.exports import STALE_AFTER, ExportProgress, already_compressed
from likeness_privacy.usecases.ports import Holders, PrivacyConfig
from likeness_privacy.usecases.subjects import Subjects

log = structlog.get_logger("likeness.privacy")

# Up to this much of an export is built in memory, the rest on disk; it is stored and read in chunks of CHUNK_BYTES.
SPOOL_BYTES = 4 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
# Progress is written at most this often while items arrive (and after each holder).
PROGRESS_EVERY_SECONDS = 0.25
# An interrupted build (privacy stopped or died mid-build) is started again this often at most per export's life.
MAX_RESTARTS = 2


class Exports:
    def __init__(self, repo: PrivacyRepository, holders: Holders, subjects: Subjects, config: PrivacyConfig) -> None:
        self._repo = repo
        self._holders = holders
        self._subjects = subjects
        self._config = config
        self._building: set[asyncio.Task[None]] = set()

    async def request(self, subject_id: str) -> tuple[str, datetime, int]:
        """Build an export and answer once it is stored: (export id, expiry, size in bytes); refused when any
        holder does not answer or it outgrows the cap.

        Memory stays bounded whatever the export's size: the zip is written to a spooled temporary file (on
        disk past a few MiB), one holder item or 1 MiB piece of one at a time, and stored as sealed 1 MiB chunks read back from it.
        While one of the subject's exports is being built, another is refused (EXPORT_IN_PROGRESS) rather than
        gathered beside it.
        """
        key, key_id = await self._subjects.data_key(subject_id)
        started, new = await self._begin(subject_id, reuse=("building",))
        if not new:
            raise FailedPrecondition(
                "an export of your data is being built; poll GET /v1/me/export with Accept: application/json, "
                "then download it when it is ready",
                "EXPORT_IN_PROGRESS",
            )
        size = await self._build(subject_id, started.export_id, key, key_id)
        return started.export_id, started.expires_at, size

    async def start(self, subject_id: str) -> ExportProgress:
        """Start building an export in the background and answer at once with its progress; the subject's latest
        export is answered instead when it is still building or ready to download (checked and started under a
        lock on the subject: requests at once start one build)."""
        key, key_id = await self._subjects.data_key(subject_id)
        latest = await self.progress(subject_id)
        if latest is not None and latest.state in ("building", "ready"):
            return latest
        started, new = await self._begin(subject_id, reuse=("building", "ready"))
        if not new:
            return started.as_seen_at(datetime.now(UTC))

        async def build() -> None:
            try:
                await self._build(subject_id, started.export_id, key, key_id)
            except Exception as exc:  # recorded on the export by _build; the caller polls for it
                log.warning("export_failed", error=describe_error(exc))

        task = asyncio.create_task(build())
        self._building.add(task)
        task.add_done_callback(self._building.discard)
        return started

    async def resume_interrupted(self) -> int:
        """Start again the builds a privacy restart interrupted (on any replica); how many were started.

        A build is not resumed half-way (the spooled zip died with its process): a new export of the subject is
        built in the background, which GET /v1/me/export then reports, and the interrupted one reads
        EXPORT_RESTARTED. A subject whose builds keep being interrupted gets at most MAX_RESTARTS of them.
        """
        restarted = 0
        for export_id, subject_id in await self._repo.claim_interrupted_exports(STALE_AFTER, MAX_RESTARTS):
            try:
                started = await self.start(subject_id)
            except Exception as exc:  # e.g. the subject is being erased: its exports go with it
                log.warning("export_restart_failed", error=describe_error(exc))
                await self._repo.unclaim_export(export_id)
                continue
            log.info("export_restarted", export_id=started.export_id, interrupted=export_id)
            restarted += 1
        return restarted

    async def run_resumer(self, interval_seconds: float) -> None:
        """Background loop: at start (a restart's cancelled builds) and every interval (a dead replica's stale ones)."""
        while True:
            try:
                await self.resume_interrupted()
            except Exception as exc:
                log.error("export_resume_failed", error=describe_error(exc))
            await asyncio.sleep(interval_seconds)

    async def progress(self, subject_id: str) -> ExportProgress | None:
        """The subject's latest unexpired export as far as it has got; None when there is none."""
        latest = await self._repo.latest_export(subject_id)
        return latest.as_seen_at(datetime.now(UTC)) if latest else None

    async def _begin(self, subject_id: str, reuse: tuple[str, ...]) -> tuple[ExportProgress, bool]:
        """A new export, building (True); or the subject's latest when its state is in `reuse` (False)."""
        names = self._holders.names
        expected = sum(await asyncio.gather(*(self._announced_bytes(name, subject_id) for name in names)))
        return await self._repo.start_export_once(subject_id, self._config.export_ttl, len(names), expected, reuse)

    async def _announced_bytes(self, name: str, subject_id: str) -> int:
        """What a holder says its export will weigh (its stored blobs); 0 when it says nothing or does not answer
        (the build then finds out)."""
        size_of = getattr(self._holders.get(name), "export_size", None)
        if size_of is None:
            return 0
        try:
            return int(await size_of(subject_id))
        except Exception:
            return 0

    async def _build(self, subject_id: str, export_id: str, key: bytes, key_id: str) -> int:
        """Gather every holder's items into the zip, store it sealed; the export's size. On failure the export is
        marked failed with the error's code, and the error raised."""
        try:
            return await self._gather_and_store(subject_id, export_id, key, key_id)
        except BaseException as exc:
            code = (
                exc.code
                if isinstance(exc, DomainError)
                else "EXPORT_INTERRUPTED"
                if isinstance(exc, asyncio.CancelledError)
                else "EXPORT_FAILED"
            )
            try:
                await asyncio.shield(self._repo.fail_export(export_id, code))
            except Exception as fail_exc:
                log.warning("export_fail_not_recorded", error=describe_error(fail_exc))
            raise

    async def _gather_and_store(self, subject_id: str, export_id: str, key: bytes, key_id: str) -> int:
        cap = self._config.export_max_bytes
        manifest: dict[str, Any] = {"subject_id": subject_id, "created_at": datetime.now(UTC).isoformat(), "holders": {}}
        gathered, last_report = 0, time.monotonic()
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive, _Entries(archive) as entries:
                for done, name in enumerate(self._holders.names):
                    items = 0
                    # Export reads are access-logged like any other read. Privacy logs them here, before asking:
                    # the mesh policy lets only privacy call DataHolder.Export, so this is every export read, and
                    # a read whose entry cannot be written does not happen.
                    await self._repo.add_access(subject_id, "privacy", f"{name}/export", "export")
                    try:
                        async for item in self._holders.get(name).export(subject_id):
                            items += entries.write(f"{name}/{item.name}", item)
                            gathered += len(item.data)
                            if spool.tell() > cap:
                                raise ExportTooLarge(f"the export is larger than {cap} bytes; ask for help to get it in parts")
                            if time.monotonic() - last_report >= PROGRESS_EVERY_SECONDS:
                                await self._repo.export_progressed(
                                    export_id, bytes_written=spool.tell(), bytes_gathered=gathered, parts_written=done
                                )
                                last_report = time.monotonic()
                        entries.finish()
                    except ExportTooLarge:
                        raise
                    except Exception as exc:
                        log.warning("export_holder_failed", holder=name, error=describe_error(exc))
                        raise HolderUnavailable(
                            f"the {name} service did not answer, so the export would be incomplete; try again"
                        ) from None
                    manifest["holders"][name] = items
                    await self._repo.export_progressed(
                        export_id, bytes_written=spool.tell(), bytes_gathered=gathered, parts_written=done + 1
                    )
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

            await self._repo.store_export_chunks(export_id, size, chunks)
        await self._repo.add_access(subject_id, "privacy", f"privacy/export/{export_id}", "export")
        return size

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


class _Entries:
    """Writes holders' items into the archive. An item that comes in pieces (a photo, 1 MiB at a time) is written
    piece by piece as they arrive, never gathered whole; a holder whose pieces stop or interleave is an error."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self._archive = archive
        self._path = ""
        self._open: IO[bytes] | None = None

    def write(self, path: str, item: ExportItem) -> int:
        """Write one item or piece; 1 when it completed an item, else 0."""
        if self._open is None:
            compress = zipfile.ZIP_STORED if already_compressed(item.content_type) else zipfile.ZIP_DEFLATED
            if item.last:
                self._archive.writestr(path, item.data, compress_type=compress)
                return 1
            entry = zipfile.ZipInfo(path, date_time=time.localtime(time.time())[:6])
            entry.compress_type, entry.external_attr = compress, 0o600 << 16
            self._path, self._open = path, self._archive.open(entry, "w")
        elif path != self._path:
            raise ValueError(f"{path} began before {self._path} ended")
        self._open.write(item.data)
        if not item.last:
            return 0
        self._close()
        return 1

    def finish(self) -> None:
        """A holder's items are over: none may be left half-written."""
        if self._open is not None:
            raise ValueError(f"{self._path} ended before its last piece")

    def _close(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None

    def __enter__(self) -> _Entries:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()  # before the archive closes (it refuses to while an entry is open)


class ExportTooLarge(ResourceExhausted):
    default_code = "EXPORT_TOO_LARGE"


class HolderUnavailable(Unavailable):
    default_code = "HOLDER_UNAVAILABLE"


def _chunk_aad(subject_id: str, export_id: str, idx: int, last: bool) -> bytes:
    # Bound to subject, export, position and end: chunks cannot be reordered, moved, dropped or cut short.
    return f"export:{subject_id}:{export_id}:{idx}:{'last' if last else 'more'}".encode()
