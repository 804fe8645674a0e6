"""The APNs adapter against a local HTTP/2-only fake (tests/support/fake_apns.py, on the h2 package): over TLS it
negotiates ALPN "h2" as with Apple's servers, reuses one connection for every push, and maps APNs's answers to
errors; the fake really refuses HTTP/1.1, so an adapter that fell back to it would fail here."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from likeness_privacy.adapters.apns import ApnsConfig, ApnsSender, PushTokenInvalid, PushUnavailable
from tests.support.fake_apns import FakeApns

KEY = ec.generate_private_key(ec.SECP256R1()).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
TOKEN = "ab" * 32


def _sender(fake: FakeApns, ca_file: str | None = None) -> ApnsSender:
    ca = fake.ca_file if ca_file is None else ca_file
    return ApnsSender(ApnsConfig(fake.url, KEY, "KEY123ABCD", "TEAM456XYZ", "org.example.likeness", ca_file=ca))


@pytest.mark.parametrize("tls", [True, False], ids=["tls-alpn-h2", "h2c"])
async def test_pushes_go_over_http2_on_one_connection(tls: bool) -> None:
    with FakeApns(tls=tls) as fake:
        sender = _sender(fake)
        try:
            for n in range(3):
                await sender.send(TOKEN, f"Title {n}", "Body", f"notice-{n}")
            with pytest.raises(PushTokenInvalid) as gone:
                await sender.send("dead" + TOKEN[4:], "t", "b")
            with pytest.raises(PushTokenInvalid):
                await sender.send("bad" + TOKEN[3:], "t", "b")
        finally:
            await sender.aclose()
        assert "dead" not in str(gone.value)
        assert fake.connections == 1 and fake.refused == 0
        assert {call["alpn"] for call in fake.seen} == {"h2" if tls else "h2c"}
        first = fake.seen[0]
        assert first["method"] == "POST" and first["path"] == f"/3/device/{TOKEN}"
        assert first["headers"]["apns-topic"] == "org.example.likeness" and first["headers"]["apns-push-type"] == "alert"
        assert first["headers"]["apns-collapse-id"] == "notice-0" and first["headers"]["authorization"].startswith("bearer ")
        assert first["body"] == {"aps": {"alert": {"title": "Title 0", "body": "Body"}, "sound": "default"}}
        # One provider token for every push.
        assert len({call["headers"]["authorization"] for call in fake.seen}) == 1


async def test_the_fake_refuses_http1_and_an_untrusted_server_is_unavailable() -> None:
    with FakeApns() as fake:
        async with httpx.AsyncClient(base_url=fake.url, timeout=5) as http1:
            with pytest.raises(httpx.HTTPError):
                await http1.post(f"/3/device/{TOKEN}", content=json.dumps({"aps": {}}))
        assert fake.refused == 1 and fake.seen == []
    with FakeApns(tls=True) as fake:
        # Without the fake's CA the system trust store is used, which does not know it: no push, no token in the error.
        sender = _sender(fake, ca_file="")
        try:
            with pytest.raises(PushUnavailable) as refused:
                await sender.send(TOKEN, "t", "b")
        finally:
            await sender.aclose()
        assert TOKEN not in str(refused.value) and fake.seen == []


def test_the_privacy_image_installs_what_apns_needs() -> None:
    """The image installs what privacy's pyproject names: HTTP/2 for APNs must be there, pinned as in the dev lock."""
    repo = Path(__file__).resolve().parents[1]
    declared = tomllib.loads((repo / "services/privacy/pyproject.toml").read_text())["project"]["dependencies"]
    dev = {line.strip() for line in (repo / "requirements/dev.txt").read_text().splitlines()}
    for package in ("httpx", "h2"):
        pinned = [d for d in declared if d.startswith(f"{package}==")]
        assert len(pinned) == 1 and pinned[0] in dev, (package, declared)
