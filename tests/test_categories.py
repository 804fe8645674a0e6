"""Every DataHolder speaks the one registry of data-category names (likeness_platform.categories)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from likeness_platform.blobs import LocalBlobStore
from likeness_platform.categories import Category, is_registered, unregistered
from likeness_platform.crypto import DataKey, DataKeyCache
from likeness_platform.db import apply_migrations, open_pool


async def _no_key(subject_id: str) -> DataKey:
    raise AssertionError("listing categories needs no data key")


@pytest.fixture
async def holders(database_url: str, tmp_path: Path) -> AsyncIterator[list[Any]]:
    import likeness_render
    from likeness_billing.adapters.repository import MIGRATIONS_DIR as BILLING_MIGRATIONS
    from likeness_billing.adapters.repository import BillingRepository
    from likeness_billing.holder import BillingHolder
    from likeness_faces.holder import StatelessHolder
    from likeness_gateway.adapters.devices import DeviceRepository
    from likeness_gateway.main import MIGRATIONS as GATEWAY_MIGRATIONS
    from likeness_ingestion.adapters.repository import upload_store
    from likeness_ingestion.main import MIGRATIONS as INGESTION_MIGRATIONS
    from likeness_ingestion.service import IngestionConfig, IngestionService
    from likeness_privacy.adapters.repository import PrivacyRepository
    from likeness_privacy.main import MIGRATIONS as PRIVACY_MIGRATIONS
    from likeness_privacy.usecases.ports import PrivacyConfig
    from likeness_privacy.usecases.self_holder import SelfHolder
    from likeness_render.adapters.results import ResultStore
    from likeness_render.holder import RenderHolder

    pools = {}
    for schema, migrations in (
        ("gateway", GATEWAY_MIGRATIONS),
        ("ingestion", INGESTION_MIGRATIONS),
        # render's main imports the MediaPipe models; its migrations sit where main.MIGRATIONS points.
        ("render", Path(likeness_render.__file__).resolve().parents[2] / "migrations"),
        ("billing", BILLING_MIGRATIONS),
        ("privacy", PRIVACY_MIGRATIONS),
    ):
        await apply_migrations(database_url, schema, Path(migrations))
        pools[schema] = await open_pool(database_url, schema)
    keys = DataKeyCache(_no_key)
    blobs = LocalBlobStore(tmp_path / "blobs")
    config = IngestionConfig()

    class NoAccessLog:
        async def record_access(self, subject_id: str, resource: str, purpose: str) -> None:
            raise AssertionError("listing categories reads no upload")

    try:
        yield [
            DeviceRepository(pools["gateway"]),
            IngestionService(upload_store(pools["ingestion"], blobs, keys, config.longest_ttl), NoAccessLog(), config),
            RenderHolder(ResultStore(pools["render"], blobs, keys, timedelta(hours=24))),
            StatelessHolder(),
            BillingHolder(BillingRepository(pools["billing"], ledger_key=os.urandom(32))),
            SelfHolder(PrivacyRepository(pools["privacy"]), PrivacyConfig(kek=os.urandom(32), pseudonym_key=os.urandom(32))),
        ]
    finally:
        for pool in pools.values():
            await pool.close()


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
