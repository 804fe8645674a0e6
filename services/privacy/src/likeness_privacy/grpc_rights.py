"""gRPC servicer of privacy's Rights service: proto <-> the rights use cases only."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any

from likeness.privacy.v1 import rights_pb2, rights_pb2_grpc
from likeness_platform.callcontext import ON_BEHALF_OF_KEY, current_caller
from likeness_platform.dataholder import timestamp
from likeness_privacy.domain.rights import PURPOSES, ConsentRecord
from likeness_privacy.usecases.rights import Rights

_CHANNEL = {
    rights_pb2.CONTACT_CHANNEL_APNS: "apns",
    rights_pb2.CONTACT_CHANNEL_EMAIL: "email",
    rights_pb2.CONTACT_CHANNEL_SMS: "sms",
}
_KIND = {rights_pb2.NOTICE_KIND_SECURITY_INCIDENT: "security_incident", rights_pb2.NOTICE_KIND_POLICY_CHANGE: "policy_change"}
_KIND_PB = {v: k for k, v in _KIND.items()}


def consent_pb(record: ConsentRecord) -> rights_pb2.ConsentRecord:
    return rights_pb2.ConsentRecord(
        purpose=record.purpose,
        granted=record.granted,
        policy_version=record.policy_version,
        source=record.source,
        recorded_at=timestamp(record.recorded_at),
    )


def inquiry_pb(row: Mapping[str, Any], for_operator: bool) -> rights_pb2.Inquiry:
    out = rights_pb2.Inquiry(
        inquiry_id=row["inquiry_id"],
        subject_id=row["subject_id"] if for_operator else "",
        topic=row["topic"],
        message=row["message"],
        state=rights_pb2.INQUIRY_STATE_ANSWERED if row["answer"] else rights_pb2.INQUIRY_STATE_OPEN,
        answer=row["answer"],
        created_at=timestamp(row["created_at"]),
        expires_at=timestamp(row["expires_at"]),
    )
    if row["answered_at"] is not None:
        out.answered_at.CopyFrom(timestamp(row["answered_at"]))
    return out


def notice_pb(row: Mapping[str, Any], accepted: bool = False) -> rights_pb2.Notice:
    out = rights_pb2.Notice(
        notice_id=str(row["notice_id"]),
        kind=_KIND_PB.get(row["kind"], 0),
        title=row["title"],
        body=row["body"],
        policy_version=row["policy_version"],
        published_at=timestamp(row["published_at"]),
        accepted=accepted,
    )
    if row["effective_at"] is not None:
        out.effective_at.CopyFrom(timestamp(row["effective_at"]))
    return out


class RightsServicer(rights_pb2_grpc.RightsServicer):
    def __init__(self, rights: Rights) -> None:
        self._rights = rights

    async def SetConsents(self, request: Any, context: Any) -> rights_pb2.SetConsentsResponse:
        changes = [(c.purpose, c.granted) for c in request.changes]
        current = await self._rights.set_consents(request.subject_id, changes, request.policy_version, request.source)
        return rights_pb2.SetConsentsResponse(current=[consent_pb(r) for r in current.values()])

    async def GetConsents(self, request: Any, context: Any) -> rights_pb2.GetConsentsResponse:
        current, history = await self._rights.consents(request.subject_id)
        return rights_pb2.GetConsentsResponse(
            current=[consent_pb(r) for r in current.values()], history=[consent_pb(r) for r in history], purposes=list(PURPOSES)
        )

    async def CheckConsent(self, request: Any, context: Any) -> rights_pb2.CheckConsentResponse:
        return rights_pb2.CheckConsentResponse(granted=await self._rights.check(request.subject_id, request.purpose))

    async def CreateInquiry(self, request: Any, context: Any) -> rights_pb2.CreateInquiryResponse:
        row = await self._rights.create_inquiry(request.subject_id, request.topic, request.message)
        return rights_pb2.CreateInquiryResponse(inquiry=inquiry_pb(row, for_operator=False))

    async def ListMyInquiries(self, request: Any, context: Any) -> rights_pb2.ListMyInquiriesResponse:
        rows = await self._rights.my_inquiries(request.subject_id)
        return rights_pb2.ListMyInquiriesResponse(inquiries=[inquiry_pb(r, for_operator=False) for r in rows])

    async def ListInquiries(self, request: Any, context: Any) -> rights_pb2.ListInquiriesResponse:
        answered = request.state == rights_pb2.INQUIRY_STATE_ANSWERED
        rows = await self._rights.list_inquiries(_operator(context), answered, request.limit)
        return rights_pb2.ListInquiriesResponse(inquiries=[inquiry_pb(r, for_operator=True) for r in rows])

    async def AnswerInquiry(self, request: Any, context: Any) -> rights_pb2.AnswerInquiryResponse:
        row = await self._rights.answer(_operator(context), request.inquiry_id, request.answer)
        return rights_pb2.AnswerInquiryResponse(inquiry=inquiry_pb(row, for_operator=True))

    async def SetNoticeContact(self, request: Any, context: Any) -> rights_pb2.SetNoticeContactResponse:
        await self._rights.set_contact(request.subject_id, _CHANNEL.get(request.channel, ""), request.address)
        return rights_pb2.SetNoticeContactResponse()

    async def PublishNotice(self, request: Any, context: Any) -> rights_pb2.PublishNoticeResponse:
        effective = request.effective_at.ToDatetime(tzinfo=UTC) if request.HasField("effective_at") else None
        notice, delivery = await self._rights.publish(
            _operator(context),
            _KIND.get(request.kind, ""),
            request.title,
            request.body,
            request.policy_version,
            effective,
            list(request.subject_ids),
        )
        return rights_pb2.PublishNoticeResponse(
            notice=notice_pb(notice),
            recipients=delivery.recipients,
            push_sent=delivery.push_sent,
            email_sent=delivery.email_sent,
            failed=delivery.failed,
            sms_sent=delivery.sms_sent,
        )

    async def ListNotices(self, request: Any, context: Any) -> rights_pb2.ListNoticesResponse:
        found = await self._rights.notices(request.subject_id)
        return rights_pb2.ListNoticesResponse(notices=[notice_pb(row, accepted) for row, accepted in found])

    async def AcceptPolicy(self, request: Any, context: Any) -> rights_pb2.AcceptPolicyResponse:
        return rights_pb2.AcceptPolicyResponse(record=consent_pb(await self._rights.accept_policy(request.subject_id, request.notice_id)))


def _operator(context: Any) -> str:
    """Who the certificate says called; a service acting for an operator (the admin API) names the operator too."""
    actor = current_caller()
    operator = dict(context.invocation_metadata() or ()).get(ON_BEHALF_OF_KEY, "")
    if operator.startswith("operator/") and not actor.startswith("operator/"):
        actor = f"{operator} via {actor}"
    return actor or "unknown"


def service_name() -> str:
    return str(rights_pb2.DESCRIPTOR.services_by_name["Rights"].full_name)
