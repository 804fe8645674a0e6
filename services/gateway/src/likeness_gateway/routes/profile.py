"""What Likeness holds about the caller that the caller can see and correct: the device's language and app version,
and the account's email address (a corrected address counts once a code sent to it confirms it).
Every correction is written to privacy's access log (purpose "correction") before it is made."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from likeness_gateway.deps import CurrentDevice, GatewayDep
from likeness_gateway.domain.accounts import CodePurpose, email_lookup_hash
from likeness_gateway.domain.text import PRINTABLE
from likeness_gateway.errors import ApiError
from likeness_gateway.routes.account import (
    AccountView,
    Email,
    _code_throttle,
    _send_code,
    _view,
    account_of,
    accounts_of,
)
from likeness_gateway.routes.devices import NO_STORE

router = APIRouter(tags=["me"])

LANGUAGE = r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$"


class DeviceView(BaseModel):
    device_id: str
    platform: str
    model: str
    os_version: str
    app_version: str
    language: str
    created_at: str
    expires_at: str | None


class Me(BaseModel):
    device: DeviceView
    account: AccountView | None = Field(description="The account this device is signed in to, if any")
    email_verification: str | None = Field(
        None, description="`check_email` after an address correction: confirm it with POST /v1/account/verify"
    )


class Correction(BaseModel):
    """Only what the person may correct; fields left out stay as they are."""

    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [{"language": "fr-FR"}, {"email": "ana@example.org"}]}}

    language: str | None = Field(None, min_length=2, max_length=16, pattern=LANGUAGE)
    app_version: str | None = Field(None, min_length=1, max_length=32, pattern=PRINTABLE)
    email: Email | None = Field(None, description="Takes effect once confirmed by code")


async def _me(gw: GatewayDep, device_id: str, subject_id: str, email_verification: str | None = None) -> Me:
    device = await gw.devices.get(device_id)
    if device is None or not device.active:
        raise ApiError(401, "UNAUTHENTICATED", "the token is not valid (unknown, revoked, or its data was deleted)")
    account_view = None
    if gw.accounts is not None and (account := await gw.accounts.repo.by_subject(subject_id)) is not None:
        await gw.privacy.record_access(subject_id, f"gateway/account/{account.account_id}/email", "subject_access")
        account_view = await _view(gw.accounts, gw, account)
    view = DeviceView(
        device_id=device.device_id,
        platform=device.platform,
        model=device.model,
        os_version=device.os_version,
        app_version=device.app_version,
        language=device.language,
        created_at=device.created_at.isoformat(),
        expires_at=device.expires_at.isoformat() if device.expires_at else None,
    )
    return Me(device=view, account=account_view, email_verification=email_verification)


@router.get("/v1/me", response_model=Me, summary="What is held about the caller that can be shown and corrected")
async def get_me(response: Response, device: CurrentDevice, gw: GatewayDep) -> Me:
    response.headers.update(NO_STORE)
    return await _me(gw, device.device_id, device.subject_id)


@router.patch(
    "/v1/me",
    response_model=Me,
    summary="Correct the device's language or app version, or the account's email address",
    description="Each correction is recorded in the access log (purpose `correction`). A new email address is "
    "stored once the code sent to it is entered (POST /v1/account/verify); until then the old one stays.",
)
async def correct_me(body: Correction, request: Request, response: Response, device: CurrentDevice, gw: GatewayDep) -> Me:
    response.headers.update(NO_STORE)
    changes = {name: value for name in ("language", "app_version") if (value := getattr(body, name)) is not None}
    changes = {name: value for name, value in changes.items() if getattr(device, name) != value}
    verification = None
    if body.email is not None:
        acc = accounts_of(gw)
        account = await account_of(acc, device)
        lookup = email_lookup_hash(acc.lookup_key, body.email)
        if lookup != account.email_hash:
            await _code_throttle(gw, request, lookup)
            # Kept as pending whether or not another account has the address (the code, or a notice to its owner,
            # goes out after the answer): the caller sees the same either way.
            await acc.repo.set_pending_email(account, body.email.strip(), lookup)
            fresh = await acc.repo.by_subject(device.subject_id)
            assert fresh is not None
            _send_code(gw, acc, fresh, CodePurpose.VERIFY_EMAIL)
            verification = "check_email"
    for name in changes:
        await gw.privacy.record_access(device.subject_id, f"gateway/device/{device.device_id}/{name}", "correction")
    if changes and await gw.devices.correct(device.device_id, changes) is None:
        raise ApiError(401, "UNAUTHENTICATED", "the token is not valid (unknown, revoked, or its data was deleted)")
    return await _me(gw, device.device_id, device.subject_id, verification)
