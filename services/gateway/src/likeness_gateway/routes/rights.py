"""The caller's rights beyond export and erasure: consents, complaints and inquiries, notices, push token, SMS number."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, Field, StrictBool, StringConstraints, field_validator

from likeness.privacy.v1 import rights_pb2
from likeness_gateway.adapters.rights_client import RightsClient
from likeness_gateway.deps import CurrentDevice, gateway
from likeness_gateway.domain.text import IDENTIFIER
from likeness_gateway.errors import ApiError

# A phone number in E.164 (the same rule as privacy's).
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# Free text with line breaks: no other control characters (logs and terminals garble them).
MESSAGE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+$"

router = APIRouter(tags=["me"])


async def rights_client(request: Request) -> RightsClient:
    # A coroutine, so FastAPI does not run it in its thread pool.
    return RightsClient(gateway(request).privacy)


Rights = Annotated[RightsClient, Depends(rights_client)]


def _iso(ts: Timestamp) -> str:
    return ts.ToDatetime().isoformat() + "Z"


def _iso_or_none(message: object, field: str) -> str | None:
    return _iso(getattr(message, field)) if message.HasField(field) else None  # type: ignore[attr-defined]


class ConsentOut(BaseModel):
    purpose: str
    granted: bool
    policy_version: str
    source: str
    recorded_at: str


class ConsentsOut(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "purposes": ["ai_generation_third_party", "privacy_policy"],
                    "current": {
                        "ai_generation_third_party": {
                            "purpose": "ai_generation_third_party",
                            "granted": False,
                            "policy_version": "2026-11",
                            "source": "app",
                            "recorded_at": "2026-11-23T10:00:00Z",
                        }
                    },
                    "history": [],
                }
            ]
        }
    }

    # Every purpose a consent can be given for; one never recorded is not granted.
    purposes: list[str]
    # The latest record per purpose.
    current: dict[str, ConsentOut]
    # Every record, oldest first (nothing is overwritten).
    history: list[ConsentOut]


def _consent(r: rights_pb2.ConsentRecord) -> ConsentOut:
    return ConsentOut(
        purpose=r.purpose, granted=r.granted, policy_version=r.policy_version, source=r.source, recorded_at=_iso(r.recorded_at)
    )


async def _consents_out(rights: RightsClient, subject_id: str) -> ConsentsOut:
    found = await rights.get_consents(subject_id)
    return ConsentsOut(
        purposes=list(found.purposes),
        current={r.purpose: _consent(r) for r in found.current},
        history=[_consent(r) for r in found.history],
    )


@router.get("/v1/me/consents", response_model=ConsentsOut, summary="What the caller has consented to, and the history")
async def get_consents(device: CurrentDevice, rights: Rights) -> ConsentsOut:
    return await _consents_out(rights, device.subject_id)


class ConsentsIn(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"consents": {"ai_generation_third_party": False}, "policy_version": "2026-11"}]}}

    # purpose -> granted (a JSON true or false: "yes" or 1 is not a consent). Withdrawing (false) stops that
    # processing for the next request.
    consents: dict[Annotated[str, StringConstraints(pattern=IDENTIFIER, max_length=64)], StrictBool] = Field(min_length=1, max_length=16)
    # The policy version shown to the person when they decided.
    policy_version: str = Field(default="", max_length=64, pattern=r"^$|" + IDENTIFIER)


@router.put(
    "/v1/me/consents",
    response_model=ConsentsOut,
    summary="Give or withdraw consents",
    description="Each change is appended to the history with its time. Withdrawing `ai_generation_third_party` makes the "
    "next AI restyle fail with 403 CONSENT_REQUIRED; nothing is sent to the provider.",
)
async def put_consents(body: ConsentsIn, device: CurrentDevice, rights: Rights) -> ConsentsOut:
    await rights.set_consents(device.subject_id, list(body.consents.items()), body.policy_version)
    return await _consents_out(rights, device.subject_id)


class InquiryIn(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"topic": "complaint", "message": "Why was my photo kept for a day?"}]}}

    topic: Literal["inquiry", "complaint"] = "inquiry"
    # At most LIKENESS_INQUIRY_MAX_CHARS characters (4000 by default); line breaks and tabs allowed, other control
    # characters not. Stored encrypted.
    message: str = Field(min_length=1, max_length=100_000, pattern=MESSAGE)

    @field_validator("message")
    @classmethod
    def _encodable(cls, value: str) -> str:
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError("the message is not valid Unicode text") from None
        return value


class InquiryOut(BaseModel):
    inquiry_id: str
    topic: str
    message: str
    # open | answered
    state: str
    answer: str | None
    created_at: str
    answered_at: str | None
    # When it is deleted (LIKENESS_INQUIRY_RETENTION_DAYS after it was sent), unless erased before.
    expires_at: str


def _inquiry(i: rights_pb2.Inquiry) -> InquiryOut:
    return InquiryOut(
        inquiry_id=i.inquiry_id,
        topic=i.topic,
        message=i.message,
        state="answered" if i.state == rights_pb2.INQUIRY_STATE_ANSWERED else "open",
        answer=i.answer or None,
        created_at=_iso(i.created_at),
        answered_at=_iso_or_none(i, "answered_at"),
        expires_at=_iso(i.expires_at),
    )


@router.post(
    "/v1/me/inquiries",
    status_code=201,
    response_model=InquiryOut,
    summary="Send a complaint or an inquiry to the operators",
    description="At most LIKENESS_INQUIRIES_PER_DAY (10) per person a day; more get 429 RATE_LIMITED with Retry-After.",
)
async def post_inquiry(body: InquiryIn, request: Request, device: CurrentDevice, rights: Rights) -> InquiryOut:
    gw = gateway(request)
    # Per person (linked devices share the count), not per device.
    retry = await gw.limiter.hit("inquiry:" + device.subject_id, gw.settings.inquiries_per_day, 86400)
    if retry:
        raise ApiError(
            429,
            "RATE_LIMITED",
            f"at most {gw.settings.inquiries_per_day} inquiries a day; your earlier ones are with the operators",
            {"scope": "inquiries"},
            {"Retry-After": str(retry)},
        )
    return _inquiry(await rights.create_inquiry(device.subject_id, body.topic, body.message))


class InquiriesOut(BaseModel):
    inquiries: list[InquiryOut]


@router.get("/v1/me/inquiries", response_model=InquiriesOut, summary="The caller's inquiries and the operators' answers")
async def get_inquiries(device: CurrentDevice, rights: Rights) -> InquiriesOut:
    return InquiriesOut(inquiries=[_inquiry(i) for i in await rights.my_inquiries(device.subject_id)])


class NoticeOut(BaseModel):
    notice_id: str
    # security_incident | policy_change
    kind: str
    title: str
    body: str
    policy_version: str | None
    # Policy changes: when the new version takes effect (at least 30 days after it was published).
    effective_at: str | None
    published_at: str
    # Policy changes: whether the caller accepted the announced version.
    accepted: bool


class NoticesOut(BaseModel):
    notices: list[NoticeOut]


_KIND = {rights_pb2.NOTICE_KIND_SECURITY_INCIDENT: "security_incident", rights_pb2.NOTICE_KIND_POLICY_CHANGE: "policy_change"}


def _notice(n: rights_pb2.Notice) -> NoticeOut:
    return NoticeOut(
        notice_id=n.notice_id,
        kind=_KIND.get(n.kind, "unspecified"),
        title=n.title,
        body=n.body,
        policy_version=n.policy_version or None,
        effective_at=_iso_or_none(n, "effective_at"),
        published_at=_iso(n.published_at),
        accepted=n.accepted,
    )


@router.get("/v1/me/notices", response_model=NoticesOut, summary="Security-incident and policy-change notices for the caller")
async def get_notices(device: CurrentDevice, rights: Rights) -> NoticesOut:
    return NoticesOut(notices=[_notice(n) for n in await rights.notices(device.subject_id)])


@router.post(
    "/v1/me/notices/{notice_id}/accept",
    response_model=ConsentOut,
    summary="Accept the policy version a policy-change notice announced",
    description="Recorded in the consent history as `privacy_policy` with the notice's version and source `notice`.",
)
async def accept_notice(notice_id: uuid.UUID, device: CurrentDevice, rights: Rights) -> ConsentOut:
    return _consent(await rights.accept_policy(device.subject_id, str(notice_id)))


class PushTokenIn(BaseModel):
    # The APNs device token (hex) the app got from registerForRemoteNotifications; stored encrypted.
    token: str = Field(min_length=64, max_length=200, pattern=r"^[0-9a-fA-F]+$")


@router.put("/v1/me/push-token", status_code=204, summary="Where notices reach this device by push (APNs)")
async def put_push_token(body: PushTokenIn, device: CurrentDevice, rights: Rights) -> Response:
    await rights.set_push_token(device.subject_id, body.token)
    return Response(status_code=204)


@router.delete("/v1/me/push-token", status_code=204, summary="Stop push notices to this device")
async def delete_push_token(device: CurrentDevice, rights: Rights) -> Response:
    await rights.set_push_token(device.subject_id, "")
    return Response(status_code=204)


SMS_CONTACT = "privacy/notice_contact/sms"


class SmsContactIn(BaseModel):
    # The phone number SMS notices go to, in E.164 (+, country code, number; no spaces); stored encrypted.
    phone_number: str


@router.put(
    "/v1/me/sms-contact",
    status_code=204,
    summary="Where notices reach the caller by SMS (a phone number in E.164, e.g. +447700900123)",
    responses={400: {"description": "INVALID_PHONE_NUMBER: not a number in E.164 form"}},
)
async def put_sms_contact(body: SmsContactIn, request: Request, device: CurrentDevice, rights: Rights) -> Response:
    # Checked here with its own code (and again by privacy); the number is never quoted back.
    if not E164.match(body.phone_number):
        raise ApiError(400, "INVALID_PHONE_NUMBER", "a phone number for SMS is in E.164 form: + and 7 to 15 digits, e.g. +447700900123")
    # A correction of the person's data, like an email correction: recorded (without the number) before it is made.
    await gateway(request).privacy.record_access(device.subject_id, SMS_CONTACT, "correction")
    await rights.set_sms_number(device.subject_id, body.phone_number)
    return Response(status_code=204)


@router.delete("/v1/me/sms-contact", status_code=204, summary="Stop SMS notices to the caller")
async def delete_sms_contact(request: Request, device: CurrentDevice, rights: Rights) -> Response:
    await gateway(request).privacy.record_access(device.subject_id, SMS_CONTACT, "correction")
    await rights.set_sms_number(device.subject_id, "")
    return Response(status_code=204)
