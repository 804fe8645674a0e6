"""Consents, inquiries and notices: the rules, free of storage and transport."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from likeness_platform.errors import InvalidArgument

# What a person can consent to. A purpose never recorded counts as not granted: processing that needs
# consent is off until the person turns it on.
AI_GENERATION_THIRD_PARTY = "ai_generation_third_party"
PRIVACY_POLICY = "privacy_policy"
PURPOSES = (AI_GENERATION_THIRD_PARTY, PRIVACY_POLICY)
SOURCES = ("app", "notice", "operator")

TOPICS = ("inquiry", "complaint")
# Policy changes are announced at least this long before they take effect (the policies' promise).
POLICY_NOTICE_MIN = timedelta(days=30)
KINDS = ("security_incident", "policy_change")
CHANNELS = ("apns", "email", "sms")

_VERSION = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_APNS_TOKEN = re.compile(r"^[0-9a-fA-F]{64,200}$")
# A phone number in E.164: +, a country code that does not start with 0, at most 15 digits in all.
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")


@dataclass(frozen=True)
class ConsentRecord:
    purpose: str
    granted: bool
    policy_version: str
    source: str
    recorded_at: datetime


def current_consents(history: list[ConsentRecord]) -> dict[str, ConsentRecord]:
    """The latest record of each purpose (`history` oldest first)."""
    latest: dict[str, ConsentRecord] = {}
    for record in history:
        latest[record.purpose] = record
    return latest


def check_changes(changes: list[tuple[str, bool]], policy_version: str, source: str) -> None:
    if not changes:
        raise InvalidArgument("give at least one consent change", "NO_CONSENT_CHANGE")
    for purpose, _ in changes:
        if purpose not in PURPOSES:
            raise InvalidArgument(f"unknown purpose {purpose!r}; known: {', '.join(PURPOSES)}", "UNKNOWN_PURPOSE")
    if len({p for p, _ in changes}) != len(changes):
        raise InvalidArgument("each purpose at most once per change", "DUPLICATE_PURPOSE")
    if policy_version and not _VERSION.match(policy_version):
        raise InvalidArgument("policy_version: 1-64 letters, digits, '.', '_' or '-'", "INVALID_POLICY_VERSION")
    if any(p == PRIVACY_POLICY and granted for p, granted in changes) and not policy_version:
        raise InvalidArgument("accepting the privacy policy names the policy_version accepted", "POLICY_VERSION_REQUIRED")
    if source not in SOURCES:
        raise InvalidArgument(f"source is one of {', '.join(SOURCES)}", "INVALID_SOURCE")


def check_inquiry(topic: str, message: str, max_chars: int) -> str:
    """The message as stored (stripped); refuses empty, oversized or unknown-topic inquiries."""
    if topic not in TOPICS:
        raise InvalidArgument(f"topic is one of {', '.join(TOPICS)}", "INVALID_TOPIC")
    text = message.strip()
    if not text:
        raise InvalidArgument("the message is empty", "EMPTY_MESSAGE")
    if len(text) > max_chars:
        raise InvalidArgument(f"the message is longer than {max_chars} characters", "MESSAGE_TOO_LONG")
    return text


def check_answer(answer: str, max_chars: int) -> str:
    text = answer.strip()
    if not text:
        raise InvalidArgument("the answer is empty", "EMPTY_ANSWER")
    if len(text) > max_chars:
        raise InvalidArgument(f"the answer is longer than {max_chars} characters", "ANSWER_TOO_LONG")
    return text


def check_notice(kind: str, title: str, body: str, policy_version: str, effective_at: datetime | None, now: datetime) -> None:
    """A notice that can be published: a title and body; a policy change names its version and takes effect
    no sooner than POLICY_NOTICE_MIN after `now`."""
    if kind not in KINDS:
        raise InvalidArgument(f"kind is one of {', '.join(KINDS)}", "INVALID_NOTICE_KIND")
    if not title.strip() or len(title) > 200:
        raise InvalidArgument("the title is 1-200 characters", "INVALID_TITLE")
    if not body.strip() or len(body) > 10_000:
        raise InvalidArgument("the body is 1-10000 characters", "INVALID_BODY")
    if kind == "policy_change":
        if not _VERSION.match(policy_version):
            raise InvalidArgument("a policy change names its policy_version", "POLICY_VERSION_REQUIRED")
        if effective_at is None:
            raise InvalidArgument("a policy change says when it takes effect (effective_at)", "EFFECTIVE_AT_REQUIRED")
        if effective_at < now + POLICY_NOTICE_MIN:
            raise InvalidArgument(
                f"a policy change takes effect at least {POLICY_NOTICE_MIN.days} days after it is announced", "NOTICE_TOO_SHORT"
            )


def check_contact(channel: str, address: str) -> None:
    if channel not in CHANNELS:
        raise InvalidArgument(f"channel is one of {', '.join(CHANNELS)}", "INVALID_CHANNEL")
    if not address:
        return
    if channel == "apns" and not _APNS_TOKEN.match(address):
        raise InvalidArgument("an APNs device token is 64-200 hex digits", "INVALID_PUSH_TOKEN")
    if channel == "email" and not _EMAIL.match(address):
        raise InvalidArgument("not an email address", "INVALID_EMAIL")
    if channel == "sms" and not E164.match(address):
        # The number itself is not quoted back: it goes into no log line.
        raise InvalidArgument("a phone number for SMS is in E.164 form: + and 7 to 15 digits, e.g. +447700900123", "INVALID_PHONE_NUMBER")
