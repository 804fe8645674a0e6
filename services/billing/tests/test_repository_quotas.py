"""The repository's generation credits, against PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from psycopg_pool import AsyncConnectionPool

from likeness_billing.adapters.repository import BillingRepository
from likeness_billing.domain.errors import QuotaExceeded

from .repotools import (
    POLICY,
    TODAY,
)


@pytest.mark.asyncio
async def test_free_quota_is_enforced_and_idempotent(repo: BillingRepository, subject: str) -> None:
    results = [await repo.consume_credit(subject, f"r{i}", TODAY, POLICY, unlimited=False) for i in range(3)]
    assert [r.remaining_today for r in results] == [2, 1, 0]

    replay = await repo.consume_credit(subject, "r1", TODAY, POLICY, unlimited=False)
    assert (replay.replayed, replay.used_today) == (True, 3)
    with pytest.raises(QuotaExceeded) as info:
        await repo.consume_credit(subject, "r3", TODAY, POLICY, unlimited=False)
    assert info.value.code == "QUOTA_EXCEEDED"

    tomorrow = await repo.consume_credit(subject, "r3", TODAY + timedelta(days=1), POLICY, unlimited=False)
    assert (tomorrow.replayed, tomorrow.used_today) == (False, 1)
    # A retry after midnight is still the same request: not taken twice.
    again = await repo.consume_credit(subject, "r3", TODAY + timedelta(days=2), POLICY, unlimited=False)
    assert again.replayed and again.day == TODAY + timedelta(days=1)


@pytest.mark.asyncio
async def test_subscriber_usage_does_not_eat_the_free_allowance(repo: BillingRepository, subject: str) -> None:
    for i in range(5):
        r = await repo.consume_credit(subject, f"s{i}", TODAY, POLICY, unlimited=True)
        assert (r.unlimited, r.remaining_today) == (True, None)
    assert await repo.free_credits_used(subject, TODAY) == 0
    assert (await repo.consume_credit(subject, "f0", TODAY, POLICY, unlimited=False)).remaining_today == 2


@pytest.mark.asyncio
async def test_concurrent_requests_cannot_overspend(database_url: str, schema: str, ledger_key: bytes) -> None:
    # Enough connections that the attempts really run side by side in the database.
    async with AsyncConnectionPool(database_url, min_size=10, max_size=10, open=False) as wide:
        await wide.wait()
        repo = BillingRepository(wide, ledger_key=ledger_key, schema=schema)
        for _ in range(5):
            subject = str(uuid.uuid4())

            async def attempt(i: int, subject: str = subject) -> bool:
                try:
                    await repo.consume_credit(subject, f"c{i}", TODAY, POLICY, unlimited=False)
                except QuotaExceeded:
                    return False
                return True

            outcomes = await asyncio.gather(*(attempt(i) for i in range(10)))
            assert outcomes.count(True) == POLICY.free_daily_allowance
            assert await repo.free_credits_used(subject, TODAY) == POLICY.free_daily_allowance


@pytest.mark.asyncio
async def test_released_credit_is_given_back_once(repo: BillingRepository, subject: str) -> None:
    for i in range(3):
        await repo.consume_credit(subject, f"q{i}", TODAY, POLICY, unlimited=False)
    # The work behind q2 failed: its reservation is released and the allowance has room again.
    assert await repo.release_credit(subject, "q2") is True
    assert await repo.release_credit(subject, "q2") is False
    assert await repo.free_credits_used(subject, TODAY) == 2
    assert (await repo.consume_credit(subject, "q3", TODAY, POLICY, unlimited=False)).remaining_today == 0
