"""Rules of consents, inquiries and notices, and the APNs and SMS adapters against a mock transport (no database, no
network)."""

from __future__ import annotations

import base64
import json
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from likeness_platform.errors import InvalidArgument
from likeness_privacy.adapters.apns import ApnsConfig, ApnsSender, PushTokenInvalid, PushUnavailable, provider_token
from likeness_privacy.adapters.sms import SmsConfig, SmsNumberRefused, SmsSender, SmsUnavailable
from likeness_privacy.domain import rights
from likeness_privacy.main import PrivacySettings, apns_sender, sms_sender
from likeness_privacy.usecases.rights import sms_text

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
    for wrong in ("07700900123", "+07700900123", "+44 7700 900123", "+123456", "+1234567890123456", "+44770090012x"):
        assert _code(rights.check_contact, "sms", wrong) == "INVALID_PHONE_NUMBER", wrong
    rights.check_contact("sms", "+447700900123")
    rights.check_contact("sms", "+1234567")  # the shortest E.164 number this accepts: 7 digits
    rights.check_contact("sms", "")
    assert _code(rights.check_contact, "fax", "+447700900123") == "INVALID_CHANNEL"


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
    config = ApnsConfig("https://apns.test", PEM, "KEY123ABCD", "TEAM456XYZ", "org.example.likeness")
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


def test_apns_settings_all_or_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert apns_sender(PrivacySettings()) is None
    with pytest.raises(SystemExit, match="together"):
        apns_sender(PrivacySettings(apns_key=PEM.decode()))
    full = {"apns_key": PEM.decode(), "apns_key_id": "K", "apns_team_id": "T", "apns_topic": "org.example.likeness"}
    sender = apns_sender(PrivacySettings(**full))
    assert sender is not None and "BEGIN" not in repr(sender)
    # APNs speaks HTTP/2 only: an install without the h2 package refuses to start rather than fail at the first push.
    with monkeypatch.context() as patched:
        patched.setitem(sys.modules, "h2", None)
        with pytest.raises(SystemExit, match="h2"):
            apns_sender(PrivacySettings(**full))


async def test_sms_is_a_form_post_with_basic_auth_and_errors_never_quote_the_number() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        to = dict(httpx.QueryParams(request.content.decode()))["To"]
        status = {"+447700900123": 201, "+447700900124": 400}.get(to, 503)
        return httpx.Response(status, json={"sid": "SM1"} if status == 201 else {"message": f"bad number {to}"})

    sender = SmsSender(
        SmsConfig("https://sms.test/2010-04-01/", "AC12", "tok-secret", "+15005550006"), transport=httpx.MockTransport(answer)
    )
    assert "tok-secret" not in repr(sender)
    await sender.send("+447700900123", sms_text("Incident"))
    request = seen[0]
    assert request.method == "POST" and request.url.path == "/2010-04-01/Accounts/AC12/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"AC12:tok-secret").decode()
    form = dict(httpx.QueryParams(request.content.decode()))
    assert form == {"To": "+447700900123", "From": "+15005550006", "Body": "Incident - open the app for details."}
    with pytest.raises(SmsNumberRefused) as refused:
        await sender.send("+447700900124", "t")
    with pytest.raises(SmsUnavailable) as failed:
        await sender.send("+447700900125", "t")
    assert "7700900124" not in str(refused.value) and "7700900125" not in str(failed.value)
    assert refused.value.code == "SMS_NUMBER_REFUSED" and failed.value.code == "SMS_UNAVAILABLE"
    await sender.aclose()

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach for {request.url}")

    down = SmsSender(SmsConfig("https://sms.test", "AC12", "t", "+15005550006"), transport=httpx.MockTransport(unreachable))
    with pytest.raises(SmsUnavailable, match="ConnectError") as gone:
        await down.send("+447700900126", "t")
    assert "7700900126" not in str(gone.value)
    await down.aclose()


def test_sms_settings_all_or_nothing_with_an_e164_sender_and_an_https_gateway() -> None:
    assert sms_sender(PrivacySettings()) is None
    with pytest.raises(SystemExit, match="together"):
        sms_sender(PrivacySettings(sms_base_url="https://api.twilio.com/2010-04-01"))
    full = {"sms_base_url": "https://api.twilio.com/2010-04-01", "sms_account_id": "AC1", "sms_token": "t0k", "sms_from": "+15005550006"}
    sender = sms_sender(PrivacySettings(**full))
    assert sender is not None and "t0k" not in repr(sender)
    with pytest.raises(SystemExit, match=r"E\.164"):
        sms_sender(PrivacySettings(**{**full, "sms_from": "Likeness"}))
    with pytest.raises(SystemExit, match="https"):
        sms_sender(PrivacySettings(**{**full, "sms_base_url": "api.twilio.com"}))


def test_an_sms_is_one_message_of_at_most_160_characters() -> None:
    assert sms_text("Incident") == "Incident - open the app for details."
    long = sms_text("x" * 400)
    assert len(long) == 160 and long.endswith("xx... - open the app for details.")
