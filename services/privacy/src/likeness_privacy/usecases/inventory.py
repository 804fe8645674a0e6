"""What operators (support) may see about one subject: its state and every holder's counts, never content.

The look is a read of the subject's data, so it goes in the access log first, naming the operator (and the
admin API it came through) and the purpose given; a look that cannot be logged does not happen.
"""

from __future__ import annotations

import asyncio

from likeness_platform.errors import InvalidArgument
from likeness_privacy.domain.errors import HolderCallFailed
from likeness_privacy.domain.records import SubjectRow
from likeness_privacy.usecases.ports import Holders
from likeness_privacy.usecases.records import Records
from likeness_privacy.usecases.subjects import Subjects


class SubjectInventory:
    def __init__(self, subjects: Subjects, holders: Holders, records: Records) -> None:
        self._subjects = subjects
        self._holders = holders
        self._records = records

    async def look(self, subject_id: str, actor: str, purpose: str) -> tuple[SubjectRow, list[tuple[str, dict[str, int], str]]]:
        """(subject, [(holder, counts per category, error)]) after the access is logged."""
        if not purpose.strip():
            raise InvalidArgument("say why you look (purpose): it goes in the access log", "PURPOSE_REQUIRED")
        subject = await self._subjects.get(subject_id)
        if subject.state == "active":
            # Only an active subject has an access log to write to; an erasing or erased one holds nothing to read.
            await self._records.access(subject_id, actor, "privacy/inventory", purpose)
        names = self._holders.names

        async def one(name: str) -> tuple[str, dict[str, int], str]:
            try:
                return name, await self._holders.get(name).inventory(subject_id), ""
            except HolderCallFailed as exc:
                return name, {}, exc.message

        return subject, list(await asyncio.gather(*(one(n) for n in names)))
