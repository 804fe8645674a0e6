"""The gateway's module for the billing service."""

from __future__ import annotations

from likeness.billing.v1 import billing_pb2, billing_pb2_grpc
from likeness_gateway.adapters.upstream import Upstream
from likeness_platform.settings import ServiceSettings


class BillingClient(Upstream):
    def __init__(self, address: str, settings: ServiceSettings, deadline: float) -> None:
        super().__init__("billing", address, settings, deadline)
        self.stub = billing_pb2_grpc.BillingStub(self.channel)

    async def verify_apple(
        self, subject_id: str, signed_transaction: str | None, receipt: str | None
    ) -> billing_pb2.VerifyAppleTransactionResponse:
        request = billing_pb2.VerifyAppleTransactionRequest(subject_id=subject_id)
        if signed_transaction is not None:
            request.signed_transaction = signed_transaction
        if receipt is not None:
            request.receipt = receipt
        return await self.call(self.stub.VerifyAppleTransaction(request))

    async def notification(self, signed_payload: str) -> billing_pb2.HandleAppleNotificationResponse:
        return await self.call(self.stub.HandleAppleNotification(billing_pb2.HandleAppleNotificationRequest(signed_payload=signed_payload)))

    async def entitlements(self, subject_id: str) -> billing_pb2.Entitlements:
        return (await self.call(self.stub.GetEntitlements(billing_pb2.GetEntitlementsRequest(subject_id=subject_id)))).entitlements

    async def consume(self, subject_id: str, request_id: str, interface: str) -> billing_pb2.ConsumeCreditResponse:
        return await self.call(
            self.stub.ConsumeCredit(billing_pb2.ConsumeCreditRequest(subject_id=subject_id, request_id=request_id, interface=interface))
        )

    async def release(self, subject_id: str, request_id: str) -> bool:
        """Give back the credit consumed with `request_id` (its generation failed)."""
        request = billing_pb2.ReleaseCreditRequest(subject_id=subject_id, request_id=request_id)
        return (await self.call(self.stub.ReleaseCredit(request))).released
