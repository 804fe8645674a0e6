"""The erasure saga's state transitions, with in-memory holders and an in-memory repository (no servers)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from likeness_platform.dataholder import ExportItem, Retention
from likeness_platform.errors import NotFound
from likeness_platform.metrics import ERASURE_DEADLINE_BREACHES
from likeness_privacy.domain import chain
from likeness_privacy.domain.records import ErasureRow, ReceiptRow, SubjectRow
from likeness_privacy.usecases.erasure import Erasures
from likeness_privacy.usecases.ports import SELF, Holders, PrivacyConfig

CONFIG = PrivacyConfig(kek=b"k" * 32, pseudonym_key=b"p" * 32, retry_base_seconds=0.5, retry_cap_seconds=4.0)
SUBJECT = "7f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"


class Holder:
    """A holder of `items` per subject; can be made unreachable or to keep data it claims to have erased."""

    def __init__(self, name: str, items: int = 2) -> None:
        self.name = name
        self.data: dict[str, int] = {SUBJECT: items}
        self.down = False
        self.keeps = 0  # items the next erase leaves behind
        self.erase_calls = 0

    async def inventory(self, subject_id: str) -> dict[str, int]:
        if self.down:
            raise ConnectionError("down")
        return {"items": self.data.get(subject_id, 0)}

    async def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        yield ExportItem("items", "items.json", "application/json", b"[]")

    async def erase(self, subject_id: str, request_id: str) -> tuple[dict[str, int], dict[str, int]]:
        self.erase_calls += 1
        if self.down:
            raise ConnectionError("down")
        erased = self.data.get(subject_id, 0) - self.keeps
        self.data[subject_id] = self.keeps
        return {"items": erased}, {"items": self.keeps}

    async def sweep(self, cutoffs: Mapping[str, datetime]) -> dict[str, int]:
        return {}

    async def retention(self) -> list[Retention]:
        return []


class Repo:
    """The part of PrivacyRepository the saga uses, in memory."""

    def __init__(self) -> None:
        self.subjects: dict[str, SubjectRow] = {SUBJECT: SubjectRow(SUBJECT, "device", "active", False, datetime.now(UTC))}
        self.keys: set[str] = {SUBJECT}
        self.erasures: dict[str, ErasureRow] = {}
        self.ledger: list[chain.ChainEntry] = []

    async def get_subject(self, subject_id: str) -> SubjectRow | None:
        return self.subjects.get(subject_id)

    async def start_erasure(self, subject_id: str, pseudonym: str, reason: str, holders: list[str]) -> tuple[ErasureRow, bool]:
        for e in self.erasures.values():
            if e.subject_id == subject_id and e.status == "in_progress":
                return copy.deepcopy(e), False
        self.subjects[subject_id] = replace(self.subjects[subject_id], state="erasing")
        now = datetime.now(UTC)
        receipts = [ReceiptRow(h, None, None, None, 0, "", now) for h in sorted(holders)]
        row = ErasureRow(
            f"e{len(self.erasures)}",
            subject_id,
            pseudonym,
            reason,
            "in_progress",
            now,
            now + timedelta(hours=24),
            None,
            None,
            False,
            receipts,
        )
        self.erasures[row.erasure_id] = row
        return copy.deepcopy(row), True

    async def latest_erasure_for_pseudonym(self, pseudonym: str) -> ErasureRow | None:
        found = [e for e in self.erasures.values() if e.subject_pseudonym == pseudonym]
        return copy.deepcopy(found[-1]) if found else None

    async def get_erasure(self, erasure_id: str) -> ErasureRow | None:
        return copy.deepcopy(self.erasures.get(erasure_id))

    async def open_erasures(self) -> list[ErasureRow]:
        return [copy.deepcopy(e) for e in self.erasures.values() if e.status == "in_progress"]

    def _receipt(self, erasure_id: str, holder: str) -> ReceiptRow:
        return next(r for r in self.erasures[erasure_id].receipts if r.holder == holder)

    async def record_receipt(self, erasure_id: str, holder: str, erased: Mapping[str, int], remaining: Mapping[str, int]) -> None:
        r = self._receipt(erasure_id, holder)
        r.erased, r.remaining, r.completed_at, r.attempts, r.last_error = (
            dict(erased),
            dict(remaining),
            datetime.now(UTC),
            r.attempts + 1,
            "",
        )

    async def record_failure(self, erasure_id: str, holder: str, error: str, retry_in: float) -> None:
        r = self._receipt(erasure_id, holder)
        r.attempts, r.last_error, r.next_attempt_at = r.attempts + 1, error, datetime.now(UTC) + timedelta(seconds=retry_in)

    async def reopen_receipt(self, erasure_id: str, holder: str) -> None:
        r = self._receipt(erasure_id, holder)
        r.completed_at, r.next_attempt_at = None, datetime.now(UTC)

    async def mark_deadline_breached(self, erasure_id: str) -> bool:
        e = self.erasures[erasure_id]
        was, e.deadline_breached = e.deadline_breached, True
        return not was

    async def get_wrapped_key(self, subject_id: str) -> tuple[str, bytes] | None:
        return ("key-id", b"wrapped") if subject_id in self.keys else None

    async def destroy_key(self, subject_id: str) -> int:
        had = subject_id in self.keys
        self.keys.discard(subject_id)
        return int(had)

    async def due_reverifications(self) -> list[tuple[str, bytes, int]]:
        return []

    async def complete_erasure(self, erasure: ErasureRow, body: dict[str, Any], reverify: Any = None) -> str:
        prev = self.ledger[-1].hash if self.ledger else chain.GENESIS
        entry_hash = chain.link(prev, body)
        self.ledger.append(chain.ChainEntry(len(self.ledger) + 1, body, prev, entry_hash))
        e = self.erasures[erasure.erasure_id]
        e.status, e.completed_at, e.ledger_hash, e.subject_id = "completed", datetime.now(UTC), entry_hash, None
        self.subjects.pop(erasure.subject_id or "", None)
        return entry_hash


class Own(Holder):
    """Privacy's own records; the subject row stays until the ledger entry is written."""

    async def inventory(self, subject_id: str) -> dict[str, int]:
        return {**await super().inventory(subject_id), "subjects": 1}


@pytest.fixture
def saga() -> tuple[Erasures, Repo, Holder, Holder]:
    repo, ingestion = Repo(), Holder("ingestion")
    own = Own(SELF, items=1)
    return Erasures(repo, Holders(own, [ingestion]), CONFIG), repo, own, ingestion  # type: ignore[arg-type]


async def test_a_reachable_world_is_erased_in_one_pass_and_proven_in_the_ledger(saga) -> None:
    erasures, repo, own, ingestion = saga
    started = await erasures.request(SUBJECT, "user_request")
    assert started.status == "in_progress" and repo.subjects[SUBJECT].state == "erasing"
    assert {r.holder for r in started.receipts} == {"privacy", "ingestion"}

    assert await erasures.drive(started.erasure_id) is True
    done = await erasures.get(started.erasure_id)
    assert done.status == "completed" and done.subject_id is None and done.ledger_hash == repo.ledger[-1].hash
    assert SUBJECT not in repo.keys and SUBJECT not in repo.subjects
    assert ingestion.data[SUBJECT] == 0 and own.data[SUBJECT] == 0
    body = repo.ledger[-1].body
    assert body["key_destroyed"] is True and body["subject_pseudonym"] == CONFIG.pseudonym(SUBJECT)
    assert SUBJECT not in str(body)  # the ledger names the subject only by its pseudonym
    # What was verified is what the holders' inventories said afterwards, read back, not constants.
    assert body["verified"] == {"ingestion": {"items": 0}, "privacy": {"items": 0}}
    assert {r["holder"]: r["erased"] for r in body["receipts"]} == {"ingestion": {"items": 2}, "privacy": {"items": 1}}
    assert chain.verify(repo.ledger) == (1, "")


async def test_an_unreachable_holder_keeps_the_key_and_is_retried_with_backoff(saga) -> None:
    erasures, repo, _, ingestion = saga
    ingestion.down = True
    erasure = await erasures.request(SUBJECT, "user_request")
    assert await erasures.drive(erasure.erasure_id) is False
    pending = await erasures.get(erasure.erasure_id)
    failed = next(r for r in pending.receipts if r.holder == "ingestion")
    assert failed.completed_at is None and failed.attempts == 1 and failed.last_error == "ConnectionError"
    assert failed.next_attempt_at - datetime.now(UTC) > timedelta(seconds=0.3)  # the base backoff, 0.5 s
    assert SUBJECT in repo.keys and not repo.ledger

    # Not due yet: another pass does not call the holder again.
    calls = ingestion.erase_calls
    assert await erasures.drive(erasure.erasure_id) is False
    assert ingestion.erase_calls == calls

    ingestion.down = False
    repo._receipt(erasure.erasure_id, "ingestion").next_attempt_at = datetime.now(UTC)  # the backoff has passed
    assert await erasures.drive(erasure.erasure_id) is True
    assert (await erasures.get(erasure.erasure_id)).status == "completed" and SUBJECT not in repo.keys


async def test_a_holder_that_leaves_data_behind_is_not_counted_done(saga) -> None:
    erasures, repo, _, ingestion = saga
    ingestion.keeps = 1
    erasure = await erasures.request(SUBJECT, "user_request")
    assert await erasures.drive(erasure.erasure_id) is False
    receipt = next(r for r in (await erasures.get(erasure.erasure_id)).receipts if r.holder == "ingestion")
    assert receipt.completed_at is None and "remaining after erase" in receipt.last_error
    assert SUBJECT in repo.keys and not repo.ledger


async def test_data_that_reappears_before_verification_reopens_that_holder(saga) -> None:
    erasures, repo, _, ingestion = saga
    erasure = await erasures.request(SUBJECT, "user_request")

    real_erase = ingestion.erase

    async def erase_then_a_late_write(subject_id: str, request_id: str) -> tuple[dict[str, int], dict[str, int]]:
        result = await real_erase(subject_id, request_id)
        ingestion.data[subject_id] = 1  # a write that raced the erasure
        return result

    ingestion.erase = erase_then_a_late_write  # type: ignore[method-assign]
    assert await erasures.drive(erasure.erasure_id) is False
    reopened = next(r for r in (await erasures.get(erasure.erasure_id)).receipts if r.holder == "ingestion")
    assert reopened.completed_at is None and not repo.ledger

    ingestion.erase = real_erase  # type: ignore[method-assign]
    assert await erasures.drive(erasure.erasure_id) is True
    assert ingestion.data[SUBJECT] == 0 and len(repo.ledger) == 1


async def test_requests_while_running_and_after_completion_answer_with_the_same_erasure(saga) -> None:
    erasures, _, _, ingestion = saga
    ingestion.down = True
    first = await erasures.request(SUBJECT, "user_request")
    assert (await erasures.request(SUBJECT, "user_request")).erasure_id == first.erasure_id
    ingestion.down = False
    for r in (await erasures.get(first.erasure_id)).receipts:
        saga[1]._receipt(first.erasure_id, r.holder).next_attempt_at = datetime.now(UTC)
    assert await erasures.drive(first.erasure_id) is True
    again = await erasures.request(SUBJECT, "user_request")
    assert again.erasure_id == first.erasure_id and again.status == "completed"
    calls = ingestion.erase_calls
    assert await erasures.drive_open() == []
    assert ingestion.erase_calls == calls


async def test_unknown_subjects_and_erasures_are_not_found(saga) -> None:
    erasures = saga[0]
    with pytest.raises(NotFound):
        await erasures.request("00000000-0000-0000-0000-000000000000", "user_request")
    with pytest.raises(NotFound):
        await erasures.get("no-such-erasure")


async def test_a_missed_deadline_is_marked_once(saga) -> None:
    erasures, repo, _, ingestion = saga
    ingestion.down = True
    erasure = await erasures.request(SUBJECT, "user_request")
    repo.erasures[erasure.erasure_id].deadline = datetime.now(UTC) - timedelta(seconds=1)
    before = ERASURE_DEADLINE_BREACHES._value.get()
    await erasures.drive(erasure.erasure_id)
    await erasures.drive(erasure.erasure_id)
    assert repo.erasures[erasure.erasure_id].deadline_breached
    assert ERASURE_DEADLINE_BREACHES._value.get() == before + 1  # one alarm, not one per pass


async def test_a_minor_is_erased_before_the_request_returns(saga) -> None:
    erasures, repo, _, _ = saga
    erasure = await erasures.request(SUBJECT, "minor")
    assert erasure.status == "completed" and erasure.reason == "minor" and SUBJECT not in repo.keys


async def test_a_key_that_is_still_there_after_destroying_it_keeps_the_erasure_open(saga, monkeypatch) -> None:
    erasures, repo, _own, _ingestion = saga
    started = await erasures.request(SUBJECT, "user_request")

    async def destroy_nothing(subject_id: str) -> int:
        return 1  # claims success, but the key row is still there

    monkeypatch.setattr(repo, "destroy_key", destroy_nothing)
    assert await erasures.drive(started.erasure_id) is False
    assert (await erasures.get(started.erasure_id)).status == "in_progress" and not repo.ledger
