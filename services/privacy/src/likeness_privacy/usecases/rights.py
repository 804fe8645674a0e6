"""A person's rights beyond access and erasure: consent records, inquiries to operators, notices.

Messages, answers and contact addresses are sealed under the subject's data key (AES-256-GCM, bound to
the row they belong to), so crypto-shredding at erasure makes any missed copy unreadable. Every operator
read or answer of an inquiry is in the access log under the operator's identity.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog

from likeness_platform.categories import Category
from likeness_platform.crypto import open_sealed, seal
from likeness_platform.dataholder import ExportItem, Retention
from likeness_platform.db import as_uuid
from likeness_platform.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound
from likeness_platform.mail import Mail, MailSender
from likeness_privacy.adapters.repository.rights import RightsRepository
from likeness_privacy.domain import rights as rules
from likeness_privacy.domain.rights import ConsentRecord
from likeness_privacy.usecases.records import Records

log = structlog.get_logger("likeness.privacy.rights")


class PushSender(Protocol):
    async def send(self, device_token: str, title: str, body: str, collapse_id: str = "") -> None: ...


class SmsSender(Protocol):
    async def send(self, to: str, body: str) -> None: ...


@dataclass(frozen=True)
class RightsConfig:
    inquiry_max_chars: int = 4000
    inquiry_retention: timedelta = timedelta(days=365)
    # How many deliveries of one notice run at once.
    delivery_concurrency: int = 16


@dataclass(frozen=True)
class Delivery:
    recipients: int
    push_sent: int
    email_sent: int
    failed: int
    sms_sent: int = 0


def _aad(kind: str, row_id: str, field: str) -> bytes:
    return f"likeness:{kind}:{row_id}:{field}".encode()


class KeySource(Protocol):
    async def data_key(self, subject_id: str) -> tuple[bytes, str]: ...


class Rights:
    def __init__(
        self,
        repo: RightsRepository,
        keys: KeySource,
        records: Records,
        config: RightsConfig,
        push: PushSender | None = None,
        mail: MailSender | None = None,
        sms: SmsSender | None = None,
    ) -> None:
        self.repo = repo
        self._keys = keys
        self._records = records
        self.config = config
        self._push = push
        self._mail = mail
        self._sms = sms
        self._deliveries: set[asyncio.Task[Delivery]] = set()

    # Consents -----------------------------------------------------------------------------------

    async def set_consents(
        self, subject_id: str, changes: list[tuple[str, bool]], policy_version: str, source: str
    ) -> dict[str, ConsentRecord]:
        source = source or "app"
        rules.check_changes(changes, policy_version, source)
        current = rules.current_consents(await self.repo.consent_history(subject_id))
        # Only changes are recorded: the same answer sent again adds nothing (the history stays the size of what
        # the person decided, however often an app re-sends it).
        changed = [(purpose, granted) for purpose, granted in changes if not _same(current.get(purpose), granted, policy_version, source)]
        if not changed:
            return current
        await self.repo.add_consents(subject_id, changed, policy_version, source)
        return rules.current_consents(await self.repo.consent_history(subject_id))

    async def consents(self, subject_id: str) -> tuple[dict[str, ConsentRecord], list[ConsentRecord]]:
        history = await self.repo.consent_history(subject_id)
        return rules.current_consents(history), history

    async def check(self, subject_id: str, purpose: str) -> bool:
        if purpose not in rules.PURPOSES:
            raise InvalidArgument(f"unknown purpose {purpose!r}", "UNKNOWN_PURPOSE")
        return await self.repo.consent_granted(subject_id, purpose)

    # Inquiries ----------------------------------------------------------------------------------

    async def create_inquiry(self, subject_id: str, topic: str, message: str) -> dict[str, Any]:
        text = rules.check_inquiry(topic or "inquiry", message, self.config.inquiry_max_chars)
        key, key_id = await self._keys.data_key(subject_id)
        inquiry_id = str(uuid.uuid4())
        sealed = seal(key, text.encode(), key_id, _aad("inquiry", inquiry_id, "message"))
        row = await self.repo.add_inquiry(inquiry_id, subject_id, topic or "inquiry", sealed)
        return self._opened(row, key)

    async def my_inquiries(self, subject_id: str) -> list[dict[str, Any]]:
        rows = await self.repo.inquiries_of(subject_id)
        if not rows:
            return []
        key, _ = await self._keys.data_key(subject_id)
        return [self._opened(row, key) for row in rows]

    async def list_inquiries(self, operator: str, answered: bool, limit: int) -> list[dict[str, Any]]:
        """Operators: decrypted inquiries, each read logged under the operator before it is handed out."""
        limit = 50 if limit <= 0 else min(limit, 200)
        out = []
        for row in await self.repo.list_inquiries(answered, limit):
            subject_id = str(row["subject_id"])
            try:
                key, _ = await self._keys.data_key(subject_id)
            except DomainError:
                continue  # its erasure started since the query: nothing to show
            await self._records.access(subject_id, operator, f"privacy/inquiry/{row['inquiry_id']}", "support_inquiry")
            out.append(self._opened(row, key))
        return out

    async def answer(self, operator: str, inquiry_id: str, answer: str) -> dict[str, Any]:
        text = rules.check_answer(answer, self.config.inquiry_max_chars)
        row = await self.repo.get_inquiry(inquiry_id)
        if row is None:
            raise NotFound("no such inquiry (it may have been erased or expired)", "INQUIRY_NOT_FOUND")
        subject_id = str(row["subject_id"])
        key, key_id = await self._keys.data_key(subject_id)
        await self._records.access(subject_id, operator, f"privacy/inquiry/{inquiry_id}", "support_answer")
        sealed = seal(key, text.encode(), key_id, _aad("inquiry", str(row["inquiry_id"]), "answer"))
        updated = await self.repo.answer_inquiry(str(row["inquiry_id"]), subject_id, sealed, operator)
        if updated is None:
            raise FailedPrecondition("the inquiry has already been answered", "ALREADY_ANSWERED")
        return self._opened(updated, key)

    def _opened(self, row: Mapping[str, Any], key: bytes) -> dict[str, Any]:
        return open_inquiry(row, key, self.config.inquiry_retention)

    # Contacts and notices -----------------------------------------------------------------------

    async def set_contact(self, subject_id: str, channel: str, address: str) -> None:
        rules.check_contact(channel, address)
        if not address:
            await self.repo.set_contact(subject_id, channel, None)
            return
        key, key_id = await self._keys.data_key(subject_id)
        await self.repo.set_contact(subject_id, channel, seal(key, address.encode(), key_id, _aad("contact", subject_id, channel)))

    async def publish(
        self,
        operator: str,
        kind: str,
        title: str,
        body: str,
        policy_version: str,
        effective_at: datetime | None,
        subject_ids: list[str],
    ) -> tuple[dict[str, Any], Delivery]:
        """Store a notice for its subjects (in-app) and push / mail / text it to those with a channel.

        Nothing per person is kept beyond who an incident concerned: the in-app list is a query, and
        deliveries are counted, not recorded per subject."""
        now = datetime.now(UTC)
        rules.check_notice(kind, title, body, policy_version, effective_at, now)
        if kind == "policy_change" and subject_ids:
            raise InvalidArgument("a policy change is announced to everyone", "POLICY_CHANGE_FOR_EVERYONE")
        if len(subject_ids) > 100_000:
            raise InvalidArgument("at most 100000 subjects per notice; publish for everyone instead", "TOO_MANY_SUBJECTS")
        malformed = [s for s in subject_ids if as_uuid(s) is None]
        if malformed:
            # A typo must not quietly leave someone untold: nothing is published until every id is one.
            raise InvalidArgument(
                f"{len(malformed)} subject id(s) are not subject ids (UUIDs), e.g. {malformed[0][:40]!r}; nothing was published",
                "INVALID_SUBJECT_ID",
            )
        notice = {
            "notice_id": uuid.uuid4(),
            "kind": kind,
            "title": title.strip(),
            "body": body.strip(),
            "policy_version": policy_version if kind == "policy_change" else "",
            "effective_at": effective_at if kind == "policy_change" else None,
            "everyone": not subject_ids,
            "published_by": operator,
            "published_at": now,
        }
        recipients = await self.repo.add_notice(notice, subject_ids)
        # A caller that gives up (deadline, cancel) does not stop the deliveries half-way: they run to the end.
        task = asyncio.create_task(self._deliver(notice, recipients))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)
        delivery = await asyncio.shield(task)
        log.info(
            "notice_published",
            kind=kind,
            recipients=recipients,
            push_sent=delivery.push_sent,
            email_sent=delivery.email_sent,
            sms_sent=delivery.sms_sent,
            failed=delivery.failed,
        )
        return notice, delivery

    async def _deliver(self, notice: Mapping[str, Any], recipients: int) -> Delivery:
        counts = {"apns": 0, "email": 0, "sms": 0, "failed": 0}
        gate = asyncio.Semaphore(self.config.delivery_concurrency)
        created_before = None if notice["kind"] == "policy_change" else notice["published_at"]

        async def one(subject_id: str, channel: str, sealed: bytes) -> None:
            async with gate:
                try:
                    key, _ = await self._keys.data_key(subject_id)
                    address = open_sealed(key, sealed, _aad("contact", subject_id, channel)).decode()
                    if channel == "apns" and self._push is not None:
                        await self._push.send(address, notice["title"], notice["body"], str(notice["notice_id"]))
                    elif channel == "email" and self._mail is not None and self._mail.configured:
                        await self._mail.send(Mail(address, notice["title"], _mail_body(notice)))
                    elif channel == "sms" and self._sms is not None and notice["kind"] == "security_incident":
                        # Texts cost per message: incidents only; a policy change is in the app, pushed and mailed.
                        await self._sms.send(address, sms_text(notice["title"]))
                    else:
                        return
                    counts[channel] += 1
                except DomainError as exc:
                    counts["failed"] += 1
                    log.warning("notice_delivery_failed", channel=channel, code=exc.code)
                    if exc.code == "PUSH_TOKEN_INVALID":
                        # APNs says the app is gone from that device: keep no token that reaches no one.
                        await self.repo.set_contact(subject_id, channel, None)
                except Exception as exc:
                    # One contact that cannot be opened (a data key the KEK does not unwrap, a damaged row) is a
                    # failed delivery, counted and logged by type: it must not stop the notice reaching everyone else.
                    counts["failed"] += 1
                    log.error("notice_delivery_failed", channel=channel, error=type(exc).__name__)

        tasks: list[asyncio.Task[None]] = []
        async for subject_id, channel, sealed in self.repo.contacts(str(notice["notice_id"]), notice["everyone"], created_before):
            tasks.append(asyncio.create_task(one(subject_id, channel, sealed)))
            if len(tasks) >= 1000:
                await asyncio.gather(*tasks)
                tasks.clear()
        await asyncio.gather(*tasks)
        return Delivery(recipients, counts["apns"], counts["email"], counts["failed"], counts["sms"])

    async def notices(self, subject_id: str) -> list[tuple[dict[str, Any], bool]]:
        """(notice, accepted) for the subject, newest first; accepted: it accepted the policy version announced."""
        rows = await self.repo.notices_for(subject_id)
        history = await self.repo.consent_history(subject_id)
        accepted = {r.policy_version for r in history if r.purpose == rules.PRIVACY_POLICY and r.granted}
        return [(row, bool(row["policy_version"]) and row["policy_version"] in accepted) for row in rows]

    async def accept_policy(self, subject_id: str, notice_id: str) -> ConsentRecord:
        notice = await self.repo.get_notice(notice_id)
        if notice is None or notice["kind"] != "policy_change":
            raise NotFound("no such policy-change notice", "NOTICE_NOT_FOUND")
        if not any(str(n["notice_id"]) == str(notice["notice_id"]) for n in await self.repo.notices_for(subject_id)):
            raise NotFound("no such policy-change notice", "NOTICE_NOT_FOUND")
        current = rules.current_consents(await self.repo.consent_history(subject_id))
        if _same(current.get(rules.PRIVACY_POLICY), True, notice["policy_version"], "notice"):
            return current[rules.PRIVACY_POLICY]  # accepted already: nothing new to record
        await self.repo.add_consents(subject_id, [(rules.PRIVACY_POLICY, True)], notice["policy_version"], "notice")
        return rules.current_consents(await self.repo.consent_history(subject_id))[rules.PRIVACY_POLICY]


def _same(record: ConsentRecord | None, granted: bool, policy_version: str, source: str) -> bool:
    return record is not None and (record.granted, record.policy_version, record.source) == (granted, policy_version, source)


def open_inquiry(row: Mapping[str, Any], key: bytes, retention: timedelta) -> dict[str, Any]:
    """An inquiry row with its message and answer decrypted, and when it will be deleted."""
    iid = str(row["inquiry_id"])
    out = dict(row)
    out["inquiry_id"] = iid
    out["subject_id"] = str(row["subject_id"])
    out["message"] = open_sealed(key, bytes(row["message"]), _aad("inquiry", iid, "message")).decode()
    out["answer"] = open_sealed(key, bytes(row["answer"]), _aad("inquiry", iid, "answer")).decode() if row["answer"] else ""
    out["expires_at"] = row["created_at"] + retention
    return out


SMS_MAX_CHARS = 160
_SMS_TAIL = " - open the app for details."


def sms_text(title: str) -> str:
    """One short text: the title (cut to fit one 160-character message) and where to read the rest."""
    room = SMS_MAX_CHARS - len(_SMS_TAIL)
    head = title if len(title) <= room else title[: room - 3].rstrip() + "..."
    return head + _SMS_TAIL


def _mail_body(notice: Mapping[str, Any]) -> str:
    lines = [notice["body"], ""]
    if notice["kind"] == "policy_change" and notice["effective_at"] is not None:
        lines.append(f"The new policy ({notice['policy_version']}) takes effect on {notice['effective_at']:%Y-%m-%d}.")
    lines.append("You can read this notice in the app as well.")
    return "\n".join(lines)


class RightsData:
    """What privacy keeps for a person's rights, as part of privacy's own DataHolder."""

    def __init__(self, repo: RightsRepository, keys: KeySource, config: RightsConfig) -> None:
        self._repo = repo
        self._keys = keys
        self._config = config

    async def inventory(self, subject_id: str) -> dict[str, int]:
        return await self._repo.inventory(subject_id)

    async def export(self, subject_id: str) -> AsyncIterator[ExportItem]:
        history = await self._repo.consent_history(subject_id)
        inquiries = []
        rows = await self._repo.inquiries_of(subject_id)
        if rows:
            key, _ = await self._keys.data_key(subject_id)
            opened = (open_inquiry(row, key, self._config.inquiry_retention) for row in rows)
            inquiries = [{k: v for k, v in item.items() if k not in ("subject_id", "answered_by")} for item in opened]
        notices = await self._repo.notices_for(subject_id)
        contacts = []
        sealed_contacts = await self._repo.contacts_of(subject_id)
        if sealed_contacts:
            key, _ = await self._keys.data_key(subject_id)
            contacts = [
                {"channel": channel, "address": open_sealed(key, sealed, _aad("contact", subject_id, channel)).decode(), "updated_at": at}
                for channel, sealed, at in sealed_contacts
            ]
        document = {
            "consents": [r.__dict__ for r in history],
            "inquiries": inquiries,
            # Where notices reach the person: push token, email address, phone number for SMS.
            "notice_contacts": contacts,
            "notices": [
                {k: notice[k] for k in ("notice_id", "kind", "title", "body", "policy_version", "effective_at", "published_at")}
                for notice in notices
            ],
        }
        yield ExportItem(Category.RIGHTS, "rights.json", "application/json", json.dumps(document, indent=2, default=str).encode())

    async def erase(self, subject_id: str) -> dict[str, int]:
        return await self._repo.erase(subject_id)

    async def sweep(self, now: datetime) -> dict[str, int]:
        # Inquiries go when their configured retention is over, whatever cutoff a Sweep asks for.
        return {Category.INQUIRIES: await self._repo.sweep_inquiries(now - self._config.inquiry_retention)}

    async def retention(self) -> list[Retention]:
        count, age = await self._repo.oldest_inquiry()
        return [Retention(Category.INQUIRIES, count, age, self._config.inquiry_retention.total_seconds())]
