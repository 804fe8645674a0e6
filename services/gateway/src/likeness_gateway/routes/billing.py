"""App Store purchases, entitlements and the App Store Server Notifications V2 webhook."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field, model_validator

from likeness.billing.v1 import billing_pb2
from likeness_gateway.deps import CurrentDevice, GatewayDep
from likeness_gateway.errors import ApiError

router = APIRouter(tags=["billing"])


class SubscriptionOut(BaseModel):
    original_transaction_id: str
    product_id: str
    state: str
    will_renew: bool
    expires_at: str | None
    entitled: bool


class EntitlementsOut(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [{"subscribed": False, "subscriptions": [], "free_daily_allowance": 3, "free_remaining_today": 2}]
        }
    }

    subscribed: bool
    subscriptions: list[SubscriptionOut]
    free_daily_allowance: int
    free_remaining_today: int


# The public JSON keeps the texts it has always had: "active", "billing_retry", ...; "Production", "Sandbox".
_STATES = {v: k.removeprefix("SUBSCRIPTION_STATE_").lower() for k, v in billing_pb2.SubscriptionState.items()}
_ENVIRONMENTS = {
    billing_pb2.STORE_ENVIRONMENT_PRODUCTION: "Production",
    billing_pb2.STORE_ENVIRONMENT_SANDBOX: "Sandbox",
    billing_pb2.STORE_ENVIRONMENT_XCODE: "Xcode",
    billing_pb2.STORE_ENVIRONMENT_LOCAL_TESTING: "LocalTesting",
}


def entitlements_out(e: billing_pb2.Entitlements) -> EntitlementsOut:
    return EntitlementsOut(
        subscribed=e.subscribed,
        subscriptions=[
            SubscriptionOut(
                original_transaction_id=s.original_transaction_id,
                product_id=s.product_id,
                state=_STATES.get(s.state, "unspecified"),
                will_renew=s.will_renew,
                expires_at=s.expires_date.ToDatetime().isoformat() + "Z" if s.HasField("expires_date") else None,
                entitled=s.entitled,
            )
            for s in e.subscriptions
        ],
        free_daily_allowance=e.free_daily_allowance,
        free_remaining_today=e.free_remaining_today,
    )


class ApplePurchase(BaseModel):
    model_config = {
        "extra": "forbid",
        "json_schema_extra": {"examples": [{"signed_transaction": "eyJhbGciOiJFUzI1NiIsIng1YyI6Wy4uLl19..."}]},
    }

    signed_transaction: str | None = Field(default=None, max_length=32_768, description="StoreKit 2 JWS transaction (preferred)")
    receipt: str | None = Field(default=None, max_length=1_048_576, description="Base64 legacy app receipt")

    @model_validator(mode="after")
    def exactly_one(self) -> ApplePurchase:
        if (self.signed_transaction is None) == (self.receipt is None):
            raise ValueError("send exactly one of signed_transaction or receipt")
        return self


class PurchaseOut(BaseModel):
    transaction_id: str
    original_transaction_id: str
    product_id: str
    environment: str
    expires_at: str | None
    revoked: bool
    entitlements: EntitlementsOut


@router.post("/v1/purchases/apple", response_model=PurchaseOut, summary="Verify an App Store purchase and bind it to this device")
async def apple_purchase(body: ApplePurchase, device: CurrentDevice, gw: GatewayDep) -> PurchaseOut:
    reply = await gw.billing.verify_apple(device.subject_id, body.signed_transaction, body.receipt)
    p = reply.purchase
    return PurchaseOut(
        transaction_id=p.transaction_id,
        original_transaction_id=p.original_transaction_id,
        product_id=p.product_id,
        environment=_ENVIRONMENTS.get(p.environment, ""),
        expires_at=p.expires_date.ToDatetime().isoformat() + "Z" if p.HasField("expires_date") else None,
        revoked=p.HasField("revocation_date"),
        entitlements=entitlements_out(reply.entitlements),
    )


@router.get("/v1/entitlements", response_model=EntitlementsOut, summary="What this device may do now")
async def entitlements(device: CurrentDevice, gw: GatewayDep) -> EntitlementsOut:
    return entitlements_out(await gw.billing.entitlements(device.subject_id))


class AppleNotification(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{"signedPayload": "eyJhbGciOiJFUzI1NiIsIng1YyI6Wy4uLl19..."}]}}

    signedPayload: str = Field(min_length=1, max_length=262_144)


class NotificationAck(BaseModel):
    outcome: str


_OUTCOMES = {v: k.removeprefix("NOTIFICATION_OUTCOME_").lower() for k, v in billing_pb2.NotificationOutcome.items()}


@router.post(
    "/v1/webhooks/apple",
    response_model=NotificationAck,
    summary="App Store Server Notifications V2",
    description="No token: the payload is verified against Apple's certificate chain. Answers 200 once durably recorded; "
    "a payload that fails verification answers 400 so it is not mistaken for delivered.",
)
async def apple_webhook(body: AppleNotification, gw: GatewayDep) -> NotificationAck:
    try:
        reply = await gw.billing.notification(body.signedPayload)
    except ApiError as exc:
        if exc.status >= 500:
            raise
        raise ApiError(400, exc.code, exc.message) from None
    return NotificationAck(outcome=_OUTCOMES.get(reply.outcome, "recorded"))
