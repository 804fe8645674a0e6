"""Every service's DataHolder built in-process over the test database (no servers), for tests across holders."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from likeness_platform.blobs import LocalBlobStore, SubjectNames
from likeness_platform.crypto import DataKey, DataKeyCache
from likeness_platform.db import open_service_pool
from likeness_platform.db_roles import provision_roles
from likeness_platform.settings import ServiceSettings


class AccessLog(Protocol):
    async def record_access(self, subject_id: str, resource: str, purpose: str) -> None: ...


@asynccontextmanager
async def all_holders(
    database_url: str, blob_dir: Path, key_for: Callable[[str], Awaitable[DataKey]], access: AccessLog
) -> AsyncIterator[list[Any]]:
    """gateway, ingestion, render, faces, billing and privacy holders, in that order; `key_for` gives data keys."""
    import likeness_render
    from likeness_billing.adapters.repository import MIGRATIONS_DIR as BILLING_MIGRATIONS
    from likeness_billing.adapters.repository import BillingRepository
    from likeness_billing.holder import BillingHolder
    from likeness_faces.holder import StatelessHolder
    from likeness_gateway.adapters.accounts import AccountRepository
    from likeness_gateway.adapters.devices import DeviceRepository
    from likeness_gateway.domain.inline_store import InlineImages
    from likeness_gateway.holder import GatewayHolder
    from likeness_gateway.main import MIGRATIONS as GATEWAY_MIGRATIONS
    from likeness_ingestion.adapters.repository import upload_store
    from likeness_ingestion.main import MIGRATIONS as INGESTION_MIGRATIONS
    from likeness_ingestion.service import IngestionConfig, IngestionService
    from likeness_privacy.adapters.repository import APPEND_ONLY as PRIVACY_APPEND_ONLY
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
        # As the services open them: migrated by the owner role, used under the schema's runtime role.
        settings = ServiceSettings(**provision_roles(database_url).settings_for(schema))
        append_only = PRIVACY_APPEND_ONLY if schema == "privacy" else ()
        pools[schema] = await open_service_pool(settings, schema, Path(migrations), append_only=append_only)
    keys = DataKeyCache(key_for)
    blobs = LocalBlobStore(blob_dir)
    config = IngestionConfig()
    names = SubjectNames(os.urandom(32))
    try:
        yield [
            GatewayHolder(DeviceRepository(pools["gateway"]), AccountRepository(pools["gateway"], keys), InlineImages(600)),
            IngestionService(upload_store(pools["ingestion"], blobs, keys, config.longest_ttl, names), access, config),
            RenderHolder(ResultStore(pools["render"], blobs, keys, timedelta(hours=24), names)),
            StatelessHolder(),
            BillingHolder(BillingRepository(pools["billing"], ledger_key=os.urandom(32))),
            SelfHolder(PrivacyRepository(pools["privacy"]), PrivacyConfig(kek=os.urandom(32), pseudonym_key=os.urandom(32))),
        ]
    finally:
        for pool in pools.values():
            await pool.close()
