"""The gateway's module for privacy's Rights service (consents, inquiries, notices); it shares privacy's channel."""

from __future__ import annotations

from likeness.privacy.v1 import rights_pb2, rights_pb2_grpc
from likeness_gateway.adapters.privacy_client import PrivacyClient


class RightsClient:
    def __init__(self, privacy: PrivacyClient) -> None:
        self._upstream = privacy
        self.stub = rights_pb2_grpc.RightsStub(privacy.channel)

    async def get_consents(self, subject_id: str) -> rights_pb2.GetConsentsResponse:
        return await self._upstream.call(self.stub.GetConsents(rights_pb2.GetConsentsRequest(subject_id=subject_id)))

    async def set_consents(self, subject_id: str, changes: list[tuple[str, bool]], policy_version: str) -> None:
        request = rights_pb2.SetConsentsRequest(
            subject_id=subject_id,
            changes=[rights_pb2.ConsentChange(purpose=p, granted=g) for p, g in changes],
            policy_version=policy_version,
            source="app",
        )
        await self._upstream.call(self.stub.SetConsents(request))

    async def create_inquiry(self, subject_id: str, topic: str, message: str) -> rights_pb2.Inquiry:
        request = rights_pb2.CreateInquiryRequest(subject_id=subject_id, topic=topic, message=message)
        return (await self._upstream.call(self.stub.CreateInquiry(request))).inquiry

    async def my_inquiries(self, subject_id: str) -> list[rights_pb2.Inquiry]:
        response = await self._upstream.call(self.stub.ListMyInquiries(rights_pb2.ListMyInquiriesRequest(subject_id=subject_id)))
        return list(response.inquiries)

    async def notices(self, subject_id: str) -> list[rights_pb2.Notice]:
        return list((await self._upstream.call(self.stub.ListNotices(rights_pb2.ListNoticesRequest(subject_id=subject_id)))).notices)

    async def accept_policy(self, subject_id: str, notice_id: str) -> rights_pb2.ConsentRecord:
        request = rights_pb2.AcceptPolicyRequest(subject_id=subject_id, notice_id=notice_id)
        return (await self._upstream.call(self.stub.AcceptPolicy(request))).record

    async def set_push_token(self, subject_id: str, token: str) -> None:
        await self._set_contact(subject_id, rights_pb2.CONTACT_CHANNEL_APNS, token)

    async def set_notice_email(self, subject_id: str, address: str) -> None:
        """Where email notices reach the subject: its account's confirmed address ("" = none)."""
        await self._set_contact(subject_id, rights_pb2.CONTACT_CHANNEL_EMAIL, address)

    async def set_sms_number(self, subject_id: str, number: str) -> None:
        """Where SMS notices reach the subject: a phone number in E.164 ("" = none)."""
        await self._set_contact(subject_id, rights_pb2.CONTACT_CHANNEL_SMS, number)

    async def _set_contact(self, subject_id: str, channel: rights_pb2.ContactChannel.ValueType, address: str) -> None:
        request = rights_pb2.SetNoticeContactRequest(subject_id=subject_id, channel=channel, address=address)
        await self._upstream.call(self.stub.SetNoticeContact(request))
