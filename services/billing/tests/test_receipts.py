from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from appstoreserverlibrary.models.Environment import Environment

from likeness_billing.adapters.apple_verifier import AppleVerifier
from likeness_billing.adapters.receipts import (
    AppStoreServerApi,
    ReceiptResolver,
    extract_transaction_id,
)
from likeness_billing.domain.errors import (
    InvalidReceipt,
    StoreUnavailable,
    TransactionNotFound,
    VerificationFailed,
    VerificationReason,
)
from likeness_billing.domain.purchases import StoreEnvironment

from .applechain import (
    BUNDLE_ID,
    AppleTestChain,
    build_chain,
    new_transaction_id,
    offline_verifier,
    transaction_payload,
)
from .appstore_api import ApiKey, FakeAppStoreApi, new_api_key, serve
from .legacy_receipt import legacy_receipt

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def api_key() -> ApiKey:
    return new_api_key()


@pytest.fixture
def production(api_key: ApiKey) -> Iterator[FakeAppStoreApi]:
    with serve(FakeAppStoreApi(api_key, BUNDLE_ID)) as api:
        yield api


@pytest.fixture
def sandbox(api_key: ApiKey) -> Iterator[FakeAppStoreApi]:
    with serve(FakeAppStoreApi(api_key, BUNDLE_ID)) as api:
        yield api


@pytest.fixture
def production_verifier(chain: AppleTestChain) -> AppleVerifier:
    return offline_verifier(chain, "Production")


def client(key: ApiKey, base_url: str, environment: Environment) -> AppStoreServerApi:
    return AppStoreServerApi(key.p8, key.key_id, key.issuer_id, BUNDLE_ID, environment, base_url=base_url)


def resolver(verifier: AppleVerifier, key: ApiKey, production: FakeAppStoreApi, sandbox: FakeAppStoreApi) -> ReceiptResolver:
    return ReceiptResolver(
        verifier=verifier,
        apis=[
            client(key, production.base_url, Environment.PRODUCTION),
            client(key, sandbox.base_url, Environment.SANDBOX),
        ],
    )


def test_transaction_id_is_mined_from_the_receipt() -> None:
    receipt = legacy_receipt([("2000000000000123", "2000000000000100")])
    assert extract_transaction_id(receipt) == "2000000000000123"


@pytest.mark.parametrize(
    ("receipt", "message"),
    [
        ("", "1 to"),
        ("%%% not base64 %%%", "well-formed"),
        ("aGVsbG8gd29ybGQ=", "well-formed"),
        (legacy_receipt([]), "no in-app purchase"),
        (legacy_receipt([("../../admin", "1")]), "not an App Store id"),
    ],
)
def test_bad_receipts_are_refused(receipt: str, message: str) -> None:
    with pytest.raises(InvalidReceipt, match=message):
        extract_transaction_id(receipt)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("environment", "asks_sandbox"),
    [("Sandbox", True), ("Production", False)],
    ids=["sandbox-through-the-fallback-api", "production-without-asking-the-sandbox"],
)
async def test_receipt_resolves_in_the_environment_that_holds_it(
    environment: str,
    asks_sandbox: bool,
    chain: AppleTestChain,
    production_verifier: AppleVerifier,
    api_key: ApiKey,
    production: FakeAppStoreApi,
    sandbox: FakeAppStoreApi,
) -> None:
    tid = new_transaction_id()
    holder = sandbox if asks_sandbox else production
    holder.transactions[tid] = chain.sign(transaction_payload(transaction_id=tid, purchase_date=NOW, environment=environment))
    r = resolver(production_verifier, api_key, production, sandbox)
    try:
        t = await r.resolve(legacy_receipt([(tid, tid)]))
    finally:
        await r.aclose()

    lookup = (f"/inApps/v1/transactions/{tid}", True)
    assert t.transaction_id == tid
    assert t.environment is StoreEnvironment(environment)
    # Production is always asked first; the sandbox only when production does not know it.
    assert production.requests == [lookup]
    assert sandbox.requests == ([lookup] if asks_sandbox else [])


@pytest.mark.asyncio
async def test_unknown_transaction_is_not_found(
    production_verifier: AppleVerifier, api_key: ApiKey, production: FakeAppStoreApi, sandbox: FakeAppStoreApi
) -> None:
    r = resolver(production_verifier, api_key, production, sandbox)
    try:
        with pytest.raises(TransactionNotFound):
            await r.resolve(legacy_receipt([(new_transaction_id(), "1")]))
    finally:
        await r.aclose()


@pytest.mark.asyncio
async def test_api_answer_signed_by_an_untrusted_chain_is_refused(
    production_verifier: AppleVerifier, api_key: ApiKey, production: FakeAppStoreApi, sandbox: FakeAppStoreApi
) -> None:
    tid = new_transaction_id()
    production.transactions[tid] = build_chain(name="Impostor").sign(transaction_payload(transaction_id=tid, environment="Production"))
    r = resolver(production_verifier, api_key, production, sandbox)
    try:
        with pytest.raises(VerificationFailed) as info:
            await r.resolve(legacy_receipt([(tid, tid)]))
    finally:
        await r.aclose()
    assert info.value.reason is VerificationReason.UNTRUSTED_CHAIN


@pytest.mark.parametrize(("status", "message"), [(500, "failing"), (429, "rate limiting"), (401, "API key")])
@pytest.mark.asyncio
async def test_api_failures_are_store_unavailable(
    production_verifier: AppleVerifier,
    api_key: ApiKey,
    production: FakeAppStoreApi,
    sandbox: FakeAppStoreApi,
    status: int,
    message: str,
) -> None:
    production.forced_status = status
    r = resolver(production_verifier, api_key, production, sandbox)
    try:
        with pytest.raises(StoreUnavailable, match=message):
            await r.resolve(legacy_receipt([(new_transaction_id(), "1")]))
    finally:
        await r.aclose()


@pytest.mark.asyncio
async def test_wrong_api_key_is_reported_as_an_operator_problem(
    production_verifier: AppleVerifier, production: FakeAppStoreApi, sandbox: FakeAppStoreApi
) -> None:
    r = resolver(production_verifier, new_api_key(), production, sandbox)
    try:
        with pytest.raises(StoreUnavailable, match="API key"):
            await r.resolve(legacy_receipt([(new_transaction_id(), "1")]))
    finally:
        await r.aclose()
    assert production.requests[0][1] is False


@pytest.mark.asyncio
async def test_unreachable_api_is_store_unavailable(production_verifier: AppleVerifier, api_key: ApiKey) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    r = ReceiptResolver(
        verifier=production_verifier,
        apis=[client(api_key, f"http://127.0.0.1:{closed_port}", Environment.PRODUCTION)],
    )
    try:
        with pytest.raises(StoreUnavailable, match="could not be reached"):
            await r.resolve(legacy_receipt([(new_transaction_id(), "1")]))
    finally:
        await r.aclose()


def test_without_override_the_client_targets_apple(api_key: ApiKey) -> None:
    api = AppStoreServerApi(api_key.p8, api_key.key_id, api_key.issuer_id, BUNDLE_ID, Environment.SANDBOX)
    assert api._get_full_url("/x") == "https://api.storekit-sandbox.apple.com/x"
