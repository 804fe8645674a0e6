"""Optional email + password accounts beside device tokens: sign-up, email verification, sign-in (which links the
calling device to the account's subject), password reset, and cancelling the account (the erasure of DELETE /v1/me).

The confirmed address is also privacy's email notice contact for the subject (SetNoticeContact): set when it is
confirmed, replaced when a correction is confirmed, and erased with the subject (cancelling the account is that
erasure). Both copies are sealed under the subject's one data key, so its crypto-shredding ends both.

No route tells whether an address has an account: sign-up, sign-in and reset answer the same, after the same
work (an argon2 hash or verification on every path), and mail leaves after the answer.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, BeforeValidator, Field

from likeness_gateway.adapters.rights_client import RightsClient
from likeness_gateway.deps import Accounts, CurrentDevice, ErasingDevice, Gateway, GatewayDep, client_ip, ip_bucket
from likeness_gateway.domain.accounts import Account, CodePurpose, code_hash, email_lookup_hash, new_code, signup_ref
from likeness_gateway.domain.devices import Device
from likeness_gateway.errors import ApiError
from likeness_gateway.routes import me
from likeness_gateway.routes.devices import NO_STORE, network_prefix
from likeness_platform.mail import Mail

router = APIRouter(tags=["account"])

# Deliberately loose (one @, a dot in the domain, no spaces or control characters, no invisible direction or
# zero-width characters that make one address look like another): the code sent to the address is the real check.
_NOT_IN_EMAIL = r"\s@\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
EMAIL = rf"^[^{_NOT_IN_EMAIL}]{{1,64}}@[^{_NOT_IN_EMAIL}]+\.[^{_NOT_IN_EMAIL}]+$"


def _trimmed(value: object) -> object:
    """Phone keyboards add a space after an address, and pasted ones carry line breaks: not part of it."""
    return value.strip() if isinstance(value, str) else value


# An email address as typed, trimmed of surrounding white space.
Email = Annotated[str, BeforeValidator(_trimmed), Field(min_length=6, max_length=254, pattern=EMAIL)]
PasswordField = Field(min_length=1, max_length=1024, description="At least 12 characters, not a common or breached password")
CodeField = Field(pattern=r"^\s*\d{6}\s*$", description="The 6-digit code from the email")

CHECK_EMAIL = "if the address can be used, a message with a code is on its way to it"


class Credentials(BaseModel):
    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [{"email": "ana@example.org", "password": "a long passphrase"}]}}

    email: Email
    password: str = PasswordField


class EmailIn(BaseModel):
    model_config = {"extra": "forbid"}

    email: Email


class CodeIn(BaseModel):
    model_config = {"extra": "forbid"}

    code: str = CodeField


class ResetIn(BaseModel):
    model_config = {"extra": "forbid"}

    email: Email
    code: str = CodeField
    password: str = PasswordField


class Accepted(BaseModel):
    status: str = Field(description="Always `check_email`: the answer is the same whether the address has an account")
    message: str


class AccountView(BaseModel):
    email: str
    email_verified: bool
    pending_email: str | None = Field(description="A corrected address waiting for its code")
    created_at: str
    devices: int = Field(description="Devices linked to the account (they share its data)")


class SignedIn(BaseModel):
    linked: bool
    # The device's data from before it was linked belonged to an anonymous subject of its own; it is erased.
    previous_erasure_id: str | None = Field(description="Erasure of what this device held before it was linked, if anything")


def accounts_of(gw: Gateway) -> Accounts:
    if gw.accounts is None:
        raise ApiError(404, "ACCOUNTS_DISABLED", "accounts are not enabled on this server (no account key or mail server)")
    return gw.accounts


async def account_of(acc: Accounts, device: Device) -> Account:
    account = await acc.repo.by_subject(device.subject_id)
    if account is None:
        raise ApiError(404, "NO_ACCOUNT", "this device is not signed in to an account")
    return account


def _weak(acc: Accounts, password: str, email: str) -> None:
    problems = acc.rules.problems(password, email)
    if problems:
        raise ApiError(
            400,
            "WEAK_PASSWORD",
            "choose a strong, unique password: at least "
            f"{acc.rules.min_length} characters, not a common or breached password, not your email address",
            {"problems": problems},
        )


async def _throttle(gw: Gateway, ip: str, email_hash: str, scope: str, per_account: int, window: int) -> None:
    """Count an attempt against the caller's network (/24, /56) and against the address (known or not)."""
    settings = gw.settings
    for bucket, limit, which in (
        (f"{scope}:net:" + ip_bucket(gw, network_prefix(ip, v6_bits=56)), settings.login_attempts_per_prefix, "network"),
        (f"{scope}:acct:" + email_hash[:32], per_account, "account"),
    ):
        retry = await gw.limiter.hit(bucket, limit, window)
        if retry:
            raise ApiError(
                429,
                "RATE_LIMITED",
                "too many attempts; wait before trying again",
                {"scope": f"{scope}_{which}"},
                {"Retry-After": str(retry)},
            )


async def _login_throttle(gw: Gateway, request: Request, email_hash: str) -> None:
    s = gw.settings
    await _throttle(gw, client_ip(request), email_hash, "login", s.login_attempts_per_account, s.login_window_seconds)


async def _code_throttle(gw: Gateway, request: Request, email_hash: str) -> None:
    await _throttle(gw, client_ip(request), email_hash, "code", gw.settings.account_codes_per_hour, 3600)


def _code_mail(to: str, code: str, purpose: CodePurpose, ttl: int) -> Mail:
    what = "confirm this email address" if purpose is CodePurpose.VERIFY_EMAIL else "choose a new password"
    return Mail(
        to,
        f"Your Likeness code: {code}",
        f"Enter {code} in the app to {what}. The code works once, for {ttl // 60} minutes.\n\n"
        "If you did not ask for it, ignore this message; nothing changes without the code.\n",
    )


def _in_use_mail(to: str) -> Mail:
    """Told to the owner of an address someone tried to use again (instead of telling the caller)."""
    return Mail(
        to,
        "Your Likeness account",
        "Someone asked to use this address for a Likeness account, and it already has one.\n"
        "If it was you, sign in, or reset your password from the app. If not, ignore this message.\n",
    )


def _send_code(gw: Gateway, acc: Accounts, account: Account, purpose: CodePurpose) -> None:
    """After the answer: a reset code to the account's address, or a confirmation code to its pending corrected
    address (a notice instead when another account has that address)."""
    ttl = gw.settings.account_code_ttl_seconds

    async def compose() -> Mail | None:
        if purpose is CodePurpose.VERIFY_EMAIL:
            to = await acc.repo.pending_email(account)
            if to is None:
                return None
            assert account.pending_email_hash is not None
            if await acc.repo.by_email_hash(account.pending_email_hash) is not None:
                return _in_use_mail(to)
        else:
            to = await acc.repo.email(account)
        code = new_code()
        await acc.repo.issue_code(
            account.account_id, purpose, code_hash(acc.code_key, account.account_id, purpose, code), timedelta(seconds=ttl)
        )
        return _code_mail(to, code, purpose, ttl)

    acc.outbox.post_job(compose, purpose.value)


async def _start_signup(gw: Gateway, acc: Accounts, subject_id: str, email: str, lookup: str, password_hash: str | None) -> None:
    """Store (or renew) a sign-up with a fresh code; the code is mailed only when the address has no account (else
    its owner gets a notice). Both cases store and answer the same."""
    ttl = gw.settings.account_code_ttl_seconds
    code = new_code()
    hashed = code_hash(acc.code_key, signup_ref(subject_id), CodePurpose.VERIFY_EMAIL, code)
    if password_hash is None:
        await acc.repo.reissue_signup_code(subject_id, hashed, timedelta(seconds=ttl))
    else:
        await acc.repo.start_signup(subject_id, email, lookup, password_hash, hashed, timedelta(seconds=ttl))
    taken = await acc.repo.by_email_hash(lookup) is not None
    acc.outbox.post(_in_use_mail(email) if taken else _code_mail(email, code, CodePurpose.VERIFY_EMAIL, ttl), "signup")


async def _view(acc: Accounts, gw: Gateway, account: Account) -> AccountView:
    return AccountView(
        email=await acc.repo.email(account),
        email_verified=account.email_verified_at is not None,
        pending_email=await acc.repo.pending_email(account),
        created_at=account.created_at.isoformat(),
        devices=await gw.devices.count_of_subject(account.subject_id),
    )


@router.post(
    "/v1/account",
    status_code=202,
    response_model=Accepted,
    summary="Start an account for this device's data: a code to confirm the address is emailed",
    description="The account exists once the code comes back (POST /v1/account/verify). The answer, and what the "
    "device can see afterwards, are the same whether or not the address already has an account: its owner gets a "
    "notice instead of a code.",
)
async def sign_up(body: Credentials, request: Request, response: Response, device: CurrentDevice, gw: GatewayDep) -> Accepted:
    response.headers.update(NO_STORE)
    acc = accounts_of(gw)
    lookup = email_lookup_hash(acc.lookup_key, body.email)
    await _code_throttle(gw, request, lookup)
    _weak(acc, body.password, body.email)
    if await acc.repo.by_subject(device.subject_id) is not None:
        raise ApiError(409, "ALREADY_SIGNED_IN", "this device is already signed in to an account")
    password_hash = await acc.passwords.hash_async(body.password)
    await _start_signup(gw, acc, device.subject_id, body.email.strip(), lookup, password_hash)
    await gw.privacy.record_security_event(device.subject_id, "account_sign_up", client_ip(request))
    return Accepted(status="check_email", message=CHECK_EMAIL)


@router.get("/v1/account", response_model=AccountView, summary="The account this device is signed in to")
async def get_account(response: Response, device: CurrentDevice, gw: GatewayDep) -> AccountView:
    response.headers.update(NO_STORE)
    acc = accounts_of(gw)
    account = await account_of(acc, device)
    await gw.privacy.record_access(device.subject_id, f"gateway/account/{account.account_id}/email", "subject_access")
    return await _view(acc, gw, account)


@router.post(
    "/v1/account/verify",
    response_model=AccountView,
    summary="Confirm the address with the emailed code: creates the account, or applies a corrected address",
)
async def verify_email(body: CodeIn, request: Request, device: CurrentDevice, gw: GatewayDep) -> AccountView:
    acc = accounts_of(gw)
    max_attempts = gw.settings.account_code_max_attempts
    invalid = ApiError(400, "INVALID_CODE", "the code is wrong, used or expired; ask for a new one")
    signup = await acc.repo.signup_of(device.subject_id)
    if signup is not None:
        hashed = code_hash(acc.code_key, signup.code_ref, CodePurpose.VERIFY_EMAIL, body.code)
        if not await acc.repo.use_signup_code(device.subject_id, hashed, max_attempts):
            raise invalid
        # Notices reach the address from the moment it is the account's. Privacy is told first: when it cannot be
        # reached the sign-up (and its code) stays for a retry, instead of an account that incident emails miss.
        rights = RightsClient(gw.privacy)
        await rights.set_notice_email(device.subject_id, await acc.repo.signup_email(signup))
        created = await acc.repo.finish_signup(signup)
        if created is None:
            await rights.set_notice_email(device.subject_id, "")
            raise ApiError(409, "EMAIL_IN_USE", "the address is used by another account now; nothing was created")
        await gw.privacy.record_security_event(device.subject_id, "account_created", client_ip(request))
        return await _view(acc, gw, created)
    account = await acc.repo.by_subject(device.subject_id)
    if account is None or account.pending_email_hash is None:
        raise invalid
    hashed = code_hash(acc.code_key, account.account_id, CodePurpose.VERIFY_EMAIL, body.code)
    if not await acc.repo.use_code(account.account_id, CodePurpose.VERIFY_EMAIL, hashed, max_attempts):
        raise invalid
    # A correction of the address (PATCH /v1/me): recorded before it is made.
    await gw.privacy.record_access(device.subject_id, f"gateway/account/{account.account_id}/email", "correction")
    # Notices follow the correction: the new address from now on, the old one no more (put back if it fails).
    rights = RightsClient(gw.privacy)
    new_email = await acc.repo.pending_email(account)
    assert new_email is not None
    await rights.set_notice_email(device.subject_id, new_email)
    if not await acc.repo.confirm_email(account):
        await rights.set_notice_email(device.subject_id, await acc.repo.email(account))
        raise ApiError(409, "EMAIL_IN_USE", "the new address is used by another account now; nothing changed")
    fresh = await acc.repo.by_subject(device.subject_id)
    assert fresh is not None
    return await _view(acc, gw, fresh)


@router.post(
    "/v1/account/verify:resend",
    status_code=202,
    response_model=Accepted,
    summary="Email a new code for the waiting sign-up or address correction (202 whether or not one waits)",
)
async def resend_code(request: Request, device: CurrentDevice, gw: GatewayDep) -> Accepted:
    acc = accounts_of(gw)
    signup = await acc.repo.signup_of(device.subject_id)
    if signup is not None:
        await _code_throttle(gw, request, signup.email_hash)
        await _start_signup(gw, acc, device.subject_id, await acc.repo.signup_email(signup), signup.email_hash, None)
    elif (account := await acc.repo.by_subject(device.subject_id)) is not None and account.pending_email_hash is not None:
        await _code_throttle(gw, request, account.pending_email_hash)
        _send_code(gw, acc, account, CodePurpose.VERIFY_EMAIL)
    return Accepted(status="check_email", message=CHECK_EMAIL)


@router.post(
    "/v1/account/login",
    response_model=SignedIn,
    summary="Sign in: link this device to the account, so it shares the account's data",
    description="Throttled per address and per network. Wrong address and wrong password answer the same "
    "`INVALID_CREDENTIALS`. What the device held before it was linked (its own anonymous data) is erased.",
)
async def login(body: Credentials, request: Request, response: Response, device: CurrentDevice, gw: GatewayDep) -> SignedIn:
    response.headers.update(NO_STORE)
    acc = accounts_of(gw)
    ip = client_ip(request)
    lookup = email_lookup_hash(acc.lookup_key, body.email)
    await _login_throttle(gw, request, lookup)
    account = await acc.repo.by_email_hash(lookup)
    # With no account the check runs against a decoy hash: the same work, the same answer.
    if not await acc.passwords.verify_async(account.password_hash if account else None, body.password):
        await gw.privacy.record_security_event(device.subject_id, "login_failed", ip)
        raise ApiError(401, "INVALID_CREDENTIALS", "the email address or the password is wrong")
    assert account is not None
    if acc.passwords.needs_rehash(account.password_hash):
        await acc.repo.set_password(account.account_id, await acc.passwords.hash_async(body.password))
    await gw.privacy.record_security_event(account.subject_id, "login", ip)
    if device.subject_id == account.subject_id:
        return SignedIn(linked=True, previous_erasure_id=None)
    previous = await gw.devices.link(device.device_id, account.subject_id)
    if previous is None:
        raise ApiError(401, "UNAUTHENTICATED", "the token is not valid (unknown, revoked, or its data was deleted)")
    gw.inline_images.forget_subject(previous)
    erasure_id = None
    # The device's own anonymous subject is left with nothing that can reach it: erase it, unless another
    # device or an account still uses it.
    if await gw.devices.count_of_subject(previous) == 0 and await acc.repo.by_subject(previous) is None:
        erasure_id = (await gw.privacy.request_erasure(previous, "linked_to_account")).erasure_id
    return SignedIn(linked=True, previous_erasure_id=erasure_id)


@router.post(
    "/v1/account/password-reset",
    status_code=202,
    response_model=Accepted,
    summary="Email a password-reset code (the same answer whether or not the address has an account)",
)
async def request_reset(body: EmailIn, request: Request, response: Response, _: CurrentDevice, gw: GatewayDep) -> Accepted:
    response.headers.update(NO_STORE)
    acc = accounts_of(gw)
    lookup = email_lookup_hash(acc.lookup_key, body.email)
    await _code_throttle(gw, request, lookup)
    account = await acc.repo.by_email_hash(lookup)
    if account is not None:
        _send_code(gw, acc, account, CodePurpose.RESET_PASSWORD)
    return Accepted(status="check_email", message=CHECK_EMAIL)


@router.post(
    "/v1/account/password-reset/confirm",
    status_code=204,
    summary="Set a new password with the emailed code; every device linked to the account is signed out",
)
async def confirm_reset(body: ResetIn, request: Request, device: CurrentDevice, gw: GatewayDep) -> Response:
    acc = accounts_of(gw)
    lookup = email_lookup_hash(acc.lookup_key, body.email)
    await _login_throttle(gw, request, lookup)
    _weak(acc, body.password, body.email)
    password_hash = await acc.passwords.hash_async(body.password)
    account = await acc.repo.by_email_hash(lookup)
    max_attempts = gw.settings.account_code_max_attempts
    hashed = code_hash(acc.code_key, account.account_id, CodePurpose.RESET_PASSWORD, body.code) if account else ""
    if account is None or not await acc.repo.use_code(account.account_id, CodePurpose.RESET_PASSWORD, hashed, max_attempts):
        raise ApiError(400, "INVALID_CODE", "the code is wrong, used or expired; ask for a new one")
    await acc.repo.set_password(account.account_id, password_hash)
    await gw.devices.revoke_subject(account.subject_id)
    await gw.privacy.record_security_event(account.subject_id, "password_reset", client_ip(request))
    return Response(status_code=204, headers=NO_STORE)


@router.delete(
    "/v1/account",
    status_code=202,
    response_model=me.ErasureStatus,
    summary="Cancel the account: the same erasure as DELETE /v1/me, for every linked device",
)
async def cancel_account(device: ErasingDevice, gw: GatewayDep) -> me.ErasureStatus:
    acc = accounts_of(gw)
    if device.active:
        await account_of(acc, device)
    return await me.erase_subject(gw, device)
