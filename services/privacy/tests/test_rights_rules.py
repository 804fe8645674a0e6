"""Rules of consents, inquiries and notices, and the APNs adapter against a mock transport (no database, no network)."""

from __future__ import annotations

import base64
import importlib.util
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from likeness_platform.errors import InvalidArgument
from likeness_privacy.adapters.apns import ApnsConfig, ApnsSender, PushTokenInvalid, PushUnavailable, provider_token
from likeness_privacy.domain import rights
from likeness_privacy.main import PrivacySettings, apns_sender

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
KEY = ec.generate_private_key(ec.SECP256R1())
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
TOKEN = "ab" * 32


def _code(call, *args) -> str:
    with pytest.raises(InvalidArgument) as caught:
        call(*args)
    return caught.value.code


def test_a_policy_change_takes_effect_30_days_after_it_is_announced_or_later() -> None:
    ok = NOW + timedelta(days=30)
    rights.check_notice("policy_change", "New policy", "text", "2027-01", ok, NOW)
    assert _code(
        rights.check_notice, "policy_change", "New policy", "text", "2027-01", NOW + timedelta(days=30) - timedelta(seconds=1), NOW
    ) == ("NOTICE_TOO_SHORT")
    assert _code(rights.check_notice, "policy_change", "New policy", "text", "2027-01", None, NOW) == "EFFECTIVE_AT_REQUIRED"
    assert _code(rights.check_notice, "policy_change", "New policy", "text", "", ok, NOW) == "POLICY_VERSION_REQUIRED"
    # An incident is told at once: no date rule.
    rights.check_notice("security_incident", "Incident", "text", "", None, NOW)
    assert _code(rights.check_notice, "security_incident", " ", "text", "", None, NOW) == "INVALID_TITLE"


def test_consent_changes_name_known_purposes_and_the_latest_record_counts() -> None:
    assert _code(rights.check_changes, [("sell_data", True)], "", "app") == "UNKNOWN_PURPOSE"
    assert _code(rights.check_changes, [], "", "app") == "NO_CONSENT_CHANGE"
    assert _code(rights.check_changes, [(rights.PRIVACY_POLICY, True)], "", "app") == "POLICY_VERSION_REQUIRED"
    assert _code(rights.check_changes, [(rights.AI_GENERATION_THIRD_PARTY, True)] * 2, "", "app") == "DUPLICATE_PURPOSE"
    history = [
        rights.ConsentRecord(rights.AI_GENERATION_THIRD_PARTY, True, "1", "app", NOW),
        rights.ConsentRecord(rights.AI_GENERATION_THIRD_PARTY, False, "1", "app", NOW + timedelta(minutes=1)),
    ]
    assert rights.current_consents(history)[rights.AI_GENERATION_THIRD_PARTY].granted is False


def test_inquiries_are_size_limited_and_contacts_checked() -> None:
    assert rights.check_inquiry("complaint", "  too slow  ", 20) == "too slow"
    assert _code(rights.check_inquiry, "complaint", "x" * 21, 20) == "MESSAGE_TOO_LONG"
    assert _code(rights.check_inquiry, "spam", "hi", 20) == "INVALID_TOPIC"
    assert _code(rights.check_inquiry, "inquiry", "   ", 20) == "EMPTY_MESSAGE"
    assert _code(rights.check_contact, "apns", "not-hex") == "INVALID_PUSH_TOKEN"
    assert _code(rights.check_contact, "email", "nobody") == "INVALID_EMAIL"
    rights.check_contact("apns", TOKEN)
    rights.check_contact("email", "")  # removes the channel


def _pad(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def test_the_provider_token_is_an_es256_jwt_apns_can_verify() -> None:
    token = provider_token(PEM, "KEY123ABCD", "TEAM456XYZ", 1_700_000_000)
    header, claims, signature = token.split(".")
    assert json.loads(_pad(header)) == {"alg": "ES256", "kid": "KEY123ABCD"}
    assert json.loads(_pad(claims)) == {"iss": "TEAM456XYZ", "iat": 1_700_000_000}
    raw = _pad(signature)
    assert len(raw) == 64  # JOSE r||s, not DER
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    KEY.public_key().verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    rsa_like = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError):
        provider_token(rsa_like, "k", "t", 0)


def _sender(handler) -> ApnsSender:
    config = ApnsConfig("https://apns.test", PEM, "KEY123ABCD", "TEAM456XYZ", "org.example.likeness", http2=False)
    return ApnsSender(config, transport=httpx.MockTransport(handler))


async def test_apns_answers_map_to_errors_that_never_quote_the_token() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = {TOKEN: 200, "cd" * 32: 410}.get(request.url.path.rsplit("/", 1)[-1], 500)
        return httpx.Response(status, json={"reason": "Unregistered"} if status == 410 else {"reason": "InternalServerError"})

    sender = _sender(answer)
    await sender.send(TOKEN, "Title", "Body", "notice-1")
    request = seen[0]
    assert request.url.path == f"/3/device/{TOKEN}" and request.headers["apns-push-type"] == "alert"
    assert request.headers["apns-topic"] == "org.example.likeness" and request.headers["apns-collapse-id"] == "notice-1"
    assert json.loads(request.content) == {"aps": {"alert": {"title": "Title", "body": "Body"}, "sound": "default"}}
    with pytest.raises(PushTokenInvalid) as gone:
        await sender.send("cd" * 32, "t", "b")
    with pytest.raises(PushUnavailable) as failed:
        await sender.send("ef" * 32, "t", "b")
    assert "cd" * 32 not in str(gone.value) and "ef" * 32 not in str(failed.value)
    # The provider token is reused, not signed per push.
    assert len({r.headers["authorization"] for r in seen}) == 1
    await sender.aclose()


def test_apns_settings_all_or_nothing() -> None:
    assert apns_sender(PrivacySettings()) is None
    with pytest.raises(SystemExit, match="together"):
        apns_sender(PrivacySettings(apns_key=PEM.decode()))
    full = {"apns_key": PEM.decode(), "apns_key_id": "K", "apns_team_id": "T", "apns_topic": "org.example.likeness"}
    if importlib.util.find_spec("h2") is None:
        # Production speaks HTTP/2 to APNs: without the h2 package the service refuses to start rather than fail at the first push.
        with pytest.raises(SystemExit, match="h2"):
            apns_sender(PrivacySettings(**full))
    sender = apns_sender(PrivacySettings(**full, apns_http2=False))
    assert sender is not None and "BEGIN" not in repr(sender)
