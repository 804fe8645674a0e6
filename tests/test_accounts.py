"""Accounts beside device tokens and correction (issue #22 items 1-2), on the real gateway and privacy over mTLS,
with a local fake SMTP server: sign-up and verification codes, linking two devices to one account and erasing
through one, password hashing, login throttling per account and per network, no account enumeration, password
reset, and corrections recorded in the access log."""

from __future__ import annotations

import asyncio
import io
import json
import re
import statistics
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from argon2 import extract_parameters

from likeness_gateway.adapters.rights_client import RightsClient
from likeness_gateway.domain.tokens import token_hash
from likeness_gateway.errors import ApiError
from likeness_privacy.usecases import PrivacyUseCases
from tests.support.fake_smtp import FakeSmtp
from tests.support.services import Started, free_port, start_gateway, start_privacy

DEVICE = {
    "platform": "ios",
    "model": "iPhone15,2",
    "os_version": "18.1",
    "app_version": "2.0.0",
    "language": "en-GB",
    "age_confirmed": True,
}
PASSWORD = "correct horse battery staple"
ACCOUNT_KEY = "k" * 16 + "test-account-key-0123456789"


@dataclass
class Mesh:
    gw: Any
    client: httpx.AsyncClient
    privacy: PrivacyUseCases
    smtp: FakeSmtp
    # Every code mailed, to check none of them reached a log line.
    codes: list[str]

    async def device(self) -> dict[str, str]:
        reply = await self.client.post("/v1/devices", json=DEVICE)
        assert reply.status_code == 201, reply.text
        return {"Authorization": f"Bearer {reply.json()['token']}"}

    async def subject(self, auth: dict[str, str]) -> str:
        device = await self.gw.devices.by_token_hash(token_hash(auth["Authorization"].split()[1]))
        return str(device.subject_id)

    async def code(self, to: str) -> str:
        mail = await self.smtp.next()
        assert mail.recipients == [to]
        found = re.search(r"\b(\d{6})\b", mail.body)
        assert found, mail.body
        self.codes.append(found.group(1))
        return found.group(1)

    async def sign_up(self, auth: dict[str, str], email: str, verify: bool = True) -> None:
        reply = await self.client.post("/v1/account", json={"email": email, "password": PASSWORD}, headers=auth)
        assert reply.status_code == 202, reply.text
        code = await self.code(email)
        if verify:
            reply = await self.client.post("/v1/account/verify", json={"code": code}, headers=auth)
            assert reply.status_code == 200 and reply.json()["email_verified"], reply.text

    async def rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        async with self.gw.devices.pool.connection() as conn:
            return await (await conn.execute(query, args)).fetchall()

    async def access_log(self, subject_id: str) -> list[tuple[str, str, str]]:
        async with self.privacy.repo.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT actor, resource_ref, purpose FROM access_log WHERE subject_id = %s ORDER BY seq", (uuid.UUID(subject_id),)
            )
            return list(await cur.fetchall())


@asynccontextmanager
async def mesh(database_url: str, **overrides: Any) -> AsyncIterator[Mesh]:
    started = Started()
    try:
        async with FakeSmtp() as smtp:
            privacy_port = free_port()
            settings = {
                "account_key": ACCOUNT_KEY,
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp.port,
                "smtp_security": "none",
                "mail_from": "Likeness <no-reply@likeness.test>",
                "argon2_time_cost": 1,
                "argon2_memory_kib": 8192,
                "trusted_proxies": 1,
                **overrides,
            }
            gw, client, gateway_grpc = await start_gateway(database_url, {"privacy": f"127.0.0.1:{privacy_port}"}, started, **settings)
            # Privacy mails notices through the same fake server.
            mail = {k: settings[k] for k in ("smtp_host", "smtp_port", "smtp_security", "mail_from")}
            privacy, _ = await start_privacy(database_url, {"gateway": gateway_grpc}, started, port=privacy_port, **mail)
            # Sign-ins erase the device's earlier anonymous subject: finish those erasures before leaving, so no
            # erasure this test started stays open for later tests (privacy's background loop is off here).
            started_erasures: list[str] = []

            async def note_erasure(response: httpx.Response) -> None:
                if response.request.url.path == "/v1/account/login" and response.status_code == 200:
                    await response.aread()
                    if erasure_id := response.json()["previous_erasure_id"]:
                        started_erasures.append(erasure_id)

            client.event_hooks["response"].append(note_erasure)
            yield Mesh(gw, client, privacy, smtp, [])
            for erasure_id in started_erasures:
                await _poll(lambda erasure_id=erasure_id: privacy.erasures.drive(erasure_id), "erased")
    finally:
        await started.close()


def _email() -> str:
    return f"ana.{uuid.uuid4().hex[:8]}@example.org"


async def _poll(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"still not {what} after {timeout} s"
        await asyncio.sleep(0.05)


async def test_two_linked_devices_share_one_subject_and_cancelling_erases_both(database_url: str, capsys: Any) -> None:
    async with mesh(database_url) as m:
        phone, tablet = await m.device(), await m.device()
        email = _email()
        weak = await m.client.post("/v1/account", json={"email": email, "password": "Password123!"}, headers=phone)
        assert weak.status_code == 400 and weak.json()["error"]["code"] == "WEAK_PASSWORD"
        assert "common_password" in weak.json()["error"]["details"]["problems"]

        await m.sign_up(phone, email, verify=False)
        # Not confirmed yet: there is no account to sign in to, nor to see.
        early = await m.client.post("/v1/account/login", json={"email": email, "password": PASSWORD}, headers=tablet)
        assert early.status_code == 401 and early.json()["error"]["code"] == "INVALID_CREDENTIALS"
        assert (await m.client.get("/v1/account", headers=phone)).status_code == 404
        resent = await m.client.post("/v1/account/verify:resend", headers=phone)
        assert resent.status_code == 202
        code = await m.code(email)
        wrong = await m.client.post("/v1/account/verify", json={"code": f"{(int(code) + 1) % 1_000_000:06d}"}, headers=phone)
        assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "INVALID_CODE"
        verified = await m.client.post("/v1/account/verify", json={"code": code}, headers=phone)
        assert verified.status_code == 200 and verified.json()["email_verified"]
        # The code works once.
        again = await m.client.post("/v1/account/verify", json={"code": code}, headers=phone)
        assert again.status_code == 400

        # At rest: a keyed hash and ciphertext, an argon2id hash with the configured parameters, a hashed code.
        [(email_hash, sealed, password_hash)] = await m.rows(
            "SELECT email_hash, email_sealed, password_hash FROM accounts WHERE subject_id = %s", uuid.UUID(await m.subject(phone))
        )
        assert email.encode() not in bytes(sealed) and email.split("@")[0] not in email_hash
        params = extract_parameters(password_hash)
        assert password_hash.startswith("$argon2id$") and (params.time_cost, params.memory_cost) == (1, 8192)

        bad = await m.client.post("/v1/account/login", json={"email": email, "password": PASSWORD + "!"}, headers=tablet)
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "INVALID_CREDENTIALS"
        tablet_subject = await m.subject(tablet)
        signed_in = await m.client.post("/v1/account/login", json={"email": email.upper(), "password": PASSWORD}, headers=tablet)
        assert signed_in.status_code == 200, signed_in.text
        # The tablet's own anonymous subject is erased; the tablet now shares the phone's subject.
        assert signed_in.json()["previous_erasure_id"]
        assert await m.subject(tablet) == await m.subject(phone) != tablet_subject
        assert (await m.privacy.subjects.get(tablet_subject)).state in ("erasing", "erased")

        account = await m.client.get("/v1/account", headers=tablet)
        assert account.status_code == 200 and account.json()["email"] == email and account.json()["devices"] == 2

        # The export (through either device) holds the address.
        exported = await m.client.get("/v1/me/export", headers=tablet)
        assert exported.status_code == 200
        with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
            holder_files = [n for n in archive.namelist() if n.endswith("account.json")]
            assert holder_files, archive.namelist()
            assert json.loads(archive.read(holder_files[0]))["email"] == email

        subject = await m.subject(phone)
        cancelled = await m.client.delete("/v1/account", headers=phone)
        assert cancelled.status_code == 202, cancelled.text
        for auth in (phone, tablet):
            refused = await m.client.get("/v1/me", headers=auth)
            assert refused.status_code == 401
        erasure_id = cancelled.json()["erasure_id"]
        await _poll(lambda: m.privacy.erasures.drive(erasure_id), "erased")
        assert await m.rows("SELECT 1 FROM accounts WHERE subject_id = %s", uuid.UUID(subject)) == []
        assert await m.rows("SELECT 1 FROM devices WHERE subject_id = %s", uuid.UUID(subject)) == []
        erasure = await m.privacy.erasures.get(erasure_id)
        receipt = next(r for r in erasure.receipts if r.holder == "gateway")
        assert receipt.erased.get("accounts") == 1 and receipt.erased.get("devices") == 2
        assert not any(receipt.remaining.values())
        # The address no longer signs anyone in (and answers like any unknown address).
        fresh = await m.device()
        gone = await m.client.post("/v1/account/login", json={"email": email, "password": PASSWORD}, headers=fresh)
        assert gone.status_code == 401 and gone.json()["error"]["code"] == "INVALID_CREDENTIALS"
    # Invariant 1 for accounts: no address, password or code in any log line of the gateway or privacy.
    logged = "".join(capsys.readouterr())
    assert "/likeness.privacy.v1.Privacy/GetDataKey" in logged  # the logs were captured (as key=value or JSON lines)
    for secret in (email, email.split("@")[0], PASSWORD, *m.codes):
        assert secret not in logged, "a secret reached the logs"


async def test_login_is_throttled_per_account_and_per_network(database_url: str) -> None:
    async with mesh(database_url, login_attempts_per_account=3, login_attempts_per_prefix=6) as m:
        device = await m.device()
        email = _email()
        await m.sign_up(await m.device(), email)

        async def attempt(address: str, ip: str, password: str = "wrong password 123") -> httpx.Response:
            return await m.client.post(
                "/v1/account/login", json={"email": address, "password": password}, headers={**device, "X-Forwarded-For": ip}
            )

        # Per account: the fourth try in the window is refused from any network, even with the right password,
        # and an address without an account is throttled the same way.
        for address in (email, _email()):
            assert [(await attempt(address, f"198.51.100.{i}")).status_code for i in range(3)] == [401, 401, 401]
            refused = await attempt(address, "203.0.113.50", PASSWORD)
            assert refused.status_code == 429 and refused.json()["error"]["details"]["scope"] == "login_account"
            assert int(refused.headers["Retry-After"]) > 0

        # Per network: /24 for IPv4 (different hosts and addresses count together), /56 for IPv6.
        for same_net, other_net in (
            ([f"192.0.2.{i}" for i in range(1, 7)], "192.0.3.1"),
            ([f"2001:db8:0:{i:x}::1" for i in range(0, 0xF0, 0x28)], "2001:db8:0:100::1"),
        ):
            assert [(await attempt(_email(), ip)).status_code for ip in same_net] == [401] * 6
            refused = await attempt(_email(), same_net[0])
            assert refused.status_code == 429 and refused.json()["error"]["details"]["scope"] == "login_network"
            assert (await attempt(_email(), other_net)).status_code == 401


async def test_answers_do_not_tell_whether_an_address_has_an_account(database_url: str) -> None:
    # Realistic hashing cost so the time a wrong password takes is measurable next to a lookup.
    async with mesh(database_url, argon2_time_cost=2, argon2_memory_kib=19456, login_attempts_per_account=1000) as m:
        taken, free = _email(), _email()
        await m.sign_up(await m.device(), taken)

        # Sign-up: the same answer; the owner of the taken address is told, the new one gets a code.
        answers, devices = [], []
        for address in (taken, free):
            devices.append(await m.device())
            reply = await m.client.post("/v1/account", json={"email": address, "password": PASSWORD}, headers=devices[-1])
            answers.append((reply.status_code, reply.json()))
        assert answers[0] == answers[1] and answers[0][0] == 202
        # Nor can the signing-up device tell afterwards: no account to see yet, and a sign-up waiting for a code in
        # both cases (it is in the device's export either way).
        seen = [
            ((await m.client.get("/v1/account", headers=d)).status_code, (await m.client.get("/v1/me", headers=d)).json()["account"])
            for d in devices
        ]
        assert seen == [(404, None), (404, None)]
        waiting = await m.rows(
            "SELECT count(*) FROM account_signups WHERE subject_id = ANY(%s)", [uuid.UUID(await m.subject(d)) for d in devices]
        )
        assert waiting == [(2,)]
        wrong = [(await m.client.post("/v1/account/verify", json={"code": "000000"}, headers=d)).json() for d in devices]
        assert wrong[0] == wrong[1]
        mails = {mail.recipients[0]: mail for mail in [await m.smtp.next(), await m.smtp.next()]}
        assert "already has one" in mails[taken].body and not re.search(r"\d{6}", mails[taken].body)
        assert re.search(r"\b\d{6}\b", mails[free].body)

        # Login: the same code and message, and about the same time (a decoy hash is checked for unknown addresses).
        device = await m.device()

        async def login(address: str) -> tuple[float, int, dict[str, Any]]:
            began = time.perf_counter()
            reply = await m.client.post("/v1/account/login", json={"email": address, "password": "not the password!"}, headers=device)
            return time.perf_counter() - began, reply.status_code, reply.json()

        known, unknown = [], []
        for _ in range(7):
            for address, into in ((taken, known), (_email(), unknown)):
                elapsed, status, body = await login(address)
                assert (status, body["error"]["code"]) == (401, "INVALID_CREDENTIALS")
                into.append((elapsed, body["error"]["message"]))
        assert {msg for _, msg in known} == {msg for _, msg in unknown}
        known_s, unknown_s = statistics.median(t for t, _ in known), statistics.median(t for t, _ in unknown)
        print(f"login median: known address {known_s * 1000:.1f} ms, unknown address {unknown_s * 1000:.1f} ms")
        # Without the decoy an unknown address would answer after one lookup, many times faster than argon2.
        assert unknown_s > 0.6 * known_s, (known_s, unknown_s)

        # Password reset: the same answer; only an address with an account gets mail.
        replies = [
            await m.client.post("/v1/account/password-reset", json={"email": address}, headers=device) for address in (taken, _email())
        ]
        first, second = ((r.status_code, r.json()) for r in replies)
        assert first == second and first[0] == 202
        # Every mail handed over has been accepted by the server once the outbox is drained.
        await m.gw.accounts.outbox.drain()
        assert [mail.recipients for mail in m.smtp.drain()] == [[taken]]


async def test_password_reset_by_emailed_code(database_url: str) -> None:
    async with mesh(database_url, account_code_max_attempts=3, login_attempts_per_account=10) as m:
        email = _email()
        phone = await m.device()
        await m.sign_up(phone, email)
        other = await m.device()

        async def confirm(code: str, password: str = "a brand new passphrase 42") -> httpx.Response:
            return await m.client.post(
                "/v1/account/password-reset/confirm", json={"email": email, "code": code, "password": password}, headers=other
            )

        assert (await m.client.post("/v1/account/password-reset", json={"email": email}, headers=other)).status_code == 202
        code = await m.code(email)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        # Wrong tries are counted: at the limit the code dies, and even the right one no longer works.
        assert [(await confirm(wrong)).status_code for _ in range(3)] == [400, 400, 400]
        dead = await confirm(code)
        assert dead.status_code == 400 and dead.json()["error"]["code"] == "INVALID_CODE"
        # Codes are stored as keyed hashes only.
        assert not await m.rows("SELECT 1 FROM account_codes WHERE code_hash LIKE %s", f"%{code}%")

        assert (await m.client.post("/v1/account/password-reset", json={"email": email}, headers=other)).status_code == 202
        code = await m.code(email)
        weak = await confirm(code, "qwerty123")
        assert weak.status_code == 400 and weak.json()["error"]["code"] == "WEAK_PASSWORD"
        assert (await confirm(code)).status_code == 204
        # Whoever held the old password is signed out: the account's devices stop working.
        assert (await m.client.get("/v1/me", headers=phone)).status_code == 401
        old = await m.client.post("/v1/account/login", json={"email": email, "password": PASSWORD}, headers=other)
        assert old.status_code == 401
        new = await m.client.post("/v1/account/login", json={"email": email, "password": "a brand new passphrase 42"}, headers=other)
        assert new.status_code == 200, new.text


async def test_corrections_are_made_and_recorded_in_the_access_log(database_url: str) -> None:
    async with mesh(database_url) as m:
        # The API describes the account routes and the correction when accounts are on.
        paths = (await m.client.get("/openapi.json")).json()["paths"]
        assert {"/v1/account", "/v1/account/login", "/v1/account/password-reset/confirm"} <= set(paths)
        assert {"get", "patch"} <= set(paths["/v1/me"])
        device = await m.device()
        no_account = await m.client.patch("/v1/me", json={"email": _email()}, headers=device)
        assert no_account.status_code == 404 and no_account.json()["error"]["code"] == "NO_ACCOUNT"
        unknown = await m.client.patch("/v1/me", json={"model": "Pixel 9"}, headers=device)
        assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "INVALID_REQUEST"
        bad = await m.client.patch("/v1/me", json={"language": "en_GB\n"}, headers=device)
        assert bad.status_code == 400

        corrected = await m.client.patch("/v1/me", json={"language": "fr-FR", "app_version": "2.1.0"}, headers=device)
        assert corrected.status_code == 200, corrected.text
        assert (corrected.json()["device"]["language"], corrected.json()["device"]["app_version"]) == ("fr-FR", "2.1.0")
        assert (await m.client.get("/v1/me", headers=device)).json()["device"]["language"] == "fr-FR"
        subject = await m.subject(device)
        device_id = corrected.json()["device"]["device_id"]
        log = await m.access_log(subject)
        assert ("gateway", f"gateway/device/{device_id}/language", "correction") in log
        assert ("gateway", f"gateway/device/{device_id}/app_version", "correction") in log

        old, new = _email(), _email()
        await m.sign_up(device, old)
        pending = await m.client.patch("/v1/me", json={"email": new}, headers=device)
        assert pending.status_code == 200 and pending.json()["email_verification"] == "check_email"
        # Until the new address is confirmed the old one stays.
        assert pending.json()["account"]["email"] == old and pending.json()["account"]["pending_email"] == new
        code = await m.code(new)
        done = await m.client.post("/v1/account/verify", json={"code": code}, headers=device)
        assert done.status_code == 200 and done.json()["email"] == new and done.json()["pending_email"] is None
        corrections = [entry for entry in await m.access_log(subject) if entry[2] == "correction"]
        assert len(corrections) == 3 and corrections[-1][1].endswith("/email")
        # The old address no longer finds the account; the new one does.
        other = await m.device()
        gone = await m.client.post("/v1/account/login", json={"email": old, "password": PASSWORD}, headers=other)
        assert gone.status_code == 401
        found = await m.client.post("/v1/account/login", json={"email": new, "password": PASSWORD}, headers=other)
        assert found.status_code == 200


async def test_incident_notices_reach_the_confirmed_address_and_follow_its_correction(database_url: str) -> None:
    async with mesh(database_url) as m:
        device, bystander, unverified = await m.device(), await m.device(), await m.device()
        old, new, other, waiting = _email(), _email(), _email(), _email()
        await m.sign_up(device, old)
        await m.sign_up(bystander, other)
        await m.sign_up(unverified, waiting, verify=False)
        subject = await m.subject(device)

        async def incident(*subjects: str) -> list[list[str]]:
            _, delivery = await m.privacy.rights.publish(
                "admin", "security_incident", "A security incident", "What happened and what to do.", "", None, list(subjects)
            )
            received = [(await m.smtp.next()).recipients for _ in range(delivery.email_sent)]
            assert m.smtp.drain() == [] and delivery.failed == 0
            return received

        # Only the affected subject's confirmed address gets the incident email; a sign-up waiting for its
        # code is no contact yet.
        assert await incident(subject) == [[old]]
        assert await incident(subject, await m.subject(unverified)) == [[old]]

        # While a correction waits for its code, notices still go to the confirmed address; once it is
        # confirmed, to the new one only.
        pending = await m.client.patch("/v1/me", json={"email": new}, headers=device)
        assert pending.status_code == 200, pending.text
        code = await m.code(new)
        assert await incident(subject) == [[old]]
        done = await m.client.post("/v1/account/verify", json={"code": code}, headers=device)
        assert done.status_code == 200 and done.json()["email"] == new, done.text
        assert await incident(subject) == [[new]]
        # Privacy keeps one contact per subject and channel, sealed (the address is not in the clear).
        async with m.privacy.repo.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT sealed FROM notice_contacts WHERE subject_id = %s AND channel = 'email'", (uuid.UUID(subject),)
            )
            sealed = await cur.fetchall()
        assert len(sealed) == 1 and new.encode() not in bytes(sealed[0][0])

        # Cancelling the account erases the subject, and its contact with it.
        cancelled = await m.client.delete("/v1/account", headers=device)
        assert cancelled.status_code == 202, cancelled.text
        erasure_id = cancelled.json()["erasure_id"]
        await _poll(lambda: m.privacy.erasures.drive(erasure_id), "erased")
        assert await incident(subject, await m.subject(bystander)) == [[other]]
        for auth in (bystander, unverified):
            erased = await m.client.delete("/v1/me", headers=auth)
            assert erased.status_code == 202, erased.text
            await _poll(lambda erased=erased: m.privacy.erasures.drive(erased.json()["erasure_id"]), "erased")


async def test_a_sign_up_waits_for_privacy_to_take_the_notice_address(database_url: str, monkeypatch: Any) -> None:
    async with mesh(database_url) as m:
        device, email = await m.device(), _email()
        await m.sign_up(device, email, verify=False)
        code = m.codes[-1]
        original = RightsClient.set_notice_email

        async def unavailable(self: RightsClient, subject_id: str, address: str) -> None:
            raise ApiError(503, "UPSTREAM_UNAVAILABLE", "privacy is unavailable; retry")

        monkeypatch.setattr(RightsClient, "set_notice_email", unavailable)
        refused = await m.client.post("/v1/account/verify", json={"code": code}, headers=device)
        assert refused.status_code == 503, refused.text
        # No account that incident emails would miss: the sign-up and its code wait for the retry.
        assert (await m.client.get("/v1/account", headers=device)).json()["error"]["code"] == "NO_ACCOUNT"
        monkeypatch.setattr(RightsClient, "set_notice_email", original)
        done = await m.client.post("/v1/account/verify", json={"code": code}, headers=device)
        assert done.status_code == 200 and done.json()["email"] == email, done.text
        _, delivery = await m.privacy.rights.publish("admin", "security_incident", "Incident", "b", "", None, [await m.subject(device)])
        assert delivery.email_sent == 1 and (await m.smtp.next()).recipients == [email]
        erased = await m.client.delete("/v1/account", headers=device)
        await _poll(lambda: m.privacy.erasures.drive(erased.json()["erasure_id"]), "erased")


async def test_unconfirmed_sign_ups_and_expired_codes_are_swept(database_url: str) -> None:
    async with mesh(database_url, account_unverified_ttl_hours=1) as m:
        confirmed, unconfirmed = await m.device(), await m.device()
        email = _email()
        await m.sign_up(confirmed, email)
        await m.sign_up(unconfirmed, _email(), verify=False)
        ids = [uuid.UUID(await m.subject(auth)) for auth in (confirmed, unconfirmed)]
        # A reset code for the account, then everything made two hours ago and the code expired.
        assert (await m.client.post("/v1/account/password-reset", json={"email": email}, headers=confirmed)).status_code == 202
        await m.code(email)
        for table in ("accounts", "account_signups"):
            await m.rows(f"UPDATE {table} SET created_at = now() - interval '2 hours' WHERE subject_id = ANY(%s) RETURNING 1", ids)
        await m.rows(
            "UPDATE account_codes SET expires_at = now() - interval '1 second'"
            " WHERE account_id IN (SELECT account_id FROM accounts WHERE subject_id = ANY(%s)) RETURNING 1",
            ids,
        )
        swept = await m.gw.accounts.repo.sweep({})
        assert swept == {"accounts": 0, "account_codes": 1, "account_signups": 1}
        # The confirmed account stays (accounts last until cancelled); the waiting sign-up is gone.
        assert await m.rows("SELECT subject_id FROM accounts WHERE subject_id = ANY(%s)", ids) == [(ids[0],)]
        assert await m.rows("SELECT 1 FROM account_signups WHERE subject_id = ANY(%s)", ids) == []


async def test_accounts_are_off_without_a_mail_server(database_url: str) -> None:
    async with mesh(database_url, smtp_host="") as m:
        device = await m.device()
        reply = await m.client.post("/v1/account", json={"email": _email(), "password": PASSWORD}, headers=device)
        assert reply.status_code == 404
        assert "/v1/account" not in (await m.client.get("/openapi.json")).json()["paths"]
        correction = await m.client.patch("/v1/me", json={"email": _email()}, headers=device)
        assert correction.status_code == 404 and correction.json()["error"]["code"] == "ACCOUNTS_DISABLED"
        # Device corrections do not need accounts.
        assert (await m.client.patch("/v1/me", json={"language": "de"}, headers=device)).status_code == 200


async def test_addresses_as_keyboards_type_them_and_no_invisible_characters(database_url: str) -> None:
    """A phone keyboard's trailing space (or a pasted leading one) does not make an address invalid: sign-up, sign-in,
    reset and correction take it trimmed. Invisible direction and zero-width characters, which make one address
    look like another in the app and in mail clients, are refused."""
    async with mesh(database_url) as m:
        first = await m.device()
        email = _email()
        reply = await m.client.post("/v1/account", json={"email": f" {email} ", "password": PASSWORD}, headers=first)
        assert reply.status_code == 202, reply.text
        code = await m.code(email)  # mailed to the trimmed address
        assert (await m.client.post("/v1/account/verify", json={"code": code}, headers=first)).json()["email"] == email
        second = await m.device()
        reply = await m.client.post("/v1/account/login", json={"email": f"{email.upper()} ", "password": PASSWORD}, headers=second)
        assert reply.status_code == 200, reply.text
        reply = await m.client.post("/v1/account/password-reset", json={"email": f"\t{email}\n"}, headers=second)
        assert reply.status_code == 202, reply.text
        await m.code(email)
        corrected = _email()
        reply = await m.client.patch("/v1/me", json={"email": f"{corrected} "}, headers=second)
        assert reply.status_code == 200 and reply.json()["account"]["pending_email"] == corrected, reply.text
        await m.code(corrected)

        other = await m.device()
        for invisible in ("\u202e", "\u200b", "\u2066", "\ufeff", "\u200e"):
            spoof = f"ana{invisible}@example.org"
            for method, path, body in (
                ("POST", "/v1/account", {"email": spoof, "password": PASSWORD}),
                ("POST", "/v1/account/login", {"email": spoof, "password": PASSWORD}),
                ("POST", "/v1/account/password-reset", {"email": spoof}),
                ("PATCH", "/v1/me", {"email": spoof}),
            ):
                reply = await m.client.request(method, path, json=body, headers=second if method == "PATCH" else other)
                assert reply.status_code == 400 and reply.json()["error"]["code"] == "INVALID_REQUEST", (invisible, path, reply.text)
