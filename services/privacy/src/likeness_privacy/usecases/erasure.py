"""The erasure saga: erase at every holder (retrying the unreachable), verify nothing is left, destroy the key, append the ledger."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import structlog

from likeness_platform.categories import Category
from likeness_platform.errors import NotFound
from likeness_platform.metrics import ERASURE_DEADLINE_BREACHES
from likeness_privacy.adapters.repository import PrivacyRepository
from likeness_privacy.domain import keys
from likeness_privacy.domain.errors import describe_error
from likeness_privacy.domain.records import ErasureRow
from likeness_privacy.domain.retention import backoff_seconds
from likeness_privacy.usecases.checkpoints import Checkpoints
from likeness_privacy.usecases.ports import SELF, Holders, PrivacyConfig

log = structlog.get_logger("likeness.privacy")


class Erasures:
    def __init__(self, repo: PrivacyRepository, holders: Holders, config: PrivacyConfig, checkpoints: Checkpoints | None = None) -> None:
        self._repo = repo
        self._checkpoints = checkpoints
        self._holders = holders
        self._config = config
        self._wake = asyncio.Event()

    async def request(self, subject_id: str, reason: str) -> ErasureRow:
        """Start erasing a subject (or answer with the erasure already running or done)."""
        subject = await self._repo.get_subject(subject_id)
        pseudonym = self._config.pseudonym(subject_id)
        if subject is None:
            # Erasing an erased subject again is a no-op that answers with the erasure that did it.
            previous = await self._repo.latest_erasure_for_pseudonym(pseudonym)
            if previous is None:
                raise NotFound("no such subject", "SUBJECT_NOT_FOUND")
            return previous
        erasure, created = await self._repo.start_erasure(subject_id, pseudonym, reason or "user_request", self._holders.names)
        if created:
            log.info("erasure_started", erasure_id=erasure.erasure_id, reason=reason)
        self._wake.set()
        if reason == "minor":
            await self.drive(erasure.erasure_id)
            refreshed = await self._repo.get_erasure(erasure.erasure_id)
            assert refreshed is not None
            return refreshed
        return erasure

    async def get(self, erasure_id: str) -> ErasureRow:
        erasure = await self._repo.get_erasure(erasure_id)
        if erasure is None:
            raise NotFound("no such erasure", "ERASURE_NOT_FOUND")
        return erasure

    async def drive(self, erasure_id: str) -> bool:
        """Advance one erasure as far as possible now; True when it is complete."""
        erasure = await self._repo.get_erasure(erasure_id)
        if erasure is None or erasure.status == "completed" or erasure.subject_id is None:
            return True
        subject_id = erasure.subject_id
        now = datetime.now(UTC)
        if now > erasure.deadline and await self._repo.mark_deadline_breached(erasure_id):
            ERASURE_DEADLINE_BREACHES.inc()
            log.error("erasure_deadline_breached", erasure_id=erasure_id, deadline=erasure.deadline.isoformat())
        due = [r for r in erasure.receipts if r.completed_at is None and r.next_attempt_at <= now]
        await asyncio.gather(*(self._erase_at(erasure, r.holder, r.attempts) for r in due))
        erasure = await self._repo.get_erasure(erasure_id)
        assert erasure is not None
        if any(r.completed_at is None for r in erasure.receipts):
            return False
        await self._repo.destroy_key(subject_id)
        # What the ledger records is read back, not assumed: the key row and every holder's inventory.
        key_destroyed = await self._repo.get_wrapped_key(subject_id) is None
        leftovers, verified = await self._verify_empty(subject_id)
        if not key_destroyed:
            leftovers.add(SELF)
        if leftovers:
            for holder in leftovers:
                await self._repo.reopen_receipt(erasure_id, holder)
            log.warning("erasure_verify_found_data", erasure_id=erasure_id, holders=sorted(leftovers))
            return False
        reverify = (keys.seal_subject(self._config.kek, erasure_id, subject_id), datetime.now(UTC) + self._config.reverify_after)
        entry_hash = await self._repo.complete_erasure(erasure, _ledger_body(erasure, key_destroyed, verified), reverify)
        log.info("erasure_completed", erasure_id=erasure_id, ledger_hash=entry_hash)
        if self._checkpoints is not None:
            try:
                await self._checkpoints.write()  # anchor the new entry at once, not only at the next periodic checkpoint
            except Exception as exc:
                log.error("ledger_checkpoint_failed", error=type(exc).__name__)
        return True

    async def drive_open(self) -> list[ErasureRow]:
        """Drive every open erasure once, then re-verify the completed ones that are due; the ones still open afterwards."""
        for erasure in await self._repo.open_erasures():
            await self.drive(erasure.erasure_id)
        await self.reverify_due()
        return await self._repo.open_erasures()

    async def reverify_due(self) -> dict[str, dict[str, dict[str, int]]]:
        """Look again at every holder for completed erasures whose grace period is over; erase whatever a late
        write left. {erasure id: {holder: what was found and erased}} for those where something was found."""
        found_any: dict[str, dict[str, dict[str, int]]] = {}
        for erasure_id, sealed, attempts in await self._repo.due_reverifications():
            subject_id = _open_subject(self._config, erasure_id, sealed)
            found: dict[str, dict[str, int]] = {}
            clean = True
            for name in self._holders.names:
                try:
                    holder = self._holders.get(name)
                    counts = {k: v for k, v in (await holder.inventory(subject_id)).items() if v}
                    if counts:
                        found[name] = counts
                        _, remaining = await holder.erase(subject_id, erasure_id)
                        clean = clean and not any(remaining.values())
                except Exception as exc:
                    clean = False
                    log.warning("erasure_reverify_failed", erasure_id=erasure_id, holder=name, error=describe_error(exc))
            if found:
                found_any[erasure_id] = found
                log.error("erasure_reverify_found_data", erasure_id=erasure_id, found=found)
            if clean:
                await self._repo.finish_reverification(erasure_id)
                log.info("erasure_reverified", erasure_id=erasure_id, re_erased=sorted(found))
            else:
                retry = backoff_seconds(attempts + 1, self._config.retry_base_seconds, self._config.retry_cap_seconds)
                await self._repo.postpone_reverification(erasure_id, retry)
        return found_any

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Background loop: drives every open erasure until complete; resumes them after a restart."""
        while stop is None or not stop.is_set():
            self._wake.clear()
            try:
                pending = await self.drive_open()
            except Exception as exc:
                log.error("erasure_loop_failed", error=type(exc).__name__, detail=str(exc))
                pending = []
            wait = self._config.erasure_poll_seconds
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

    async def _erase_at(self, erasure: ErasureRow, holder_name: str, attempts: int) -> None:
        assert erasure.subject_id is not None
        try:
            holder = self._holders.get(holder_name)
            erased, remaining = await asyncio.wait_for(
                holder.erase(erasure.subject_id, erasure.erasure_id), self._config.holder_timeout_seconds
            )
        except Exception as exc:
            retry = backoff_seconds(attempts + 1, self._config.retry_base_seconds, self._config.retry_cap_seconds)
            await self._repo.record_failure(erasure.erasure_id, holder_name, describe_error(exc), retry)
            log.warning("erasure_holder_failed", holder=holder_name, error=describe_error(exc), retry_in=retry)
            return
        if any(v for v in remaining.values()):
            await self._repo.record_failure(
                erasure.erasure_id, holder_name, f"remaining after erase: {dict(remaining)}", self._config.retry_base_seconds
            )
            return
        await self._repo.record_receipt(erasure.erasure_id, holder_name, erased, remaining)

    async def _verify_empty(self, subject_id: str) -> tuple[set[str], dict[str, dict[str, int]]]:
        """(holders still holding something or not answering, what each holder's inventory said)."""
        leftovers: set[str] = set()
        verified: dict[str, dict[str, int]] = {}
        for name in self._holders.names:
            try:
                found = dict(await self._holders.get(name).inventory(subject_id))
            except Exception:
                leftovers.add(name)
                continue
            if name == SELF:
                # The subject row is the erasure's anchor: it goes with the ledger append.
                found.pop(Category.SUBJECTS, None)
            verified[name] = found
            if any(found.values()):
                leftovers.add(name)
        return leftovers, verified


def _open_subject(config: PrivacyConfig, erasure_id: str, sealed: bytes) -> str:
    """The sealed subject id, under the current KEK or (sealed before a rotation) a retired one."""
    for kek in (config.kek, *config.retired_keks.values()):
        try:
            return keys.open_subject(kek, erasure_id, sealed)
        except Exception:
            continue
    raise ValueError("the subject id of this re-verification was sealed under a KEK that is gone")


def _ledger_body(erasure: ErasureRow, key_destroyed: bool, verified: dict[str, dict[str, int]]) -> dict[str, Any]:
    """The ledger entry proving an erasure: who held what, what was erased, what remained (nothing), as read back."""
    return {
        "erasure_id": erasure.erasure_id,
        "subject_pseudonym": erasure.subject_pseudonym,
        "reason": erasure.reason,
        "requested_at": erasure.requested_at.isoformat(),
        "verified_at": datetime.now(UTC).isoformat(),
        "key_destroyed": key_destroyed,
        "verified": verified,
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
