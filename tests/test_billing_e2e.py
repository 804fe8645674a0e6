"""Billing through the public API: purchase -> entitled; quota; erasure then a late notification recreates nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.billing.tests.applechain import APP_APPLE_ID, BUNDLE_ID, build_chain, notification_payload, transaction_payload
from tests.support.services import Started, free_port, start_billing, start_gateway, start_privacy

DEVICE = {"platform": "ios", "model": "iPhone15,2", "os_version": "18.1", "app_version": "2.0.0", "language": "en", "age_confirmed": True}


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[dict]:
    chain = build_chain()
    root = tmp_path / "apple-root.der"
    root.write_bytes(chain.root_der)
    apple = {
        "apple_root_certs": str(root),
        "apple_bundle_id": BUNDLE_ID,
        "apple_app_id": APP_APPLE_ID,
        "apple_environment": "Sandbox",
        "apple_online_checks": False,
    }
    started = Started()
    privacy_port, billing_port = free_port(), free_port()
    gw, client, gateway_grpc = await start_gateway(
        database_url, {"privacy": f"127.0.0.1:{privacy_port}", "billing": f"127.0.0.1:{billing_port}"}, started
    )
    repo, _ = await start_billing(database_url, started, port=billing_port, free_daily_generations=2, **apple)
    privacy, _ = await start_privacy(
        database_url, {"gateway": gateway_grpc, "billing": f"127.0.0.1:{billing_port}"}, started, port=privacy_port
    )
    try:
        yield {"gw": gw, "client": client, "chain": chain, "repo": repo, "privacy": privacy}
    finally:
        await started.close()


async def test_purchase_quota_and_erasure(api: dict) -> None:
    client, chain = api["client"], api["chain"]
    registered = (await client.post("/v1/devices", json=DEVICE)).json()
    auth = {"Authorization": f"Bearer {registered['token']}"}
    # The API does not hand out subject ids; the test reads the device's from the gateway's own store.
    device = await api["gw"].devices.get(registered["device_id"])
    assert device is not None and "subject_id" not in registered
    subject = device.subject_id

    before = (await client.get("/v1/entitlements", headers=auth)).json()
    assert before["subscribed"] is False and before["free_remaining_today"] == 2
    for i in range(2):
        await api["gw"].billing.consume(subject, f"req-{i}", "id_photo")
    await api["gw"].billing.consume(subject, "req-1", "id_photo")  # a retry of the same request takes nothing more
    with pytest.raises(Exception) as info:
        await api["gw"].billing.consume(subject, "req-3", "id_photo")
    assert getattr(info.value, "code", "") == "QUOTA_EXCEEDED" and getattr(info.value, "status", 0) == 402

    now = datetime.now(UTC)
    txn_id = str(uuid.uuid4().int)[:16]
    signed = chain.sign(
        transaction_payload(
            transaction_id=txn_id,
            purchase_date=now - timedelta(minutes=1),
            expires_date=now + timedelta(days=30),
            signed_date=now,
            app_account_token=subject,
        )
    )
    bought = await client.post("/v1/purchases/apple", json={"signed_transaction": signed}, headers=auth)
    assert bought.status_code == 200, bought.text
    assert bought.json()["entitlements"]["subscribed"] is True
    # The contract carries enums; the public JSON keeps Apple's environment text and the lower-case state names.
    assert bought.json()["environment"] == "Sandbox"
    assert [s["state"] for s in bought.json()["entitlements"]["subscriptions"]] == ["active"]
    assert (await client.get("/v1/entitlements", headers=auth)).json()["subscribed"] is True
    await api["gw"].billing.consume(subject, "req-4", "id_photo")  # subscribers are not metered

    tampered = signed[:-6] + ("A" if signed[-6] != "A" else "B") + signed[-5:]
    refused = await client.post("/v1/purchases/apple", json={"signed_transaction": tampered}, headers=auth)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "VERIFICATION_FAILED"

    deleted = (await client.delete("/v1/me", headers=auth)).json()
    await asyncio.wait_for(_completed(api["privacy"], deleted["erasure_id"]), 20)
    assert await api["repo"].inventory(subject) == {k: 0 for k in await api["repo"].inventory(subject)}

    later = notification_payload(
        notification_type="DID_RENEW",
        signed_date=now + timedelta(seconds=5),
        signed_transaction=chain.sign(
            transaction_payload(
                transaction_id=txn_id,
                purchase_date=now,
                expires_date=now + timedelta(days=60),
                signed_date=now + timedelta(seconds=5),
                app_account_token=subject,
            )
        ),
    )
    ack = await client.post("/v1/webhooks/apple", json={"signedPayload": chain.sign(later)})
    assert ack.status_code == 200 and ack.json()["outcome"] == "dropped"
    assert not any((await api["repo"].inventory(subject)).values())
    forged = await client.post("/v1/webhooks/apple", json={"signedPayload": "not.a.jws"})
    assert forged.status_code == 400


async def _completed(privacy, erasure_id: str) -> None:
    while (await privacy.erasures.get(erasure_id)).status != "completed":
        await privacy.erasures.drive(erasure_id)
        await asyncio.sleep(0.05)
