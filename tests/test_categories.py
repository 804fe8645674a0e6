"""Every DataHolder speaks the one registry of data-category names (likeness_platform.categories)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from likeness_platform.categories import Category, is_registered, unregistered
from likeness_platform.crypto import DataKey
from tests.support.holders import all_holders


async def _no_key(subject_id: str) -> DataKey:
    raise AssertionError("listing categories needs no data key")


class _NoAccessLog:
    async def record_access(self, subject_id: str, resource: str, purpose: str) -> None:
        raise AssertionError("listing categories reads no upload")


@pytest.fixture
async def holders(database_url: str, tmp_path: Path) -> AsyncIterator[list[Any]]:
    async with all_holders(database_url, tmp_path / "blobs", _no_key, _NoAccessLog()) as found:
        yield found


async def test_every_holder_reports_only_registered_categories(holders: list[Any]) -> None:
    assert {h.name for h in holders} == {"gateway", "ingestion", "render", "faces", "billing", "privacy"}
    subject = str(uuid.uuid4())
    for holder in holders:
        inventory = await holder.inventory(subject)
        assert inventory, holder.name
        assert not unregistered(inventory), (holder.name, inventory)
        assert all(count == 0 for count in inventory.values()), (holder.name, inventory)
        exported = [item.category async for item in holder.export(subject)]
        assert not unregistered(exported), (holder.name, exported)
        erased, remaining = await holder.erase(subject, "categories-test")
        assert not unregistered(erased) and not unregistered(remaining), holder.name
        assert not unregistered(await holder.sweep({})), holder.name
        assert not unregistered(r.category for r in await holder.retention()), holder.name


def test_privacy_keeps_retention_periods_for_registered_categories_only() -> None:
    from likeness_privacy.domain.retention import RETENTION

    assert not unregistered(RETENTION)


def test_the_registry_tells_names_apart() -> None:
    assert is_registered("uploads") and is_registered(Category.ORPHAN_BLOBS)
    assert not is_registered("upload") and not is_registered("")
    assert unregistered(["uploads", "notes"]) == {"notes"}
    assert len({c.value for c in Category}) == len(Category)  # no two members share a name
