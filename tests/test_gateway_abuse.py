"""The public API tried as a hostile client would (issue #15): replayed idempotency keys, oversize outputs,
chunked and slow bodies, slow headers, bad request ids, registration floods, token lifetime, erase retries,
loose consent values, headers. Real gateway, privacy, ingestion and billing; render is a counting stand-in."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from likeness.render.v1 import render_pb2
from likeness_gateway.app import create_app
from likeness_gateway.domain.tokens import token_hash
from likeness_gateway.errors import ApiError
from likeness_gateway.guards import uvicorn_config
from likeness_privacy.usecases import PrivacyUseCases
from tests.support.appattest import APP_ID, new_chain
from tests.support.services import Started, free_port, start_billing, start_gateway, start_ingestion, start_privacy

DEVICE = {
    "platform": "ios",
    "model": "iPhone15,2",
    "os_version": "18.1",
    "app_version": "2.0.0",
    "language": "en-GB",
    "age_confirmed": True,
}
PHOTO = {"upload_id": "u-1", "spec_id": "us-passport"}


class FakeRender:
    """Stands in for render: counts calls, answers a fixed stored result, or fails / waits when told."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail: ApiError | None = None
        self.gate: asyncio.Event | None = None

    async def _work(self) -> None:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail

    async def create_id_photo(self, request: render_pb2.CreateIdPhotoRequest) -> render_pb2.CreateIdPhotoResponse:
        await self._work()
        photo = render_pb2.ResultInfo(
            result_id=f"r{self.calls}", content_type="image/jpeg", width=600, height=600, size_bytes=1000, dpi=300, persisted=True
        )
        photo.expires_at.FromDatetime(datetime(2030, 1, 1))
        return render_pb2.CreateIdPhotoResponse(photo=photo, report=render_pb2.ComplianceReport(passed=True, spec_id=request.spec_id))

    async def create_portrait(self, request: Any) -> render_pb2.ResultInfo:
        await self._work()
        return render_pb2.ResultInfo(result_id=f"p{self.calls}", persisted=True)

    async def check_id_photo(self, request: Any) -> render_pb2.ComplianceReport:
        await self._work()
        return render_pb2.ComplianceReport(passed=True, spec_id=request.spec_id)


async def _mesh(database_url: str, tmp_path: Path) -> tuple[Started, Any, httpx.AsyncClient, PrivacyUseCases, Any, FakeRender]:
    started = Started()
    privacy_port, ingestion_port, billing_port = free_port(), free_port(), free_port()
    gw, client, gateway_grpc = await start_gateway(
        database_url,
        {"privacy": f"127.0.0.1:{privacy_port}", "ingestion": f"127.0.0.1:{ingestion_port}", "billing": f"127.0.0.1:{billing_port}"},
        started,
    )
    privacy, _ = await start_privacy(
        database_url, {"gateway": gateway_grpc, "ingestion": f"127.0.0.1:{ingestion_port}"}, started, port=privacy_port
    )
    await start_ingestion(database_url, f"127.0.0.1:{privacy_port}", tmp_path / "blobs", started, port=ingestion_port)
    billing, _ = await start_billing(database_url, started, port=billing_port, free_daily_generations=3)
    render = FakeRender()
    gw.render = render
    return started, gw, client, privacy, billing, render


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Any, httpx.AsyncClient, PrivacyUseCases, Any, FakeRender]]:
    started, gw, client, privacy, billing, render = await _mesh(database_url, tmp_path)
    try:
        yield gw, client, privacy, billing, render
    finally:
        await started.close()


async def _register(client: httpx.AsyncClient, **headers: str) -> dict[str, Any]:
    reply = await client.post("/v1/devices", json=DEVICE, headers=headers)
    assert reply.status_code == 201, reply.text
    return reply.json()


def _auth(registered: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {registered['token']}"}


async def _subject(gw: Any, registered: dict[str, Any]) -> str:
    """The device's subject, read from the gateway (the API never shows it)."""
    device = await gw.devices.by_token_hash(token_hash(registered["token"]))
    return str(device.subject_id)


async def test_idempotency_key_replays_the_response_and_never_runs_or_charges_twice(api) -> None:
    gw, client, _, billing, render = api
    device = await _register(client)
    auth = _auth(device)
    subject = await _subject(gw, device)
    used = lambda: billing.free_credits_used(subject, datetime.now(UTC).date())  # noqa: E731

    first = await client.post("/v1/id-photos", json=PHOTO, headers={**auth, "Idempotency-Key": "k-1"})
    assert first.status_code == 201, first.text
    for _ in range(2):
        replay = await client.post("/v1/id-photos", json=PHOTO, headers={**auth, "Idempotency-Key": "k-1"})
        assert (replay.status_code, replay.json(), replay.headers["idempotent-replayed"]) == (201, first.json(), "true")
    assert render.calls == 1 and await used() == 1

    # The same key for another body or another interface is refused, and runs nothing.
    other_body = await client.post("/v1/id-photos", json={**PHOTO, "spec_id": "gb-passport"}, headers={**auth, "Idempotency-Key": "k-1"})
    other_kind = await client.post(
        "/v1/portraits", json={"upload_id": "u-1", "template_id": "t"}, headers={**auth, "Idempotency-Key": "k-1"}
    )
    for refused in (other_body, other_kind):
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert render.calls == 1 and await used() == 1

    # A failed generation (upload not found) costs nothing, and its key can be retried.
    render.fail = ApiError(404, "UPLOAD_NOT_FOUND", "no such upload")
    failed = await client.post("/v1/id-photos", json=PHOTO, headers={**auth, "Idempotency-Key": "k-2"})
    assert failed.status_code == 404 and await used() == 1
    render.fail = None
    retried = await client.post("/v1/id-photos", json=PHOTO, headers={**auth, "Idempotency-Key": "k-2"})
    assert retried.status_code == 201 and retried.json()["id"] != first.json()["id"] and await used() == 2

    # Keys last 24 hours: an older one is a new request (and takes the last free credit).
    async with gw.devices.pool.connection() as conn:
        await conn.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'k-1'")
    aged = await client.post("/v1/id-photos", json=PHOTO, headers={**auth, "Idempotency-Key": "k-1"})
    assert aged.status_code == 201 and "idempotent-replayed" not in aged.headers and await used() == 3
    # No credits left: a new key is refused, a replay of a stored response still answers.
    spent = await client.post("/v1/id-photos", json=PHOTO, headers={**auth, "Idempotency-Key": "k-3"})
    assert spent.status_code == 402 and spent.json()["error"]["code"] == "QUOTA_EXCEEDED"
    assert (await client.post("/v1/id-photos", json=PHOTO, headers={**auth, "Idempotency-Key": "k-2"})).json() == retried.json()

    # Checks make no photo and are free, even with no credits left.
    calls = render.calls
    for _ in range(2):
        check = await client.post("/v1/id-photos/check", json=PHOTO, headers=auth)
        assert check.status_code == 200 and check.json()["passed"] is True
    assert render.calls == calls + 2 and await used() == 3
    bad_key = await client.post("/v1/id-photos", json=PHOTO, headers={**auth, "Idempotency-Key": "ключ".encode()})
    assert bad_key.status_code == 400 and bad_key.json()["error"]["code"] == "INVALID_IDEMPOTENCY_KEY"


async def test_generations_per_device_are_bounded(api) -> None:
    gw, client, _, _, render = api
    auth = _auth(await _register(client))
    render.gate = asyncio.Event()
    slow = {**auth, "Idempotency-Key": "slow"}
    running = [
        asyncio.create_task(client.post("/v1/id-photos/check", json=PHOTO, headers=auth)),
        asyncio.create_task(client.post("/v1/id-photos", json=PHOTO, headers=slow)),
    ]
    while render.calls < 2:
        await asyncio.sleep(0.01)
    third = await client.post("/v1/id-photos/check", json=PHOTO, headers=auth)
    assert third.status_code == 429 and third.json()["error"]["code"] == "TOO_MANY_GENERATIONS" and third.headers["retry-after"]
    # A replay while the first call with its key still runs is told so, and runs nothing.
    early = await client.post("/v1/id-photos", json=PHOTO, headers=slow)
    assert early.status_code == 409 and early.json()["error"]["code"] == "IDEMPOTENCY_KEY_IN_USE"
    render.gate.set()
    assert [(await t).status_code for t in running] == [200, 201]
    assert render.calls == 2
    assert gw.running == {}


async def test_oversize_print_sheet_is_refused_before_any_work(api) -> None:
    gw, client, _, billing, render = api
    device = await _register(client)
    for width, dpi in ((250, 1200), (1000, 1200)):
        layout = {"width_mm": width, "height_mm": width, "dpi": dpi}
        reply = await client.post("/v1/id-photos", json={**PHOTO, "layout": layout}, headers=_auth(device))
        assert reply.status_code == 400 and reply.json()["error"]["code"] == "OUTPUT_TOO_LARGE"
        assert reply.json()["error"]["details"]["limit"] == 50_000_000
    assert render.calls == 0 and await billing.free_credits_used(await _subject(gw, device), datetime.now(UTC).date()) == 0
    fits = await client.post(
        "/v1/id-photos", json={**PHOTO, "layout": {"width_mm": 250, "height_mm": 250, "dpi": 600}}, headers=_auth(device)
    )
    assert fits.status_code == 201, fits.text


async def test_chunked_bodies_are_capped_while_they_stream(api) -> None:
    gw, client, _, _, _ = api
    gw.settings.max_body_bytes = 64 * 1024
    sent = 0

    async def chunks(total: int) -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"platform": "ios", "model": "'
        for _ in range(total // 8192):
            sent += 8192
            yield b"x" * 8192
        yield b'"}'

    # No Content-Length: the old check never fired and the whole body was read and parsed.
    reply = await client.post("/v1/devices", content=chunks(27 * 1024 * 1024), headers={"Content-Type": "application/json"})
    assert "content-length" not in reply.request.headers
    assert reply.status_code == 413 and reply.json()["error"]["code"] == "TOO_LARGE", reply.text
    assert sent <= 128 * 1024, "the body was read after the cap was passed"
    auth = _auth(await _register(client))
    boundary = b"zz"
    head = b'--zz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'

    async def multipart() -> AsyncIterator[bytes]:
        yield head
        for _ in range(200):
            yield b"\xff" * 8192
        yield b"\r\n--zz--\r\n"

    upload = await client.post(
        "/v1/uploads", content=multipart(), headers={**auth, "Content-Type": f"multipart/form-data; boundary={boundary.decode()}"}
    )
    assert upload.status_code == 413 and upload.json()["error"]["code"] == "TOO_LARGE"
    # A lying Content-Length is no way round it either.
    lying = await client.post(
        "/v1/uploads", content=b"\xff" * (128 * 1024), headers={**auth, "Content-Type": "image/jpeg", "Content-Length": "10"}
    )
    assert lying.status_code in (400, 413)


async def test_request_ids_are_checked(api) -> None:
    _, client, _, _, _ = api
    ok = await client.get("/healthz", headers={"X-Request-Id": "abc.DEF_123-x"})
    assert ok.headers["x-request-id"] == "abc.DEF_123-x"
    for bad in ("é".encode("latin-1"), b"x" * 20_000, b"a b", b""):
        reply = await client.post("/v1/devices", json=DEVICE, headers={"X-Request-Id": bad})
        assert reply.status_code == 201, reply.text
        assert re.fullmatch(r"[0-9a-f]{32}", reply.headers["x-request-id"])


async def test_registration_is_throttled_per_network_prefix_and_globally(api) -> None:
    gw, client, _, _, _ = api
    gw.settings.trusted_proxies = 1
    gw.settings.registrations_per_prefix_per_hour = 2
    for ip in ("203.0.113.5", "203.0.113.77"):
        await _register(client, **{"X-Forwarded-For": ip})
    refused = await client.post("/v1/devices", json=DEVICE, headers={"X-Forwarded-For": "203.0.113.200"})
    assert refused.status_code == 429 and refused.json()["error"]["details"] == {"scope": "registration_network"}
    assert 1 <= int(refused.headers["retry-after"]) <= 3600
    await _register(client, **{"X-Forwarded-For": "198.51.100.1"})
    for ip in ("2001:db8:0:1::1", "2001:db8:0:1:ffff::2"):
        await _register(client, **{"X-Forwarded-For": ip})
    assert (await client.post("/v1/devices", json=DEVICE, headers={"X-Forwarded-For": "2001:db8:0:1::9"})).status_code == 429
    await _register(client, **{"X-Forwarded-For": "2001:db8:0:2::1"})

    gw.settings.registrations_per_minute = 0
    flood = await client.post("/v1/devices", json=DEVICE, headers={"X-Forwarded-For": "192.0.2.1"})
    assert flood.status_code == 429 and flood.json()["error"]["details"] == {"scope": "registration_global"}


async def test_tokens_expire_rotate_and_revoke(api) -> None:
    gw, client, _, _, _ = api
    device = await _register(client)
    registered_at = datetime.now(UTC)
    expires = datetime.fromisoformat(device["expires_at"])
    assert timedelta(days=89) < expires - registered_at <= timedelta(days=90)

    rotated = await client.post("/v1/devices/token:rotate", headers=_auth(device))
    assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
    assert (await client.get("/v1/me/export", headers=_auth(device))).status_code == 401
    new = {"Authorization": f"Bearer {rotated.json()['token']}"}
    assert (await client.get("/v1/me/export", headers=new)).status_code == 200

    async with gw.devices.pool.connection() as conn:
        await conn.execute("UPDATE devices SET expires_at = now() - interval '1 second' WHERE device_id = %s", (device["device_id"],))
    expired = await client.get("/v1/me/export", headers=new)
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "TOKEN_EXPIRED"

    other = await _register(client)
    assert (await client.delete("/v1/devices/current", headers=_auth(other))).status_code == 204
    assert (await client.get("/v1/me/export", headers=_auth(other))).status_code == 401
    # A revoked token cannot start an erasure either.
    assert (await client.delete("/v1/me", headers=_auth(other))).status_code == 401


async def test_erase_retry_after_a_privacy_failure(api) -> None:
    gw, client, _, _, _ = api
    auth = _auth(await _register(client))
    real = gw.privacy.request_erasure

    async def unavailable(subject_id: str, reason: str) -> Any:
        raise ApiError(503, "UPSTREAM_UNAVAILABLE", "the privacy service is not available right now; try again")

    gw.privacy.request_erasure = unavailable
    failed = await client.delete("/v1/me", headers=auth)
    assert failed.status_code == 503
    # Nothing was stopped: the token still works and the erasure can be asked for again.
    assert (await client.get("/v1/me/export", headers=auth)).status_code == 200
    gw.privacy.request_erasure = real
    first = await client.delete("/v1/me", headers=auth)
    assert first.status_code == 202
    assert (await client.get("/v1/me/export", headers=auth)).status_code == 401
    again = await client.delete("/v1/me", headers=auth)
    assert again.status_code == 202 and again.json()["erasure_id"] == first.json()["erasure_id"]


async def test_consent_must_be_a_boolean(api) -> None:
    _, client, _, _, _ = api
    for loose in ("yes", 1, "true", "1", None):
        reply = await client.post("/v1/devices", json={**DEVICE, "age_confirmed": loose})
        assert reply.status_code == 400 and reply.json()["error"]["code"] == "INVALID_REQUEST", loose
    assert (await client.post("/v1/devices", json={**DEVICE, "age_confirmed": True})).status_code == 201


async def test_headers_and_docs(api) -> None:
    gw, client, _, _, _ = api
    registered = await client.post("/v1/devices", json=DEVICE)
    assert registered.headers["cache-control"] == "no-store"
    for reply in (registered, await client.get("/healthz"), await client.get("/v1/nothing"), await client.get("/openapi.json")):
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert "server" not in reply.headers and "strict-transport-security" not in reply.headers
    export = await client.get("/v1/me/export", headers=_auth(registered.json()))
    assert "no-store" in export.headers["cache-control"]
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert not re.search(r"(src|href)=['\"](https?:)?//", docs.text), "the docs page loads something from another host"
    assets = re.findall(r"(?:src|href)=['\"](/docs/assets/[^'\"]+)", docs.text)
    assert assets and [(await client.get(a)).status_code for a in assets] == [200] * len(assets)
    gw.settings.tls_terminated_upstream = True
    app = create_app(gw)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as tls:
        assert (await tls.get("/healthz")).headers["strict-transport-security"].startswith("max-age=")
    gw.settings.docs_enabled = False
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(gw)), base_url="http://gateway.test") as off:
        assert (await off.get("/docs")).status_code == 404


def _slow_client(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    return sock


def _closed(sock: socket.socket) -> bool:
    """Whether the server closed the connection within the socket's 5 s timeout."""
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def _oversized_head(port: int, size: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size)
        return sock.recv(64)


async def test_slow_clients_are_closed_and_healthz_keeps_answering(api) -> None:
    gw, _, _, _, _ = api
    settings = gw.settings.model_copy(
        update={"http_port": free_port(), "header_timeout_seconds": 2.0, "keep_alive_timeout_seconds": 1.0, "max_concurrent_requests": 100}
    )
    server = uvicorn.Server(uvicorn_config(create_app(gw), settings))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        # 50 clients that send half a request head and then nothing.
        slow = [await loop.run_in_executor(None, _slow_client, settings.http_port) for _ in range(50)]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}", timeout=2) as client:
            answered = 0
            while time.monotonic() - started < 1.5:
                health = await client.get("/healthz")
                assert health.status_code == 200 and "server" not in health.headers
                answered += 1
            assert answered >= 5
        closed = await asyncio.gather(*(loop.run_in_executor(None, _closed, s) for s in slow))
        waited = time.monotonic() - started
        assert all(closed) and waited < 6, f"slow clients held for {waited:.1f}s"
        for s in slow:
            s.close()
        # An oversized request head is refused by h11 (the socket work runs off the loop the server runs on).
        answer = await loop.run_in_executor(None, _oversized_head, settings.http_port, settings.max_header_bytes + 1024)
        assert answer.startswith(b"HTTP/1.1 400")
    finally:
        server.should_exit = True
        await serving


async def test_ios_registration_with_app_attest(api) -> None:
    gw, client, _, _, _ = api
    chain, stranger = new_chain(), new_chain()
    gw.settings.app_attest_app_id = APP_ID
    gw.settings.app_attest_root_pem = chain.root_pem

    def attestation(challenge: str, key_id: bytes, obj: bytes) -> dict[str, str]:
        return {"challenge": challenge, "key_id": base64.b64encode(key_id).decode(), "attestation_object": base64.b64encode(obj).decode()}

    async def challenge() -> str:
        reply = await client.post("/v1/devices/challenge")
        assert reply.status_code == 200 and reply.headers["cache-control"] == "no-store"
        return reply.json()["challenge"]

    missing = await client.post("/v1/devices", json=DEVICE)
    assert missing.status_code == 403 and missing.json()["error"]["code"] == "ATTESTATION_REQUIRED"
    # Android and web are not asked for it.
    assert (await client.post("/v1/devices", json={**DEVICE, "platform": "android"})).status_code == 201

    first = await challenge()
    key_id, obj = chain.attest(first.encode())
    good = await client.post("/v1/devices", json={**DEVICE, "attestation": attestation(first, key_id, obj)})
    assert good.status_code == 201, good.text
    again = await client.post("/v1/devices", json={**DEVICE, "attestation": attestation(first, key_id, obj)})
    assert again.status_code == 409 and again.json()["error"]["code"] == "ATTESTATION_REUSED"

    second = await challenge()
    for bad_challenge, (bad_key, bad_obj) in (
        (second, chain.attest(b"another challenge")),  # made for another challenge
        (second, stranger.attest(second.encode())),  # not from the configured root
        (second, chain.attest(second.encode(), app_id="OTHER.app")),  # another app
        ("c1.1.forged.mac", chain.attest(b"c1.1.forged.mac")),  # a challenge the gateway never issued
    ):
        refused = await client.post("/v1/devices", json={**DEVICE, "attestation": attestation(bad_challenge, bad_key, bad_obj)})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "ATTESTATION_INVALID", refused.text
    key_id, obj = chain.attest(second.encode())
    swapped = attestation(second, hashlib.sha256(b"other key").digest(), obj)
    assert (await client.post("/v1/devices", json={**DEVICE, "attestation": swapped})).status_code == 403


async def test_unreadable_bodies_are_invalid_requests_with_a_code(api) -> None:
    """Bytes that are not UTF-8, or JSON nested too deep to parse, get the same INVALID_REQUEST problem as any other
    bad body (not a generic HTTP_ERROR), on every JSON route."""
    _, client, _, _, _ = api
    auth = _auth(await _register(client))
    json_type = {**auth, "Content-Type": "application/json"}
    for method, path in (("POST", "/v1/devices"), ("PUT", "/v1/me/consents"), ("POST", "/v1/me/inquiries"), ("PATCH", "/v1/me")):
        for body in (b'{"message": "\xff\xfe"}', b"[" * 100_000 + b"]" * 100_000):
            reply = await client.request(method, path, content=body, headers=json_type)
            assert reply.status_code == 400, (path, reply.text)
            assert reply.json()["error"]["code"] == "INVALID_REQUEST", (path, reply.text)


async def test_json_bodies_are_capped_far_below_uploads(api) -> None:
    """Only uploads stream; every other body is read whole and parsed, so it gets 1 MiB, not the upload cap
    (26 MiB each, on a few hundred requests at once, was gigabytes of buffered JSON). Declared or streamed."""
    gw, client, _, _, _ = api
    auth = _auth(await _register(client))
    huge = b'{"message": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    assert len(huge) < gw.settings.max_body_bytes
    for method, path in (("POST", "/v1/devices"), ("POST", "/v1/me/inquiries"), ("PUT", "/v1/me/consents"), ("PATCH", "/v1/me")):
        declared = await client.request(method, path, content=huge, headers={**auth, "Content-Type": "application/json"})
        assert declared.status_code == 413 and declared.json()["error"]["code"] == "TOO_LARGE", (path, declared.text)
        sent = 0

        async def chunks() -> AsyncIterator[bytes]:
            nonlocal sent
            for start in range(0, len(huge), 8192):
                sent += 8192
                yield huge[start : start + 8192]

        streamed = await client.request(method, path, content=chunks(), headers={**auth, "Content-Type": "application/json"})
        assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "TOO_LARGE", (path, streamed.text)
        assert sent <= 1024 * 1024 + 64 * 1024, "the body was read after the cap was passed"
    # An upload of the same size is still taken (it streams on to ingestion; this one is not an image).
    upload = await client.post("/v1/uploads", content=huge, headers={**auth, "Content-Type": "image/jpeg"})
    assert upload.status_code != 413, upload.text


async def test_a_trailing_slash_is_not_redirected(api) -> None:
    """A redirect behind a TLS-terminating proxy would name http:// (the gateway speaks plain HTTP), and a client
    following it would send its token in clear: a path with a trailing slash is simply not found."""
    _, client, _, _, _ = api
    auth = _auth(await _register(client))
    for path in ("/v1/me/consents/", "/v1/me/inquiries/", "/v1/me/", "/v1/entitlements/"):
        reply = await client.get(path, headers=auth)
        assert reply.status_code == 404 and "location" not in reply.headers, (path, reply.status_code, reply.headers)
        assert reply.json()["error"]["code"] == "NOT_FOUND"
