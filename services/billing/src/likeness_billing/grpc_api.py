"""gRPC servicer of Billing: proto <-> use cases, and the one map from billing errors to statuses."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from likeness.billing.v1 import billing_pb2, billing_pb2_grpc
from likeness_billing import service
from likeness_billing.adapters.repository import BillingRepository
from likeness_billing.domain import errors as billing_errors
from likeness_billing.domain.entitlements import Entitlements
from likeness_billing.domain.purchases import NotificationOutcome, StoreEnvironment, Transaction
from likeness_billing.domain.quotas import QuotaPolicy, utc_day
from likeness_billing.domain.subscriptions import SubscriptionStatus
from likeness_platform import errors
from likeness_platform.dataholder import timestamp

_STATUS: dict[str, type[errors.DomainError]] = {
    "INVALID_ARGUMENT": errors.InvalidArgument,
    "INVALID_RECEIPT": errors.InvalidArgument,
    "VERIFICATION_FAILED": errors.InvalidArgument,
    "TRANSACTION_NOT_FOUND": errors.NotFound,
    "STORE_UNAVAILABLE": errors.Unavailable,
    "TRANSACTION_BOUND_ELSEWHERE": errors.PermissionDenied,
    "QUOTA_EXCEEDED": errors.ResourceExhausted,
}
_OUTCOME = {
    NotificationOutcome.APPLIED: billing_pb2.NOTIFICATION_OUTCOME_APPLIED,
    NotificationOutcome.DUPLICATE: billing_pb2.NOTIFICATION_OUTCOME_DUPLICATE,
    NotificationOutcome.DROPPED: billing_pb2.NOTIFICATION_OUTCOME_DROPPED,
    NotificationOutcome.PARKED: billing_pb2.NOTIFICATION_OUTCOME_RECORDED,
    NotificationOutcome.IGNORED: billing_pb2.NOTIFICATION_OUTCOME_RECORDED,
}
_ENVIRONMENT = {
    StoreEnvironment.PRODUCTION: billing_pb2.STORE_ENVIRONMENT_PRODUCTION,
    StoreEnvironment.SANDBOX: billing_pb2.STORE_ENVIRONMENT_SANDBOX,
    StoreEnvironment.XCODE: billing_pb2.STORE_ENVIRONMENT_XCODE,
    StoreEnvironment.LOCAL_TESTING: billing_pb2.STORE_ENVIRONMENT_LOCAL_TESTING,
}
_STATE = {
    SubscriptionStatus.ACTIVE: billing_pb2.SUBSCRIPTION_STATE_ACTIVE,
    SubscriptionStatus.GRACE: billing_pb2.SUBSCRIPTION_STATE_GRACE,
    SubscriptionStatus.BILLING_RETRY: billing_pb2.SUBSCRIPTION_STATE_BILLING_RETRY,
    SubscriptionStatus.EXPIRED: billing_pb2.SUBSCRIPTION_STATE_EXPIRED,
    SubscriptionStatus.REVOKED: billing_pb2.SUBSCRIPTION_STATE_REVOKED,
}


def environment_pb(value: object) -> billing_pb2.StoreEnvironment.ValueType:
    """The proto enum for a transaction's environment (the domain enum, or Apple's text for it)."""
    try:
        return _ENVIRONMENT[StoreEnvironment(getattr(value, "value", value))]
    except ValueError:
        return billing_pb2.STORE_ENVIRONMENT_UNSPECIFIED


@contextlib.contextmanager
def billing_status() -> Iterator[None]:
    """Translate billing's domain errors into the platform's status-carrying errors."""
    try:
        yield
    except billing_errors.BillingError as exc:
        kind = _STATUS.get(exc.code, errors.FailedPrecondition)
        if exc.code == "VERIFICATION_FAILED" and getattr(exc, "retryable", False):
            kind = errors.Unavailable
        raise kind(str(exc), exc.code) from None


def purchase_pb(t: Transaction) -> billing_pb2.Purchase:
    out = billing_pb2.Purchase(
        transaction_id=t.transaction_id,
        original_transaction_id=t.original_transaction_id,
        product_id=t.product_id,
        purchase_date=timestamp(t.purchase_date),
        offer_type=t.offer_type or 0,
        environment=environment_pb(t.environment),
    )
    if t.expires_date:
        out.expires_date.CopyFrom(timestamp(t.expires_date))
    if t.revocation_date:
        out.revocation_date.CopyFrom(timestamp(t.revocation_date))
    return out


def entitlements_pb(e: Entitlements, allowance: int, used_today: int) -> billing_pb2.Entitlements:
    out = billing_pb2.Entitlements(
        subscribed=e.unlimited,
        free_daily_allowance=allowance,
        free_remaining_today=max(0, allowance - used_today),
    )
    for item in e.items:
        sub = billing_pb2.Subscription(
            original_transaction_id=item.original_transaction_id,
            product_id=item.product_id,
            state=_STATE[item.status] if item.status else billing_pb2.SUBSCRIPTION_STATE_PURCHASED,
            will_renew=item.will_renew,
            entitled=item.active,
        )
        if item.expires_date:
            sub.expires_date.CopyFrom(timestamp(item.expires_date))
        if item.grace_expires_date:
            sub.grace_expires_date.CopyFrom(timestamp(item.grace_expires_date))
        out.subscriptions.append(sub)
    return out


class BillingServicer(billing_pb2_grpc.BillingServicer):
    def __init__(self, repo: BillingRepository, verifier: Any, receipts: Any, policy: QuotaPolicy) -> None:
        self._repo = repo
        self._verifier = verifier
        self._receipts = receipts
        self._policy = policy

    def _need_verifier(self) -> Any:
        if self._verifier is None:
            raise errors.FailedPrecondition(
                "App Store verification is not configured on this server (LIKENESS_APPLE_ROOT_CERTS, LIKENESS_APPLE_BUNDLE_ID)",
                "APPLE_NOT_CONFIGURED",
            )
        return self._verifier

    async def _entitlements(self, subject_id: str) -> billing_pb2.Entitlements:
        ent = await service.get_entitlements(self._repo, subject_id)
        used = await self._repo.free_credits_used(subject_id, utc_day(datetime.now(UTC)))
        return entitlements_pb(ent, self._policy.free_daily_allowance, used)

    async def VerifyAppleTransaction(self, request: Any, context: Any) -> billing_pb2.VerifyAppleTransactionResponse:
        verifier = self._need_verifier()
        proof = request.WhichOneof("proof")
        with billing_status():
            verified = await service.verify_apple_purchase(
                self._repo,
                verifier,
                self._receipts,
                request.subject_id,
                signed_transaction=request.signed_transaction if proof == "signed_transaction" else None,
                receipt=request.receipt if proof == "receipt" else None,
            )
            return billing_pb2.VerifyAppleTransactionResponse(
                purchase=purchase_pb(verified.transaction), entitlements=await self._entitlements(request.subject_id)
            )

    async def HandleAppleNotification(self, request: Any, context: Any) -> billing_pb2.HandleAppleNotificationResponse:
        verifier = self._need_verifier()
        with billing_status():
            outcome = await service.handle_notification(self._repo, verifier, request.signed_payload)
        return billing_pb2.HandleAppleNotificationResponse(outcome=_OUTCOME[outcome])

    async def GetEntitlements(self, request: Any, context: Any) -> billing_pb2.GetEntitlementsResponse:
        with billing_status():
            return billing_pb2.GetEntitlementsResponse(entitlements=await self._entitlements(request.subject_id))

    async def ConsumeCredit(self, request: Any, context: Any) -> billing_pb2.ConsumeCreditResponse:
        with billing_status():
            taken = await service.consume_credit(self._repo, self._policy, request.subject_id, request.request_id)
        return billing_pb2.ConsumeCreditResponse(
            source=billing_pb2.CREDIT_SOURCE_SUBSCRIPTION if taken.unlimited else billing_pb2.CREDIT_SOURCE_FREE_ALLOWANCE,
            free_remaining_today=taken.remaining_today if taken.remaining_today is not None else 0,
        )

    async def ReleaseCredit(self, request: Any, context: Any) -> billing_pb2.ReleaseCreditResponse:
        with billing_status():
            released = await service.release_credit(self._repo, request.subject_id, request.request_id)
        return billing_pb2.ReleaseCreditResponse(released=released)


def service_name() -> str:
    return str(billing_pb2.DESCRIPTOR.services_by_name["Billing"].full_name)
