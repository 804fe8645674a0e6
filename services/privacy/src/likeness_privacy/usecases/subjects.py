"""Subjects and their data keys: register (a minor is erased at once), look up, hand out the key while active."""

from __future__ import annotations

import uuid

import structlog

from likeness_platform.errors import FailedPrecondition, InvalidArgument, NotFound, SubjectErasing
from likeness_privacy.adapters.repository import PrivacyRepository
from likeness_privacy.domain import keys
from likeness_privacy.domain.records import ErasureRow, SubjectRow
from likeness_privacy.usecases.erasure import Erasures
from likeness_privacy.usecases.ports import PrivacyConfig

log = structlog.get_logger("likeness.privacy")


class Subjects:
    def __init__(self, repo: PrivacyRepository, config: PrivacyConfig, erasures: Erasures) -> None:
        self._repo = repo
        self._config = config
        self._erasures = erasures

    async def register(self, kind: str, minor: bool) -> tuple[SubjectRow, ErasureRow | None]:
        if kind not in ("device", "account"):
            raise InvalidArgument("kind must be device or account", "INVALID_SUBJECT_KIND")
        key_id = uuid.uuid4().hex
        data_key = keys.new_data_key()
        subject = await self._repo.create_subject(
            kind, minor, key_id, lambda sid: keys.wrap(self._config.kek, sid, data_key), self._config.kek_id
        )
        erasure = None
        if minor:
            # Invariant 6: a subject under 13 is erased at once, nothing is kept.
            erasure = await self._erasures.request(subject.subject_id, "minor")
        return subject, erasure

    async def get(self, subject_id: str) -> SubjectRow:
        subject = await self._repo.get_subject(subject_id)
        if subject is None:
            raise NotFound("no such subject", "SUBJECT_NOT_FOUND")
        return subject

    async def data_key(self, subject_id: str) -> tuple[bytes, str]:
        """(key, key id) of an active subject; refused once its erasure has started."""
        subject = await self.get(subject_id)
        if subject.state != "active":
            raise SubjectErasing("the subject is being erased; no new data may be written for it")
        wrapped = await self._repo.get_wrapped_key(subject_id)
        if wrapped is None:
            raise FailedPrecondition("the subject's data key no longer exists", "KEY_DESTROYED")
        key_id, blob, kek_id = wrapped
        kek = self._config.kek_for(kek_id)
        if kek is None:
            raise FailedPrecondition("the key-encryption key that wrapped this data key has been destroyed", "KEK_DESTROYED")
        return keys.unwrap(kek, subject_id, blob), key_id

    async def rewrap(self) -> int:
        """Move every data key under a retired KEK to the current one; how many moved."""
        config = self._config

        def rewrap_one(subject_id: str, kek_id: str, wrapped: bytes) -> bytes | None:
            old = config.kek_for(kek_id)
            if old is None:
                return None
            try:
                return keys.wrap(config.kek, subject_id, keys.unwrap(old, subject_id, wrapped))
            except Exception:
                log.error("rewrap_unwrap_failed", kek_id=kek_id)  # left as it is, never lost
                return None

        total = 0
        while moved := await self._repo.rewrap(config.kek_id, rewrap_one):
            total += moved
        return total
