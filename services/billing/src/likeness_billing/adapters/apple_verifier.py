"""Verification of App Store signed data (StoreKit 2 transactions, renewal info, notifications).

Wraps the library's `SignedDataVerifier`, adding what a server needs around it: root
certificates from files, a refusal of the signature-skipping test environments, the sandbox
fallback App Review depends on, and errors that say what was wrong with the data.
The methods are synchronous and CPU-bound (and block on OCSP with online checks on): call
them from a worker thread in async code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import TypeVar

import jwt
from appstoreserverlibrary.models.Environment import Environment
from appstoreserverlibrary.models.JWSRenewalInfoDecodedPayload import JWSRenewalInfoDecodedPayload
from appstoreserverlibrary.models.JWSTransactionDecodedPayload import JWSTransactionDecodedPayload
from appstoreserverlibrary.signed_data_verifier import (
    SignedDataVerifier,
    VerificationException,
    VerificationStatus,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import crypto

from likeness_billing.domain.errors import VerificationFailed, VerificationReason
from likeness_billing.domain.purchases import (
    Notification,
    ProductType,
    RenewalInfo,
    StoreEnvironment,
    Transaction,
)

T = TypeVar("T")

# A notification with two nested JWS is a few KiB; anything far larger is not from Apple.
MAX_SIGNED_DATA_CHARS = 256 * 1024

_INSECURE = (Environment.XCODE, Environment.LOCAL_TESTING)
_FALLBACK_STATUSES = (VerificationStatus.INVALID_ENVIRONMENT, VerificationStatus.INVALID_APP_IDENTIFIER)

# OpenSSL verify errors meaning "the chain is fine but was not valid at signedDate".
_X509_NOT_YET_VALID = 9
_X509_EXPIRED = 10


def load_root_certificates(paths: Sequence[str | PathLike[str]]) -> list[bytes]:
    """Read trusted roots (DER, or PEM with one or more certificates) and return them as DER."""
    roots: list[bytes] = []
    for path in paths:
        data = Path(path).read_bytes()
        try:
            pem = b"-----BEGIN" in data
            certs = x509.load_pem_x509_certificates(data) if pem else [x509.load_der_x509_certificate(data)]
        except ValueError as exc:
            raise ValueError(f"{path}: not a DER or PEM X.509 certificate file") from exc
        roots.extend(cert.public_bytes(serialization.Encoding.DER) for cert in certs)
    return roots


class AppleVerifier:
    """Verifies App Store signed data for one app against the configured roots."""

    def __init__(
        self,
        *,
        root_certificates: Sequence[bytes],
        bundle_id: str,
        app_apple_id: int | None,
        environment: Environment | str,
        enable_online_checks: bool = True,
        allow_insecure_test_environments: bool = False,
        sandbox_fallback: bool = True,
    ) -> None:
        env = Environment(environment)
        if env in _INSECURE and not allow_insecure_test_environments:
            raise ValueError(
                f"the {env.value} environment skips signature checks; it is allowed only in tests (allow_insecure_test_environments=True)"
            )
        if env not in _INSECURE and not root_certificates:
            raise ValueError("at least one trusted root certificate is required")
        if not bundle_id:
            raise ValueError("bundle id is required")
        if env is Environment.PRODUCTION and app_apple_id is None:
            raise ValueError("the app's Apple id is required in the Production environment")
        self._environment = env
        self._primary = SignedDataVerifier(list(root_certificates), enable_online_checks, env, bundle_id, app_apple_id)
        # App Review buys with sandbox accounts against the production build.
        self._fallback: SignedDataVerifier | None = None
        if env is Environment.PRODUCTION and sandbox_fallback:
            self._fallback = SignedDataVerifier(list(root_certificates), enable_online_checks, Environment.SANDBOX, bundle_id, app_apple_id)

    @property
    def environment(self) -> StoreEnvironment:
        return StoreEnvironment(self._environment.value)

    def verify_transaction(self, signed_transaction: str) -> Transaction:
        _check_size(signed_transaction)
        decoded, _, _ = self._verify(lambda v: v.verify_and_decode_signed_transaction(signed_transaction))
        return _transaction(decoded, signed_transaction)

    def verify_renewal_info(self, signed_renewal_info: str) -> RenewalInfo:
        _check_size(signed_renewal_info)
        decoded, _, _ = self._verify(lambda v: v.verify_and_decode_renewal_info(signed_renewal_info))
        return _renewal(decoded)

    def verify_notification(self, signed_payload: str) -> Notification:
        _check_size(signed_payload)
        decoded, verifier, environment = self._verify(lambda v: v.verify_and_decode_notification(signed_payload))
        transaction: Transaction | None = None
        renewal: RenewalInfo | None = None
        status: int | None = None
        data = decoded.data
        if data is not None:
            status = data.rawStatus
            # Nested JWS are verified by the verifier that accepted the envelope, so a
            # sandbox notification cannot smuggle in data for the other environment.
            if data.signedTransactionInfo:
                signed = data.signedTransactionInfo
                transaction = _transaction(_call(lambda: verifier.verify_and_decode_signed_transaction(signed)), signed)
            if data.signedRenewalInfo:
                signed_renewal = data.signedRenewalInfo
                renewal = _renewal(_call(lambda: verifier.verify_and_decode_renewal_info(signed_renewal)))
        uuid = decoded.notificationUUID
        kind = decoded.rawNotificationType
        signed_date = decoded.signedDate
        if not uuid or not kind or signed_date is None:
            raise VerificationFailed(
                VerificationReason.MALFORMED,
                "notification lacks notificationUUID, notificationType or signedDate",
            )
        return Notification(
            notification_uuid=uuid,
            notification_type=kind,
            subtype=decoded.rawSubtype,
            signed_date=_date(signed_date),
            environment=environment,
            status=status,
            transaction=transaction,
            renewal=renewal,
        )

    def _verify(self, call: Callable[[SignedDataVerifier], T]) -> tuple[T, SignedDataVerifier, StoreEnvironment]:
        try:
            return call(self._primary), self._primary, self.environment
        except VerificationException as exc:
            first = exc
        except Exception:
            raise _malformed() from None
        # The production verifier checks the app Apple id before the environment, and sandbox
        # notifications may omit it, so either refusal can hide a valid sandbox payload.
        fallback = self._fallback
        if fallback is None or first.status not in _FALLBACK_STATUSES:
            raise _refusal(first, self._environment) from None
        try:
            return call(fallback), fallback, StoreEnvironment.SANDBOX
        except VerificationException as exc:
            # Data that is not sandbox data is best explained by the production refusal.
            reported = first if exc.status == VerificationStatus.INVALID_ENVIRONMENT else exc
            raise _refusal(reported, self._environment) from None
        except Exception:
            raise _malformed() from None


def _call(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except VerificationException as exc:
        raise _refusal(exc, None) from None
    except Exception:
        raise _malformed() from None


def _check_size(signed: str) -> None:
    if not isinstance(signed, str) or not signed or len(signed) > MAX_SIGNED_DATA_CHARS:
        raise VerificationFailed(
            VerificationReason.MALFORMED,
            f"signed data must be a JWS of 1 to {MAX_SIGNED_DATA_CHARS} characters",
        )


def _malformed() -> VerificationFailed:
    return VerificationFailed(VerificationReason.MALFORMED, "signed data is not an App Store payload of the expected shape")


def _refusal(exc: VerificationException, configured: Environment | None) -> VerificationFailed:
    status = exc.status
    if status == VerificationStatus.INVALID_APP_IDENTIFIER:
        return VerificationFailed(
            VerificationReason.WRONG_APP,
            "signed data belongs to a different app (bundle id or app Apple id does not match)",
        )
    if status == VerificationStatus.INVALID_ENVIRONMENT:
        accepted = (
            "Production or Sandbox"
            if configured is Environment.PRODUCTION
            else (configured.value if configured is not None else "this server's environment")
        )
        return VerificationFailed(
            VerificationReason.WRONG_ENVIRONMENT,
            f"signed data comes from another App Store environment; this server accepts {accepted}",
        )
    if status == VerificationStatus.INVALID_CHAIN_LENGTH:
        return VerificationFailed(
            VerificationReason.BAD_CHAIN_LENGTH,
            "the x5c header must hold exactly three certificates: leaf, intermediate and root",
        )
    if status == VerificationStatus.INVALID_CERTIFICATE:
        return VerificationFailed(VerificationReason.BAD_CERTIFICATE, "the x5c certificates could not be parsed")
    if status == VerificationStatus.INVALID_CHAIN:
        return VerificationFailed(VerificationReason.INVALID_CHAIN, "the certificate chain is invalid")
    if status == VerificationStatus.RETRYABLE_VERIFICATION_FAILURE:
        return VerificationFailed(
            VerificationReason.RETRYABLE,
            "Apple's certificate status service could not be reached; retry later",
        )
    return _refine_failure(exc.__cause__)


def _refine_failure(cause: BaseException | None) -> VerificationFailed:
    # The library reports most problems as one generic status; the cause tells them apart.
    if isinstance(cause, crypto.X509StoreContextError):
        code = cause.errors[0] if cause.errors else None
        if code in (_X509_EXPIRED, _X509_NOT_YET_VALID):
            return VerificationFailed(
                VerificationReason.CERTIFICATE_NOT_VALID_AT_SIGNING,
                "a certificate in the chain was not valid at the payload's signedDate",
            )
        return VerificationFailed(
            VerificationReason.UNTRUSTED_CHAIN,
            "certificate chain does not lead to a trusted Apple root",
        )
    if isinstance(cause, x509.ExtensionNotFound):
        return VerificationFailed(
            VerificationReason.MISSING_APPLE_MARKER,
            "the signing certificates lack Apple's App Store marker extensions",
        )
    if isinstance(cause, jwt.InvalidSignatureError):
        return VerificationFailed(
            VerificationReason.BAD_SIGNATURE,
            "the payload does not match its signature (tampered or corrupted)",
        )
    if isinstance(cause, jwt.DecodeError):
        return VerificationFailed(VerificationReason.MALFORMED, "signed data is not a well-formed JWS")
    text = str(cause) if cause is not None else ""
    if "x5c" in text:
        return VerificationFailed(VerificationReason.MALFORMED, "the JWS header carries no x5c certificate chain")
    if "ES256" in text:
        return VerificationFailed(VerificationReason.MALFORMED, "the JWS algorithm must be ES256")
    return VerificationFailed(VerificationReason.FAILURE, "signed data could not be verified")


def _date(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def _opt_date(millis: int | None) -> datetime | None:
    return _date(millis) if millis is not None else None


def _environment(raw: str | None) -> StoreEnvironment:
    try:
        return StoreEnvironment(raw or "")
    except ValueError:
        raise VerificationFailed(VerificationReason.MALFORMED, "signed data names no known App Store environment") from None


def _transaction(decoded: JWSTransactionDecodedPayload, signed: str) -> Transaction:
    transaction_id = decoded.transactionId
    original_id = decoded.originalTransactionId
    product_id = decoded.productId
    purchase_date = decoded.purchaseDate
    signed_date = decoded.signedDate
    if not transaction_id or not original_id or not product_id or purchase_date is None or signed_date is None:
        raise VerificationFailed(
            VerificationReason.MALFORMED,
            "signed transaction lacks transactionId, originalTransactionId, productId, purchaseDate or signedDate",
        )
    try:
        product_type = ProductType(decoded.rawType or "")
    except ValueError:
        raise VerificationFailed(VerificationReason.MALFORMED, "signed transaction has a missing or unknown product type") from None
    return Transaction(
        transaction_id=transaction_id,
        original_transaction_id=original_id,
        product_id=product_id,
        product_type=product_type,
        purchase_date=_date(purchase_date),
        expires_date=_opt_date(decoded.expiresDate),
        offer_type=decoded.rawOfferType,
        offer_discount_type=decoded.rawOfferDiscountType,
        environment=_environment(decoded.rawEnvironment),
        revocation_date=_opt_date(decoded.revocationDate),
        revocation_reason=decoded.rawRevocationReason,
        signed_date=_date(signed_date),
        app_account_token=decoded.appAccountToken,
        signed_transaction=signed,
    )


def _renewal(decoded: JWSRenewalInfoDecodedPayload) -> RenewalInfo:
    if not decoded.originalTransactionId or decoded.signedDate is None:
        raise VerificationFailed(VerificationReason.MALFORMED, "signed renewal info lacks originalTransactionId or signedDate")
    auto = decoded.rawAutoRenewStatus
    return RenewalInfo(
        original_transaction_id=decoded.originalTransactionId,
        auto_renew=None if auto is None else auto == 1,
        auto_renew_product_id=decoded.autoRenewProductId,
        expiration_intent=decoded.rawExpirationIntent,
        in_billing_retry=decoded.isInBillingRetryPeriod,
        grace_period_expires_date=_opt_date(decoded.gracePeriodExpiresDate),
        signed_date=_date(decoded.signedDate),
        environment=_environment(decoded.rawEnvironment),
    )
