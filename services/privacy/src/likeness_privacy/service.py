"""Privacy use cases: subjects and keys, erasure across holders, export, records, retention."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog

from likeness_platform.crypto import open_sealed, seal
from likeness_platform.dataholder import ExportItem, Retention
from likeness_platform.errors import FailedPrecondition, InvalidArgument, NotFound, SubjectErasing, Unavailable
from likeness_platform.metrics import ERASURE_DEADLINE_BREACHES, RETENTION_BREACHES, SWEEP_LAG
from likeness_privacy.adapters.holders import describe_error
from likeness_privacy.adapters.repository import ErasureRow, PrivacyRepository, SubjectRow
from likeness_privacy.domain import chain, keys
from likeness_privacy.domain.pseudonyms import ip_hash, ip_prefix, subject_pseudonym
from likeness_privacy.domain.retention import RETENTION, backoff_seconds

log = structlog.get_logger("likeness.privacy")

SELF = "privacy"


class HolderPort(Protocol):
    name: str

    async def inventory(self, subject_id: str) -> Mapping[str, int]: ...

    def export(self, subject_id: str) -> AsyncIterator[ExportItem]: ...

    async def erase(self, subject_id: str, request_id: str) -> tuple[Mapping[str, int], Mapping[str, int]]: ...

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> Mapping[str, int]: ...

    async def retention(self) -> list[Retention]: ...


@dataclass
class PrivacyConfig:
    kek: bytes
    pseudonym_key: bytes
    retry_base_seconds: float = 0.5
    retry_cap_seconds: float = 30.0
    export_ttl: timedelta = timedelta(hours=1)
    holder_timeout_seconds: float = 10.0
    erasure_poll_seconds: float = 5.0
    retention: dict[str, timedelta] = field(default_factory=lambda: dict(RETENTION))


class PrivacyService:
    def __init__(self, repo: PrivacyRepository, holders: list[HolderPort], config: PrivacyConfig) -> None:
        self.repo = repo
        self.holders = holders
        self.config = config
        self.self_holder = SelfHolder(self)
        self._wake = asyncio.Event()

    def pseudonym(self, subject_id: str) -> str:
        return subject_pseudonym(self.config.pseudonym_key, subject_id)

    @property
    def holder_names(self) -> list[str]:
        return [SELF, *(h.name for h in self.holders)]

    # subjects & keys ----------------------------------------------------------------------
    async def register_subject(self, kind: str, minor: bool) -> tuple[SubjectRow, ErasureRow | None]:
        if kind not in ("device", "account"):
            raise InvalidArgument("kind must be device or account", "INVALID_SUBJECT_KIND")
        key_id = uuid.uuid4().hex
        data_key = keys.new_data_key()
        subject = await self.repo.create_subject(kind, minor, key_id, lambda sid: keys.wrap(self.config.kek, sid, data_key))
        erasure = None
        if minor:
            # Invariant 6: a subject under 13 is erased at once, nothing is kept.
            erasure = await self.request_erasure(subject.subject_id, "minor")
        return subject, erasure

    async def get_subject(self, subject_id: str) -> SubjectRow:
        subject = await self.repo.get_subject(subject_id)
        if subject is None:
            raise NotFound("no such subject", "SUBJECT_NOT_FOUND")
        return subject

    async def get_data_key(self, subject_id: str) -> tuple[bytes, str]:
        subject = await self.get_subject(subject_id)
        if subject.state != "active":
            raise SubjectErasing("the subject is being erased; no new data may be written for it")
        wrapped = await self.repo.get_wrapped_key(subject_id)
        if wrapped is None:
            raise FailedPrecondition("the subject's data key no longer exists", "KEY_DESTROYED")
        key_id, blob = wrapped
        return keys.unwrap(self.config.kek, subject_id, blob), key_id

    # erasure -----------------------------------------------------------------------------------
    async def request_erasure(self, subject_id: str, reason: str) -> ErasureRow:
        subject = await self.repo.get_subject(subject_id)
        if subject is None:
            # Erasing an erased subject again is a no-op that answers with the erasure that did it.
            previous = await self.repo.latest_erasure_for_pseudonym(self.pseudonym(subject_id))
            if previous is None:
                raise NotFound("no such subject", "SUBJECT_NOT_FOUND")
            return previous
        erasure, created = await self.repo.start_erasure(
            subject_id, self.pseudonym(subject_id), reason or "user_request", self.holder_names
        )
        if created:
            log.info("erasure_started", erasure_id=erasure.erasure_id, reason=reason)
        self._wake.set()
        if reason == "minor":
            await self.drive(erasure.erasure_id)
            refreshed = await self.repo.get_erasure(erasure.erasure_id)
            assert refreshed is not None
            return refreshed
        return erasure

    async def get_erasure(self, erasure_id: str) -> ErasureRow:
        erasure = await self.repo.get_erasure(erasure_id)
        if erasure is None:
            raise NotFound("no such erasure", "ERASURE_NOT_FOUND")
        return erasure

    def _holder(self, name: str) -> HolderPort:
        if name == SELF:
            return self.self_holder
        for holder in self.holders:
            if holder.name == name:
                return holder
        raise LookupError(name)

    async def drive(self, erasure_id: str) -> bool:
        """Advance one erasure as far as possible now; True when it is complete."""
        erasure = await self.repo.get_erasure(erasure_id)
        if erasure is None or erasure.status == "completed" or erasure.subject_id is None:
            return True
        subject_id = erasure.subject_id
        now = datetime.now(UTC)
        if now > erasure.deadline and await self.repo.mark_deadline_breached(erasure_id):
            ERASURE_DEADLINE_BREACHES.inc()
            log.error("erasure_deadline_breached", erasure_id=erasure_id, deadline=erasure.deadline.isoformat())
        due = [r for r in erasure.receipts if r.completed_at is None and r.next_attempt_at <= now]
        await asyncio.gather(*(self._erase_at(erasure, r.holder, r.attempts) for r in due))
        erasure = await self.repo.get_erasure(erasure_id)
        assert erasure is not None
        if any(r.completed_at is None for r in erasure.receipts):
            return False
        await self.repo.destroy_key(subject_id)
        leftovers = await self._verify_empty(subject_id)
        if leftovers:
            for holder in leftovers:
                await self.repo.reopen_receipt(erasure_id, holder)
            log.warning("erasure_verify_found_data", erasure_id=erasure_id, holders=sorted(leftovers))
            return False
        body = {
            "erasure_id": erasure.erasure_id,
            "subject_pseudonym": erasure.subject_pseudonym,
            "reason": erasure.reason,
            "requested_at": erasure.requested_at.isoformat(),
            "verified_at": datetime.now(UTC).isoformat(),
            "key_destroyed": True,
            "receipts": [
                {
                    "holder": r.holder,
                    "erased": r.erased or {},
                    "remaining": r.remaining or {},
                    "completed_at": r.completed_at.isoformat() if r.completed_at else None,
                    "attempts": r.attempts,
                }
                for r in erasure.receipts
            ],
        }
        entry_hash = await self.repo.complete_erasure(erasure, body)
        log.info("erasure_completed", erasure_id=erasure_id, ledger_hash=entry_hash)
        return True

    async def _erase_at(self, erasure: ErasureRow, holder_name: str, attempts: int) -> None:
        assert erasure.subject_id is not None
        try:
            holder = self._holder(holder_name)
            erased, remaining = await asyncio.wait_for(
                holder.erase(erasure.subject_id, erasure.erasure_id), self.config.holder_timeout_seconds
            )
        except Exception as exc:
            retry = backoff_seconds(attempts + 1, self.config.retry_base_seconds, self.config.retry_cap_seconds)
            await self.repo.record_failure(erasure.erasure_id, holder_name, describe_error(exc), retry)
            log.warning("erasure_holder_failed", holder=holder_name, error=describe_error(exc), retry_in=retry)
            return
        if any(v for v in remaining.values()):
            await self.repo.record_failure(
                erasure.erasure_id, holder_name, f"remaining after erase: {dict(remaining)}", self.config.retry_base_seconds
            )
            return
        await self.repo.record_receipt(erasure.erasure_id, holder_name, erased, remaining)

    async def _verify_empty(self, subject_id: str) -> set[str]:
        leftovers: set[str] = set()
        for name in self.holder_names:
            try:
                found = dict(await self._holder(name).inventory(subject_id))
            except Exception:
                leftovers.add(name)
                continue
            if name == SELF:
                # The subject row is the erasure's anchor: it goes with the ledger append.
                found.pop("subjects", None)
            if any(found.values()):
                leftovers.add(name)
        return leftovers

    async def run_erasures(self, stop: asyncio.Event | None = None) -> None:
        """Background loop: drives every open erasure until complete; resumes them after a restart."""
        while stop is None or not stop.is_set():
            self._wake.clear()
            try:
                open_ = await self.repo.open_erasures()
                for erasure in open_:
                    await self.drive(erasure.erasure_id)
                pending = await self.repo.open_erasures()
            except Exception as exc:
                log.error("erasure_loop_failed", error=type(exc).__name__, detail=str(exc))
                pending = []
            wait = self.config.erasure_poll_seconds
            if pending:
                soonest = min(
                    (r.next_attempt_at for e in pending for r in e.receipts if r.completed_at is None),
                    default=datetime.now(UTC),
                )
                wait = min(wait, max(0.05, (soonest - datetime.now(UTC)).total_seconds()))
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except TimeoutError:
                pass

    # export ------------------------------------------------------------------------------------
    async def request_export(self, subject_id: str) -> tuple[str, datetime, int]:
        key, key_id = await self.get_data_key(subject_id)
        buffer = io.BytesIO()
        manifest: dict[str, Any] = {"subject_id": subject_id, "created_at": datetime.now(UTC).isoformat(), "holders": {}}
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in self.holder_names:
                items = 0
                try:
                    async for item in self._holder(name).export(subject_id):
                        archive.writestr(f"{name}/{item.name}", item.data)
                        items += 1
                except Exception as exc:
                    log.warning("export_holder_failed", holder=name, error=describe_error(exc))
                    raise Unavailable(f"the {name} service did not answer, so the export would be incomplete; try again") from None
                manifest["holders"][name] = items
            archive.writestr("manifest.json", json.dumps(manifest, indent=2))
        export_id, expires = await self.repo.store_export(
            subject_id, seal(key, buffer.getvalue(), key_id, b"export:" + subject_id.encode()), self.config.export_ttl
        )
        await self.repo.add_access(subject_id, "privacy", f"privacy/export/{export_id}", "export")
        return export_id, expires, len(buffer.getvalue())

    async def download_export(self, export_id: str, subject_id: str) -> bytes:
        key, _ = await self.get_data_key(subject_id)
        sealed = await self.repo.take_export(export_id, subject_id)
        if sealed is None:
            raise NotFound("no such export (exports can be downloaded once and expire after an hour)", "EXPORT_NOT_FOUND")
        return open_sealed(key, sealed, b"export:" + subject_id.encode())

    # records -----------------------------------------------------------------------------------
    async def record_generation(
        self, subject_id: str, interface: str, parameters: Mapping[str, str], status: str, latency_ms: float
    ) -> str:
        if not interface:
            raise InvalidArgument("interface is required")
        safe = {_printable(k)[:64]: _printable(v)[:128] for k, v in list(parameters.items())[:32]}
        return await self.repo.add_generation(
            self.pseudonym(subject_id), _printable(interface)[:64], safe, _printable(status or "ok")[:64], latency_ms
        )

    async def record_security_event(self, subject_id: str, event_type: str, ip: str) -> None:
        try:
            hashed, prefix = ip_hash(self.config.pseudonym_key, ip), ip_prefix(ip)
        except ValueError as exc:
            raise InvalidArgument("ip is not an IP address", "INVALID_IP") from exc
        await self.repo.add_security_event(
            self.pseudonym(subject_id) if subject_id else None, _printable(event_type or "unknown")[:64], hashed, prefix
        )

    async def record_access(self, subject_id: str, actor: str, resource: str, purpose: str) -> str:
        if not (subject_id and actor and resource):
            raise InvalidArgument("subject_id, actor and resource are required")
        return await self.repo.add_access(subject_id, _printable(actor)[:64], _printable(resource)[:256], _printable(purpose)[:64])

    async def verify_ledger(self) -> tuple[bool, int, int, str]:
        erasures, problem = chain.verify(await self.repo.ledger_entries())
        accesses, access_problem = chain.verify(await self.repo.access_entries())
        problem = problem or access_problem
        return not problem, erasures, accesses, problem

    # retention ---------------------------------------------------------------------------------
    async def sweep_all(self) -> dict[str, dict[str, int]]:
        """One retention pass: Sweep every holder with its class cutoffs, then check RetentionStatus."""
        now = datetime.now(UTC)
        cutoffs = {category: now - age for category, age in self.config.retention.items()}
        report: dict[str, dict[str, int]] = {}
        for name in self.holder_names:
            holder = self._holder(name)
            try:
                report[name] = dict(await holder.sweep(cutoffs))
                for row in await holder.retention():
                    SWEEP_LAG.labels(name, row.category).set(row.oldest_age_seconds)
                    if row.max_age_seconds and row.oldest_age_seconds > row.max_age_seconds:
                        RETENTION_BREACHES.labels(name, row.category).inc()
                        log.error(
                            "retention_breach",
                            holder=name,
                            category=row.category,
                            oldest_age_seconds=row.oldest_age_seconds,
                            max_age_seconds=row.max_age_seconds,
                        )
            except Exception as exc:
                log.warning("sweep_failed", holder=name, error=describe_error(exc))
        return report

    async def run_retention(self, interval_seconds: float) -> None:
        # The first pass waits one interval so holders starting alongside are up.
        while True:
            await asyncio.sleep(interval_seconds)
            await self.sweep_all()


def _printable(value: object) -> str:
    """Records keep printable text only (PostgreSQL refuses NUL; control characters garble exports)."""
    return "".join(ch for ch in str(value) if ch.isprintable())


class SelfHolder:
    """Privacy's own data seen through the DataHolder contract."""

    name = SELF

    def __init__(self, service: PrivacyService) -> None:
        self._svc = service

    async def inventory(self, subject_id: str) -> dict[str, int]:
        return await self._svc.repo.inventory(subject_id, self._svc.pseudonym(subject_id))

    async def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        records = await self._svc.repo.export_records(subject_id, self._svc.pseudonym(subject_id))
        yield ExportItem("records", "records.json", "application/json", json.dumps(records, indent=2, default=str).encode())

    async def erase(self, subject_id: str, request_id: str) -> tuple[dict[str, int], dict[str, int]]:
        erased = await self._svc.repo.erase_records(subject_id, self._svc.pseudonym(subject_id))
        remaining = await self.inventory(subject_id)
        # Subject row and key are removed by the orchestrator at the end of the erasure.
        remaining.pop("subjects", None)
        remaining.pop("data_keys", None)
        return erased, remaining

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]:
        return await self._svc.repo.sweep(cutoffs)

    async def retention(self) -> list[Retention]:
        rows = await self._svc.repo.oldest()
        return [
            Retention(category, count, age, self._svc.config.retention[category].total_seconds()) for category, (count, age) in rows.items()
        ]
