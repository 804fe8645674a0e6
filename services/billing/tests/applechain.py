"""A throwaway Apple-like signing chain and App Store payload builders, for tests only.

The chain mirrors the shape Apple uses (root -> intermediate marked with
1.2.840.113635.100.6.2.1 -> leaf marked with 1.2.840.113635.100.6.11.1, all P-256) so the real
`SignedDataVerifier` accepts it with strict X.509 checks when given this root. Other suites
import it as `services.billing.tests.applechain` (the repository root is on the test path).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from likeness_billing.adapters.apple_verifier import AppleVerifier

INTERMEDIATE_MARKER_OID = "1.2.840.113635.100.6.2.1"
LEAF_MARKER_OID = "1.2.840.113635.100.6.11.1"
# Apple's marker extensions carry an ASN.1 NULL.
_ASN1_NULL = b"\x05\x00"

BUNDLE_ID = "com.likeness.tests"
APP_APPLE_ID = 1234567890

DEFAULT_NOT_BEFORE = datetime(2020, 1, 1, tzinfo=UTC)
DEFAULT_NOT_AFTER = datetime(2045, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AppleTestChain:
    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey
    intermediate: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate

    @property
    def root_der(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.DER)

    @property
    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    def x5c(self) -> list[str]:
        return [_b64_der(self.leaf), _b64_der(self.intermediate), _b64_der(self.root)]

    def sign(
        self,
        payload: Mapping[str, Any],
        *,
        x5c: Sequence[str] | None = None,
        algorithm: str = "ES256",
    ) -> str:
        """Sign `payload` as a JWS the way the App Store does (ES256, x5c header)."""
        headers = {"x5c": list(x5c if x5c is not None else self.x5c())}
        return jwt.encode(dict(payload), self.leaf_key, algorithm=algorithm, headers=headers)

    def write_root(self, path: Path, *, pem: bool = True) -> Path:
        path.write_bytes(self.root_pem if pem else self.root_der)
        return path


def build_chain(
    *,
    name: str = "Likeness Test",
    not_before: datetime = DEFAULT_NOT_BEFORE,
    not_after: datetime = DEFAULT_NOT_AFTER,
    leaf_marker: bool = True,
    intermediate_marker: bool = True,
) -> AppleTestChain:
    root_key = ec.generate_private_key(ec.SECP256R1())
    intermediate_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(f"{name} Root CA")
    intermediate_name = _name(f"{name} Intermediate CA")

    root = (
        _base(root_name, root_name, root_key, not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    builder = (
        _base(intermediate_name, root_name, intermediate_key, not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(intermediate_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
    )
    if intermediate_marker:
        builder = builder.add_extension(_marker(INTERMEDIATE_MARKER_OID), critical=False)
    intermediate = builder.sign(root_key, hashes.SHA256())

    builder = (
        _base(_name(f"{name} Signing"), intermediate_name, leaf_key, not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(intermediate_key.public_key()),
            critical=False,
        )
    )
    if leaf_marker:
        builder = builder.add_extension(_marker(LEAF_MARKER_OID), critical=False)
    leaf = builder.sign(intermediate_key, hashes.SHA256())
    return AppleTestChain(root_key, root, intermediate_key, intermediate, leaf_key, leaf)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Likeness Tests"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )


def _base(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _marker(oid: str) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), _ASN1_NULL)


def _b64_der(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def offline_verifier(
    chain: AppleTestChain, environment: str = "Sandbox", *, app_apple_id: int | None = APP_APPLE_ID, **options: Any
) -> AppleVerifier:
    """A verifier for the test app that trusts only `chain`'s root and never calls Apple online."""
    return AppleVerifier(
        root_certificates=[chain.root_der],
        bundle_id=BUNDLE_ID,
        app_apple_id=app_apple_id,
        environment=environment,
        enable_online_checks=False,
        **options,
    )


def ms(moment: datetime) -> int:
    """App Store payloads carry dates as milliseconds since the epoch."""
    return int(moment.timestamp() * 1000)


def transaction_payload(
    *,
    transaction_id: str = "2000000000000001",
    original_transaction_id: str | None = None,
    product_id: str = "likeness.pro.monthly",
    product_type: str = "Auto-Renewable Subscription",
    purchase_date: datetime | None = None,
    expires_date: datetime | None = None,
    signed_date: datetime | None = None,
    environment: str = "Sandbox",
    bundle_id: str = BUNDLE_ID,
    app_account_token: str | None = None,
    revocation_date: datetime | None = None,
    revocation_reason: int | None = None,
    offer_type: int | None = None,
    offer_discount_type: str | None = None,
) -> dict[str, Any]:
    """A JWSTransaction body as Apple sends it, price and storefront included."""
    purchase = purchase_date or datetime.now(UTC).replace(microsecond=0)
    body: dict[str, Any] = {
        "transactionId": transaction_id,
        "originalTransactionId": original_transaction_id or transaction_id,
        "webOrderLineItemId": "20000000000001",
        "bundleId": bundle_id,
        "productId": product_id,
        "subscriptionGroupIdentifier": "21000001",
        "purchaseDate": ms(purchase),
        "originalPurchaseDate": ms(purchase),
        "quantity": 1,
        "type": product_type,
        "inAppOwnershipType": "PURCHASED",
        "signedDate": ms(signed_date or purchase),
        "environment": environment,
        "transactionReason": "PURCHASE",
        "storefront": "USA",
        "storefrontId": "143441",
        "price": 4990,
        "currency": "USD",
    }
    if product_type == "Auto-Renewable Subscription":
        body["expiresDate"] = ms(expires_date or purchase + timedelta(days=30))
    elif expires_date is not None:
        body["expiresDate"] = ms(expires_date)
    if app_account_token is not None:
        body["appAccountToken"] = app_account_token
    if revocation_date is not None:
        body["revocationDate"] = ms(revocation_date)
        body["revocationReason"] = 0 if revocation_reason is None else revocation_reason
    if offer_type is not None:
        body["offerType"] = offer_type
    if offer_discount_type is not None:
        body["offerDiscountType"] = offer_discount_type
    return body


def renewal_payload(
    *,
    original_transaction_id: str,
    product_id: str = "likeness.pro.monthly",
    auto_renew: bool = True,
    signed_date: datetime | None = None,
    environment: str = "Sandbox",
    grace_period_expires_date: datetime | None = None,
    in_billing_retry: bool = False,
    expiration_intent: int | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "originalTransactionId": original_transaction_id,
        "autoRenewProductId": product_id,
        "productId": product_id,
        "autoRenewStatus": 1 if auto_renew else 0,
        "isInBillingRetryPeriod": in_billing_retry,
        "signedDate": ms(signed_date or datetime.now(UTC)),
        "environment": environment,
        "renewalPrice": 4990,
        "currency": "USD",
    }
    if grace_period_expires_date is not None:
        body["gracePeriodExpiresDate"] = ms(grace_period_expires_date)
    if expiration_intent is not None:
        body["expirationIntent"] = expiration_intent
    return body


def notification_payload(
    *,
    notification_type: str,
    subtype: str | None = None,
    signed_date: datetime,
    signed_transaction: str | None = None,
    signed_renewal: str | None = None,
    status: int | None = None,
    notification_uuid: str | None = None,
    environment: str = "Sandbox",
    bundle_id: str = BUNDLE_ID,
    app_apple_id: int | None = APP_APPLE_ID,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "bundleId": bundle_id,
        "bundleVersion": "1.0",
        "environment": environment,
    }
    if app_apple_id is not None:
        data["appAppleId"] = app_apple_id
    if signed_transaction is not None:
        data["signedTransactionInfo"] = signed_transaction
    if signed_renewal is not None:
        data["signedRenewalInfo"] = signed_renewal
    if status is not None:
        data["status"] = status
    body: dict[str, Any] = {
        "notificationType": notification_type,
        "notificationUUID": notification_uuid or str(uuid.uuid4()),
        "data": data,
        "version": "2.0",
        "signedDate": ms(signed_date),
    }
    if subtype is not None:
        body["subtype"] = subtype
    return body


def tamper(signed: str, **changes: Any) -> str:
    """Rewrite claims of a JWS while keeping its header and (now wrong) signature."""
    header, payload, signature = signed.split(".")
    padded = payload + "=" * (-len(payload) % 4)
    claims = json.loads(base64.urlsafe_b64decode(padded))
    claims.update(changes)
    encoded = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


def new_transaction_id() -> str:
    """A fresh App Store style (decimal) transaction id, unique per call in practice."""
    return str(2_000_000_000_000_000 + uuid.uuid4().int % 1_000_000_000_000_000)
