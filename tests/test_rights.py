"""A person's rights on the real mesh (privacy + gateway, real PostgreSQL): consent records in the export and gone
after erasure, the inquiry round trip through a support operator, incident notices that reach exactly the affected
subjects (in-app, a fake APNs, a fake SMTP server, a fake SMS gateway), and the policy-change notice date rule with acceptance."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import time
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from google.protobuf.timestamp_pb2 import Timestamp

from likeness.privacy.v1 import rights_pb2, rights_pb2_grpc
from likeness_gateway.domain.tokens import token_hash
from tests.support.fake_apns import FakeApns
from tests.support.fake_sms import FakeSms
from tests.support.fake_smtp import FakeSmtp
from tests.support.pki import mesh_channel, pki
from tests.support.services import NOWHERE, Started, free_port, start_gateway, start_privacy
from tests.test_cli import likeness

DEVICE = {
    "platform": "ios",
    "model": "iPhone15,2",
    "os_version": "18.1",
    "app_version": "2.0.0",
    "language": "en-GB",
    "age_confirmed": True,
}
APNS_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def apns() -> Iterator[FakeApns]:
    """APNs over HTTP/2 (h2c with prior knowledge here; tests/test_apns_http2.py covers TLS with ALPN h2)."""
    with FakeApns() as fake:
        yield fake


@pytest.fixture(scope="module")
def sms() -> Iterator[FakeSms]:
    with FakeSms().running() as fake:
        yield fake


@pytest.fixture
async def mesh(database_url: str, apns: FakeApns, sms: FakeSms, tmp_path: Path) -> AsyncIterator[dict]:
    started = Started()
    async with FakeSmtp() as smtp:
        privacy_port = free_port()
        gw, client, gateway_grpc = await start_gateway(database_url, {"privacy": f"127.0.0.1:{privacy_port}"}, started)
        key_pem = APNS_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        privacy, privacy_addr = await start_privacy(
            database_url,
            {"gateway": gateway_grpc},
            started,
            port=privacy_port,
            apns_host=apns.url,
            apns_key=key_pem.decode(),
            apns_key_id="KEY123ABCD",
            apns_team_id="TEAM456XYZ",
            apns_topic="org.example.likeness",
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_security="none",
            inquiry_max_chars=500,
            sms_base_url=sms.url,
            sms_account_id=sms.account_id,
            sms_token=sms.token,
            sms_from="+15005550006",
        )
        channel = mesh_channel(privacy_addr)
        support = _operator_channel(privacy_addr, "operator/sam", ["support"])
        auditor = _operator_channel(privacy_addr, "operator/ann", ["auditor"])
        admin = _operator_channel(privacy_addr, "operator/ada", ["admin"])
        apns.seen.clear()
        sms.clear()
        try:
            yield {
                "client": client,
                "gw": gw,
                "privacy_addr": privacy_addr,
                "privacy": privacy,
                "rights": rights_pb2_grpc.RightsStub(channel),
                "support": rights_pb2_grpc.RightsStub(support),
                "auditor": rights_pb2_grpc.RightsStub(auditor),
                "admin": rights_pb2_grpc.RightsStub(admin),
                "smtp": smtp,
                "apns": apns,
                "sms": sms,
            }
        finally:
            for ch in (channel, support, auditor, admin):
                await ch.close()
            await started.close()


def _operator_channel(address: str, identity: str, roles: list[str]) -> grpc.aio.Channel:
    cert, key, ca = pki().ensure(identity, roles=roles).read()
    return grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert))


async def _device(m: dict) -> tuple[dict[str, str], str]:
    """A registered device's auth header and its subject id (looked up the way the gateway does)."""
    reply = await m["client"].post("/v1/devices", json=DEVICE)
    assert reply.status_code == 201, reply.text
    token = reply.json()["token"]
    device = await m["gw"].devices.by_token_hash(token_hash(token))
    return {"Authorization": f"Bearer {token}"}, str(device.subject_id)


async def _erase(m: dict, auth: dict[str, str]) -> dict:
    deleted = await m["client"].delete("/v1/me", headers=auth)
    assert deleted.status_code == 202, deleted.text
    erasure_id = deleted.json()["erasure_id"]
    deadline = time.monotonic() + 20
    while not await m["privacy"].erasures.drive(erasure_id):
        assert time.monotonic() < deadline, "the erasure did not complete"
        await asyncio.sleep(0.05)
    return (await m["client"].get(f"/v1/me/erasures/{erasure_id}")).json()


async def _rows(m: dict, query: str, *args: Any) -> list[tuple]:
    async with m["privacy"].repo.pool.connection() as conn:
        return await (await conn.execute(query, args)).fetchall()


async def _rows_changed(m: dict, query: str, *args: Any) -> int:
    async with m["privacy"].repo.pool.connection() as conn:
        return (await conn.execute(query, args)).rowcount


async def test_consent_history_is_recorded_exported_and_erased(mesh: dict) -> None:
    client, rights = mesh["client"], mesh["rights"]
    auth, subject = await _device(mesh)
    fresh = (await client.get("/v1/me/consents", headers=auth)).json()
    assert "ai_generation_third_party" in fresh["purposes"] and fresh["current"] == {} and fresh["history"] == []
    check = rights_pb2.CheckConsentRequest(subject_id=subject, purpose="ai_generation_third_party")
    assert not (await rights.CheckConsent(check)).granted  # never asked: not granted

    granted = await client.put(
        "/v1/me/consents", json={"consents": {"ai_generation_third_party": True}, "policy_version": "2026-11"}, headers=auth
    )
    assert granted.status_code == 200, granted.text
    assert (await rights.CheckConsent(check)).granted
    withdrawn = await client.put("/v1/me/consents", json={"consents": {"ai_generation_third_party": False}}, headers=auth)
    assert withdrawn.json()["current"]["ai_generation_third_party"]["granted"] is False
    assert not (await rights.CheckConsent(check)).granted  # at once
    history = withdrawn.json()["history"]
    assert [h["granted"] for h in history] == [True, False] and history[0]["policy_version"] == "2026-11"

    unknown = await client.put("/v1/me/consents", json={"consents": {"sell_my_data": True}}, headers=auth)
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "UNKNOWN_PURPOSE"
    # The history is append-only for the service's own database role.
    with pytest.raises(Exception, match="permission denied"):
        await _rows(mesh, "UPDATE consents SET granted = true WHERE subject_id = %s", subject)

    export = await client.get("/v1/me/export", headers=auth)
    assert export.status_code == 200, export.text
    archive = zipfile.ZipFile(io.BytesIO(export.content))
    document = json.loads(archive.read("privacy/rights.json"))
    assert [(c["purpose"], c["granted"]) for c in document["consents"]] == [
        ("ai_generation_third_party", True),
        ("ai_generation_third_party", False),
    ]

    status = await _erase(mesh, auth)
    receipt = {r["holder"]: r for r in status["receipts"]}["privacy"]
    assert receipt["erased"]["consents"] == 2 and receipt["remaining"].get("consents", 0) == 0
    assert await _rows(mesh, "SELECT 1 FROM consents WHERE subject_id = %s", subject) == []
    assert not (await rights.CheckConsent(check)).granted


async def test_inquiry_round_trip_through_support_is_logged_and_erased(mesh: dict) -> None:
    client = mesh["client"]
    auth, subject = await _device(mesh)
    too_long = await client.post("/v1/me/inquiries", json={"topic": "complaint", "message": "x" * 501}, headers=auth)
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "MESSAGE_TOO_LONG"
    posted = await client.post("/v1/me/inquiries", json={"topic": "complaint", "message": "Why was my photo kept for a day?"}, headers=auth)
    assert posted.status_code == 201, posted.text
    inquiry = posted.json()
    assert inquiry["state"] == "open" and inquiry["answer"] is None and inquiry["expires_at"] > inquiry["created_at"]
    # Stored encrypted: the text is nowhere in the row.
    stored = await _rows(mesh, "SELECT row_to_json(i)::text FROM inquiries i WHERE subject_id = %s", subject)
    assert len(stored) == 1 and "photo kept" not in stored[0][0]

    # Only support reads inquiries; an auditor cannot.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await mesh["auditor"].ListInquiries(rights_pb2.ListInquiriesRequest())
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    listed = (await mesh["support"].ListInquiries(rights_pb2.ListInquiriesRequest(limit=200))).inquiries
    mine = [i for i in listed if i.inquiry_id == inquiry["inquiry_id"]]
    assert len(mine) == 1 and mine[0].message == "Why was my photo kept for a day?" and mine[0].subject_id == subject
    answered = await mesh["support"].AnswerInquiry(
        rights_pb2.AnswerInquiryRequest(inquiry_id=inquiry["inquiry_id"], answer="Results are kept at most 24 h; yours is gone.")
    )
    assert answered.inquiry.state == rights_pb2.INQUIRY_STATE_ANSWERED
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await mesh["support"].AnswerInquiry(rights_pb2.AnswerInquiryRequest(inquiry_id=inquiry["inquiry_id"], answer="again"))
    assert dict(again.value.trailing_metadata())["likeness-error-code"] == "ALREADY_ANSWERED"

    seen = (await client.get("/v1/me/inquiries", headers=auth)).json()["inquiries"]
    assert [(i["state"], i["answer"]) for i in seen] == [("answered", "Results are kept at most 24 h; yours is gone.")]
    assert seen[0]["answered_at"]
    # The operator's read and answer are in the access log under the operator's identity.
    logged = await _rows(mesh, "SELECT actor, purpose FROM access_log WHERE subject_id = %s ORDER BY seq", subject)
    assert ("operator/sam", "support_inquiry") in logged and ("operator/sam", "support_answer") in logged

    export = await client.get("/v1/me/export", headers=auth)
    document = json.loads(zipfile.ZipFile(io.BytesIO(export.content)).read("privacy/rights.json"))
    assert [i["message"] for i in document["inquiries"]] == ["Why was my photo kept for a day?"]
    control = await client.post("/v1/me/inquiries", json={"message": "bell\x07"}, headers=auth)
    assert control.status_code == 400 and control.json()["error"]["code"] == "INVALID_REQUEST"

    # Retention: an inquiry older than LIKENESS_INQUIRY_RETENTION_DAYS goes with privacy's next sweep, whatever cutoff it is asked.
    old = await client.post("/v1/me/inquiries", json={"message": "An old question"}, headers=auth)
    await _rows_changed(
        mesh, "UPDATE inquiries SET created_at = now() - interval '366 days' WHERE inquiry_id = %s", old.json()["inquiry_id"]
    )
    swept = await mesh["privacy"].self_holder.sweep({})
    assert swept["inquiries"] >= 1
    left = [i["inquiry_id"] for i in (await client.get("/v1/me/inquiries", headers=auth)).json()["inquiries"]]
    assert left == [inquiry["inquiry_id"]]
    await _erase(mesh, auth)
    assert await _rows(mesh, "SELECT 1 FROM inquiries WHERE subject_id = %s", subject) == []
    listed = (
        await mesh["support"].ListInquiries(rights_pb2.ListInquiriesRequest(state=rights_pb2.INQUIRY_STATE_ANSWERED, limit=200))
    ).inquiries
    assert inquiry["inquiry_id"] not in {i.inquiry_id for i in listed}


def _push_token() -> str:
    return os.urandom(32).hex()


def _verify_provider_token(bearer: str) -> dict:
    header_b64, claims_b64, signature_b64 = bearer.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    header = json.loads(base64.urlsafe_b64decode(pad(header_b64)))
    raw = base64.urlsafe_b64decode(pad(signature_b64))
    signature = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    APNS_KEY.public_key().verify(signature, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    assert header == {"alg": "ES256", "kid": "KEY123ABCD"}
    return json.loads(base64.urlsafe_b64decode(pad(claims_b64)))


async def test_an_incident_notice_reaches_every_affected_subject_and_nobody_else(mesh: dict) -> None:
    client, rights = mesh["client"], mesh["rights"]
    people = [await _device(mesh) for _ in range(4)]
    # The fourth person's app was removed from the phone: APNs answers 410 for its token.
    tokens = [_push_token() for _ in people[:3]] + ["dead" + _push_token()[4:]]
    for (auth, _), token in zip(people, tokens, strict=True):
        assert (await client.put("/v1/me/push-token", json={"token": token}, headers=auth)).status_code == 204
    bad = await client.put("/v1/me/push-token", json={"token": "z" * 64}, headers=people[0][0])
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_REQUEST"
    # The first two have accounts with a verified email (set by the accounts flow through the same RPC).
    for (_, subject), address in zip(people[:2], ("ana@example.org", "ben@example.org"), strict=True):
        await rights.SetNoticeContact(
            rights_pb2.SetNoticeContactRequest(subject_id=subject, channel=rights_pb2.CONTACT_CHANNEL_EMAIL, address=address)
        )
    contacts = await _rows(mesh, "SELECT sealed FROM notice_contacts WHERE subject_id = %s", people[0][1])
    assert len(contacts) == 2 and all(b"ana@" not in bytes(c[0]) and tokens[0].encode() not in bytes(c[0]) for c in contacts)

    mesh["apns"].seen.clear()
    affected = [people[0][1], people[1][1], people[3][1]]
    published = await mesh["admin"].PublishNotice(
        rights_pb2.PublishNoticeRequest(
            kind=rights_pb2.NOTICE_KIND_SECURITY_INCIDENT,
            title="Security incident",
            body="An export link may have been seen by others.",
            subject_ids=affected,
        )
    )
    assert (published.recipients, published.push_sent, published.email_sent, published.failed) == (3, 2, 2, 1)
    pushed = {call["path"].rsplit("/", 1)[-1]: call for call in mesh["apns"].seen}
    assert set(pushed) == {tokens[0], tokens[1], tokens[3]}  # the third device is not told
    # A token APNs says is gone is forgotten; the person still has the notice in the app.
    assert await _rows(mesh, "SELECT 1 FROM notice_contacts WHERE subject_id = %s", people[3][1]) == []
    del pushed[tokens[3]]
    for call in pushed.values():
        assert call["headers"]["apns-topic"] == "org.example.likeness" and call["headers"]["apns-push-type"] == "alert"
        assert _verify_provider_token(call["headers"]["authorization"].removeprefix("bearer "))["iss"] == "TEAM456XYZ"
        assert call["body"]["aps"]["alert"]["title"] == "Security incident"
    mails = [await mesh["smtp"].next() for _ in range(2)]
    assert sorted(r for m in mails for r in m.recipients) == ["ana@example.org", "ben@example.org"]
    assert all("export link" in m.body for m in mails) and mesh["smtp"].drain() == []

    in_app = [[n["notice_id"] for n in (await client.get("/v1/me/notices", headers=auth)).json()["notices"]] for auth, _ in people]
    nid = published.notice.notice_id
    assert nid in in_app[0] and nid in in_app[1] and nid not in in_app[2] and nid in in_app[3]
    # Contacts are read in pages; a subject's two channels straddling a page boundary are both delivered.
    paged = [(s, c) async for s, c, _ in mesh["privacy"].rights.repo.contacts(nid, False, None, page=3)]
    assert sorted(paged) == sorted((people[i][1], c) for i in (0, 1) for c in ("apns", "email"))

    # Only admins publish; the notice kept no more than who it concerned, and that goes with the subject.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await mesh["support"].PublishNotice(
            rights_pb2.PublishNoticeRequest(kind=rights_pb2.NOTICE_KIND_SECURITY_INCIDENT, title="t", body="b")
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await _erase(mesh, people[1][0])
    assert await _rows(mesh, "SELECT 1 FROM notice_recipients WHERE subject_id = %s", people[1][1]) == []
    assert await _rows(mesh, "SELECT 1 FROM notice_contacts WHERE subject_id = %s", people[1][1]) == []
    for auth, _ in (people[0], people[2], people[3]):
        await _erase(mesh, auth)


async def test_policy_change_is_announced_30_days_ahead_and_acceptance_is_recorded(mesh: dict) -> None:
    client = mesh["client"]
    auth, _ = await _device(mesh)
    token = _push_token()
    assert (await client.put("/v1/me/push-token", json={"token": token}, headers=auth)).status_code == 204
    assert (await client.put("/v1/me/sms-contact", json={"phone_number": "+447700900150"}, headers=auth)).status_code == 204
    soon, later = Timestamp(), Timestamp()
    soon.FromDatetime(datetime.now(UTC) + timedelta(days=29, hours=23))
    later.FromDatetime(datetime.now(UTC) + timedelta(days=31))
    request = rights_pb2.PublishNoticeRequest(
        kind=rights_pb2.NOTICE_KIND_POLICY_CHANGE, title="New privacy policy", body="We now keep uploads 12 h.", policy_version="2027-01"
    )
    request.effective_at.CopyFrom(soon)
    with pytest.raises(grpc.aio.AioRpcError) as short:
        await mesh["admin"].PublishNotice(request)
    assert short.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(short.value.trailing_metadata())["likeness-error-code"] == "NOTICE_TOO_SHORT"
    request.effective_at.CopyFrom(later)
    mesh["apns"].seen.clear()
    published = await mesh["admin"].PublishNotice(request)
    # A policy change is for everyone: this subject, and every other active one in the database.
    assert published.recipients >= 1 and token in {c["path"].rsplit("/", 1)[-1] for c in mesh["apns"].seen}
    # Texts are for incidents only: a policy change reaches no phone by SMS.
    assert published.sms_sent == 0 and mesh["sms"].messages() == []
    notice = {"notice_id": published.notice.notice_id}
    notices = (await client.get("/v1/me/notices", headers=auth)).json()["notices"]
    mine = next(n for n in notices if n["notice_id"] == str(notice["notice_id"]))
    assert mine["kind"] == "policy_change" and mine["policy_version"] == "2027-01" and mine["accepted"] is False
    assert mine["effective_at"] >= (datetime.now(UTC) + timedelta(days=30)).isoformat()[:10]

    accepted = await client.post(f"/v1/me/notices/{notice['notice_id']}/accept", headers=auth)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["purpose"] == "privacy_policy" and accepted.json()["policy_version"] == "2027-01"
    assert accepted.json()["source"] == "notice"
    notices = (await client.get("/v1/me/notices", headers=auth)).json()["notices"]
    assert next(n for n in notices if n["notice_id"] == str(notice["notice_id"]))["accepted"] is True
    current = (await client.get("/v1/me/consents", headers=auth)).json()["current"]
    assert current["privacy_policy"]["granted"] and current["privacy_policy"]["policy_version"] == "2027-01"
    missing = await client.post("/v1/me/notices/00000000-0000-0000-0000-000000000000/accept", headers=auth)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOTICE_NOT_FOUND"
    await _erase(mesh, auth)


async def test_support_answers_through_the_cli_and_the_person_reads_it(mesh: dict) -> None:
    client = mesh["client"]
    auth, subject = await _device(mesh)
    posted = await client.post("/v1/me/inquiries", json={"message": "Do you sell my photos?"}, headers=auth)
    inquiry_id = posted.json()["inquiry_id"]
    pki().ensure("operator/cli-sam", roles=["support"])
    pki().ensure("operator/cli-ann", roles=["auditor"])
    addrs = {"privacy": mesh["privacy_addr"], "render": NOWHERE, "faces": NOWHERE}

    listed = await likeness(addrs, "inquiries", "list", "--json", "--limit", "200", identity="operator/cli-sam")
    assert listed.rc == 0, listed.err
    found = [json.loads(line) for line in listed.out.splitlines() if inquiry_id in line]
    assert [(f["subject_id"], f["message"]) for f in found] == [(subject, "Do you sell my photos?")]
    refused = await likeness(addrs, "inquiries", "list", identity="operator/cli-ann")
    assert refused.rc == 1 and "CALLER_NOT_ALLOWED" in refused.err and "with the support role" in refused.err
    answered = await likeness(addrs, "inquiries", "answer", inquiry_id, "No, never.", identity="operator/cli-sam")
    assert answered.rc == 0 and f"answered {inquiry_id}" in answered.out, answered.err
    seen = (await client.get("/v1/me/inquiries", headers=auth)).json()["inquiries"]
    assert [(i["inquiry_id"], i["answer"]) for i in seen] == [(inquiry_id, "No, never.")]
    logged = await _rows(mesh, "SELECT actor FROM access_log WHERE subject_id = %s", subject)
    assert ("operator/cli-sam",) in logged

    soon = (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
    too_soon = await likeness(
        addrs, "notices", "publish", "--kind", "policy-change", "--title", "t", "--body", "b", "--policy-version", "9",
        "--effective", soon, identity="operator/test",
    )  # fmt: skip
    assert too_soon.rc == 1 and "NOTICE_TOO_SHORT" in too_soon.err
    await _erase(mesh, auth)


async def test_the_notices_cli_refuses_clearly_and_warns_about_subjects_it_could_not_tell(mesh: dict) -> None:
    auth, subject = await _device(mesh)
    assert (await mesh["client"].put("/v1/me/sms-contact", json={"phone_number": "+447700900177"}, headers=auth)).status_code == 204
    addrs = {"privacy": mesh["privacy_addr"], "render": NOWHERE, "faces": NOWHERE}
    title = f"Incident {subject[:8]}"
    incident = ("notices", "publish", "--kind", "security-incident", "--title", title, "--body", "What happened.")

    async def titles() -> list[str]:
        notices = (await mesh["client"].get("/v1/me/notices", headers=auth)).json()["notices"]
        return [n["title"] for n in notices if n["title"] == title]

    # Options that do not fit the kind are refused before anything is sent (usage error, exit 2).
    mixed = await likeness(addrs, *incident, "--effective", "2030-01-01", identity="operator/test")
    assert mixed.rc == 2 and "--kind policy-change only" in mixed.err and mixed.out == ""
    later = (datetime.now(UTC) + timedelta(days=40)).date().isoformat()
    policy = ("notices", "publish", "--kind", "policy-change", "--title", "t", "--body", "b", "--policy-version", "9")
    targeted = await likeness(addrs, *policy, "--effective", later, "--subject", subject, identity="operator/test")
    assert targeted.rc == 2 and "leave out --subject" in targeted.err

    # A malformed subject id is refused with its code, and nothing is published (the subject sees no notice).
    typo = await likeness(addrs, *incident, "--subject", subject, "--subject", subject[:-1], identity="operator/test")
    assert typo.rc == 1 and "INVALID_SUBJECT_ID" in typo.err and "nothing was published" in typo.err, typo.err
    assert await titles() == []

    # A well-formed id of nobody (or of someone erased) is published for the others, with a warning.
    nobody = "00000000-0000-4000-8000-000000000000"
    told = await likeness(addrs, *incident, "--subject", subject, "--subject", nobody, identity="operator/test")
    assert told.rc == 0 and "1 subjects" in told.out and "1 texted, 0 failed" in told.out, told.err
    assert "1 of the 2 subjects given are not active subjects" in told.err
    assert await titles() == [title]

    # Without the admin role: the refusal names its code.
    pki().ensure("operator/cli-sue", roles=["support"])
    refused = await likeness(addrs, *incident, identity="operator/cli-sue")
    assert refused.rc == 1 and "CALLER_NOT_ALLOWED" in refused.err and "with the admin role" in refused.err, refused.err
    await _erase(mesh, auth)


async def test_a_contact_that_cannot_be_opened_is_a_counted_failure_and_the_others_are_told(mesh: dict) -> None:
    people = [await _device(mesh) for _ in range(2)]
    tokens = [_push_token() for _ in people]
    for (auth, _), token in zip(people, tokens, strict=True):
        assert (await mesh["client"].put("/v1/me/push-token", json={"token": token}, headers=auth)).status_code == 204
    # The first one's data key no longer unwraps (damaged, or wrapped under a KEK this privacy does not have).
    [(wrapped,)] = await _rows(mesh, "SELECT wrapped FROM data_keys WHERE subject_id = %s::uuid", people[0][1])
    damage = "UPDATE data_keys SET wrapped = %s WHERE subject_id = %s::uuid"
    assert await _rows_changed(mesh, damage, bytes(wrapped[:12]) + b"\x00" * (len(wrapped) - 12), people[0][1]) == 1
    mesh["apns"].seen.clear()
    published = await mesh["admin"].PublishNotice(
        rights_pb2.PublishNoticeRequest(
            kind=rights_pb2.NOTICE_KIND_SECURITY_INCIDENT, title="Incident", body="b", subject_ids=[s for _, s in people]
        )
    )
    assert (published.recipients, published.push_sent, published.failed) == (2, 1, 1)
    assert mesh["apns"].tokens() == [tokens[1]]
    assert await _rows_changed(mesh, damage, bytes(wrapped), people[0][1]) == 1
    for auth, _ in people:
        await _erase(mesh, auth)


async def test_a_consent_is_a_json_boolean_and_nothing_else(mesh: dict) -> None:
    """Consent is an unambiguous act: "yes", 1, "true" or null are refused, not read as granted, and nothing is recorded."""
    client = mesh["client"]
    auth, _ = await _device(mesh)
    for loose in ("yes", 1, "true", "on", 0, "false", None):
        reply = await client.put("/v1/me/consents", json={"consents": {"ai_generation_third_party": loose}}, headers=auth)
        assert reply.status_code == 400 and reply.json()["error"]["code"] == "INVALID_REQUEST", (loose, reply.text)
    assert (await client.get("/v1/me/consents", headers=auth)).json()["history"] == []
    reply = await client.put("/v1/me/consents", json={"consents": {"ai_generation_third_party": True}}, headers=auth)
    assert reply.status_code == 200 and reply.json()["current"]["ai_generation_third_party"]["granted"] is True


async def test_inquiries_are_bounded_per_person_per_day(mesh: dict) -> None:
    """One person cannot flood the support queue (each inquiry is kept, sealed, for a year): past
    LIKENESS_INQUIRIES_PER_DAY (10) the next is refused with 429 and a Retry-After, and nothing more is stored.
    Another person is unaffected."""
    client = mesh["client"]
    auth, _ = await _device(mesh)
    limit = mesh["gw"].settings.inquiries_per_day
    for i in range(limit):
        reply = await client.post("/v1/me/inquiries", json={"message": f"question {i}"}, headers=auth)
        assert reply.status_code == 201, reply.text
    refused = await client.post("/v1/me/inquiries", json={"message": "one more"}, headers=auth)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "RATE_LIMITED" and refused.json()["error"]["details"]["scope"] == "inquiries"
    assert int(refused.headers["Retry-After"]) > 0
    assert len((await client.get("/v1/me/inquiries", headers=auth)).json()["inquiries"]) == limit
    other, _ = await _device(mesh)
    assert (await client.post("/v1/me/inquiries", json={"message": "mine"}, headers=other)).status_code == 201


async def test_repeating_the_same_consent_records_nothing_new(mesh: dict) -> None:
    """The history records changes: the same answer sent again (an app re-sending its settings on every launch, or
    a loop) adds no record, so the history, its GET and the export stay the size of what the person decided."""
    client = mesh["client"]
    auth, _ = await _device(mesh)
    same = {"consents": {"ai_generation_third_party": True}, "policy_version": "2026-11"}
    for _ in range(5):
        reply = await client.put("/v1/me/consents", json=same, headers=auth)
        assert reply.status_code == 200, reply.text
    assert len(reply.json()["history"]) == 1
    # A real change (withdrawal, or a new policy version) is recorded.
    reply = await client.put("/v1/me/consents", json={**same, "consents": {"ai_generation_third_party": False}}, headers=auth)
    assert [r["granted"] for r in reply.json()["history"]] == [True, False]
    reply = await client.put("/v1/me/consents", json={**same, "policy_version": "2026-12"}, headers=auth)
    assert [(r["granted"], r["policy_version"]) for r in reply.json()["history"]] == [
        (True, "2026-11"),
        (False, "2026-11"),
        (True, "2026-12"),
    ]


async def test_an_incident_notice_reaches_the_affected_phone_by_sms_and_nobody_elses(mesh: dict) -> None:
    client = mesh["client"]
    people = [await _device(mesh) for _ in range(3)]
    numbers = ["+447700900101", "+447700900102", "+15550100103"]
    for (auth, _), number in zip(people, numbers, strict=True):
        put = await client.put("/v1/me/sms-contact", json={"phone_number": number}, headers=auth)
        assert put.status_code == 204, put.text
    # Not E.164: refused with a code, the number not quoted back, the stored one kept.
    for wrong in ("07700900101", "+0447700900101", "+44 7700 900101", "+12345", "+1234567890123456", "tel:+447700900101"):
        refused = await client.put("/v1/me/sms-contact", json={"phone_number": wrong}, headers=people[0][0])
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "INVALID_PHONE_NUMBER", (wrong, refused.text)
        assert wrong not in refused.text
    # Privacy checks it too (callers other than the gateway).
    with pytest.raises(grpc.aio.AioRpcError) as direct:
        await mesh["rights"].SetNoticeContact(
            rights_pb2.SetNoticeContactRequest(subject_id=people[0][1], channel=rights_pb2.CONTACT_CHANNEL_SMS, address="12345")
        )
    assert direct.value.code() == grpc.StatusCode.INVALID_ARGUMENT and (
        dict(direct.value.trailing_metadata() or ())["likeness-error-code"] == "INVALID_PHONE_NUMBER"
    )
    sealed = await _rows(mesh, "SELECT sealed FROM notice_contacts WHERE subject_id = %s AND channel = 'sms'", people[0][1])
    assert len(sealed) == 1 and numbers[0].encode() not in bytes(sealed[0][0]) and b"7700900101" not in bytes(sealed[0][0])
    # The third person removes the number again: no SMS for it.
    assert (await client.delete("/v1/me/sms-contact", headers=people[2][0])).status_code == 204
    assert await _rows(mesh, "SELECT 1 FROM notice_contacts WHERE subject_id = %s", people[2][1]) == []
    # Each change is a correction in the access log (the number is not in it); a refused number changed nothing.
    logged = await _rows(mesh, "SELECT actor, resource_ref, purpose FROM access_log WHERE subject_id = %s ORDER BY seq", people[2][1])
    assert logged[-2:] == [("gateway", "privacy/notice_contact/sms", "correction")] * 2
    first = await _rows(mesh, "SELECT resource_ref FROM access_log WHERE subject_id = %s AND purpose = 'correction'", people[0][1])
    assert first == [("privacy/notice_contact/sms",)]

    mesh["sms"].clear()
    title = "Security incident: export links"
    published = await mesh["admin"].PublishNotice(
        rights_pb2.PublishNoticeRequest(
            kind=rights_pb2.NOTICE_KIND_SECURITY_INCIDENT,
            title=title,
            body="An export link may have been seen by others.",
            subject_ids=[people[0][1], people[2][1]],
        )
    )
    assert (published.recipients, published.sms_sent, published.failed) == (2, 1, 0)
    texts = mesh["sms"].messages()
    assert [(t.to, t.sender) for t in texts] == [(numbers[0], "+15005550006")]  # not the second person, not the removed one
    assert texts[0].body == f"{title} - open the app for details." and len(texts[0].body) <= 160

    # In the person's export, and gone with the person.
    archive = zipfile.ZipFile(io.BytesIO((await client.get("/v1/me/export", headers=people[0][0])).content))
    document = json.loads(archive.read("privacy/rights.json"))
    assert [(c["channel"], c["address"]) for c in document["notice_contacts"]] == [("sms", numbers[0])]
    await _erase(mesh, people[0][0])
    assert await _rows(mesh, "SELECT 1 FROM notice_contacts WHERE subject_id = %s", people[0][1]) == []
    for auth, _ in people[1:]:
        await _erase(mesh, auth)


async def test_a_number_the_sms_gateway_refuses_is_a_counted_failure_and_never_logged(mesh: dict, capsys: Any) -> None:
    auth, subject = await _device(mesh)
    number = "+447700900199"
    assert (await mesh["client"].put("/v1/me/sms-contact", json={"phone_number": number}, headers=auth)).status_code == 204
    mesh["sms"].refuse.add(number)
    try:
        published = await mesh["admin"].PublishNotice(
            rights_pb2.PublishNoticeRequest(kind=rights_pb2.NOTICE_KIND_SECURITY_INCIDENT, title="t", body="b", subject_ids=[subject])
        )
    finally:
        mesh["sms"].refuse.discard(number)
    assert (published.recipients, published.sms_sent, published.failed) == (1, 0, 1)
    out = capsys.readouterr()
    assert "SMS_NUMBER_REFUSED" in out.out + out.err and "7700900199" not in out.out + out.err
    await _erase(mesh, auth)
