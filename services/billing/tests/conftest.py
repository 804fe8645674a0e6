from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
import pytest_asyncio
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from likeness_billing.adapters.apple_verifier import AppleVerifier
from likeness_billing.adapters.repository import MIGRATIONS_DIR, BillingRepository
from likeness_platform.db import apply_migrations, open_pool

from .applechain import AppleTestChain, build_chain, offline_verifier


@pytest.fixture(scope="session")
def chain() -> AppleTestChain:
    return build_chain()


@pytest.fixture(scope="session")
def verifier(chain: AppleTestChain) -> AppleVerifier:
    return offline_verifier(chain)


@pytest.fixture(scope="session")
def schema(database_url: str) -> Iterator[str]:
    """A throwaway schema migrated by the platform's runner, dropped when the session ends."""
    name = f"billing_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(apply_migrations(database_url, name, MIGRATIONS_DIR))
    yield name
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def ledger_key() -> bytes:
    return secrets.token_bytes(32)


@pytest_asyncio.fixture
async def pool(database_url: str, schema: str) -> AsyncIterator[AsyncConnectionPool]:
    # Configured as in production: autocommit connections, search_path on the service schema.
    p = await open_pool(database_url, schema, min_size=1, max_size=4)
    try:
        yield p
    finally:
        await p.close()


@pytest_asyncio.fixture
async def repo(pool: AsyncConnectionPool, schema: str, ledger_key: bytes) -> BillingRepository:
    return BillingRepository(pool, ledger_key=ledger_key, schema=schema)


@pytest.fixture
def subject() -> str:
    return str(uuid.uuid4())
