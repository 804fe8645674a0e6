from __future__ import annotations

import uuid
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from likeness_billing.adapters.apple_verifier import AppleVerifier, load_root_certificates
from likeness_billing.domain.errors import VerificationFailed, VerificationReason
from likeness_billing.domain.purchases import ProductType, StoreEnvironment

from .applechain import (
    BUNDLE_ID,
    AppleTestChain,
    build_chain,
    ms,
    notification_payload,
    offline_verifier,
    renewal_payload,
    tamper,
    transaction_payload,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def production_verifier(chain: AppleTestChain, *, sandbox_fallback: bool = True) -> AppleVerifier:
    return offline_verifier(chain, "Production", sandbox_fallback=sandbox_fallback)


def refusal(verifier: AppleVerifier, signed: str) -> VerificationFailed:
    with pytest.raises(VerificationFailed) as info:
        verifier.verify_transaction(signed)
    # Error text is shown to clients and logged: it must never echo the signed data.
    assert not signed or signed not in info.value.message
    return info.value


def test_valid_purchase_is_accepted_and_reduced_to_kept_fields(chain: AppleTestChain, verifier: AppleVerifier) -> None:
    token = str(uuid.uuid4())
    body = transaction_payload(
        transaction_id="2000000000000042",
        original_transaction_id="2000000000000040",
        purchase_date=NOW,
        expires_date=NOW + timedelta(days=7),
        app_account_token=token,
        offer_type=1,
        offer_discount_type="FREE_TRIAL",
    )
    signed = chain.sign(body)

    t = verifier.verify_transaction(signed)

    assert t.transaction_id == "2000000000000042"
    assert t.original_transaction_id == "2000000000000040"
    assert t.product_type is ProductType.AUTO_RENEWABLE
    assert t.purchase_date == NOW
    assert t.expires_date == NOW + timedelta(days=7)
    assert t.environment is StoreEnvironment.SANDBOX
    assert t.app_account_token == token
    assert t.is_free_trial
    assert not t.revoked
    assert t.signed_transaction == signed
    kept = {f.name for f in fields(t)}
    assert not kept & {"price", "currency", "storefront", "storefront_id"}


def test_wrong_root_is_rejected(chain: AppleTestChain, verifier: AppleVerifier) -> None:
    stranger = build_chain(name="Stranger")
    error = refusal(verifier, stranger.sign(transaction_payload()))
    assert error.reason is VerificationReason.UNTRUSTED_CHAIN
    assert error.message == "certificate chain does not lead to a trusted Apple root"


def test_tampered_payload_is_rejected(chain: AppleTestChain, verifier: AppleVerifier) -> None:
    signed = chain.sign(transaction_payload(product_id="likeness.pro.monthly"))
    error = refusal(verifier, tamper(signed, productId="likeness.pro.lifetime"))
    assert error.reason is VerificationReason.BAD_SIGNATURE
    assert "tampered" in error.message


def test_two_certificate_chain_is_rejected(chain: AppleTestChain, verifier: AppleVerifier) -> None:
    signed = chain.sign(transaction_payload(), x5c=chain.x5c()[:2])
    error = refusal(verifier, signed)
    assert error.reason is VerificationReason.BAD_CHAIN_LENGTH
    assert "exactly three certificates" in error.message


def test_wrong_bundle_id_is_rejected(chain: AppleTestChain, verifier: AppleVerifier) -> None:
    error = refusal(verifier, chain.sign(transaction_payload(bundle_id="com.someone.else")))
    assert error.reason is VerificationReason.WRONG_APP
    assert "different app" in error.message


def test_wrong_environment_is_rejected(chain: AppleTestChain, verifier: AppleVerifier) -> None:
    error = refusal(verifier, chain.sign(transaction_payload(environment="Production")))
    assert error.reason is VerificationReason.WRONG_ENVIRONMENT
    assert "accepts Sandbox" in error.message


def test_leaf_without_apple_marker_is_rejected() -> None:
    unmarked = build_chain(name="Unmarked", leaf_marker=False)
    v = offline_verifier(unmarked, app_apple_id=None)
    error = refusal(v, unmarked.sign(transaction_payload()))
    assert error.reason is VerificationReason.MISSING_APPLE_MARKER


def test_chain_expired_at_signed_date_is_rejected() -> None:
    old = build_chain(
        name="Old",
        not_before=datetime(2018, 1, 1, tzinfo=UTC),
        not_after=datetime(2020, 1, 1, tzinfo=UTC),
    )
    v = offline_verifier(old, app_apple_id=None)
    # Checked at the payload's signedDate: valid then, accepted; signed after expiry, refused.
    assert v.verify_transaction(old.sign(transaction_payload(purchase_date=datetime(2019, 6, 1, tzinfo=UTC))))
    error = refusal(v, old.sign(transaction_payload(purchase_date=NOW)))
    assert error.reason is VerificationReason.CERTIFICATE_NOT_VALID_AT_SIGNING


def test_non_es256_and_garbage_are_rejected(chain: AppleTestChain, verifier: AppleVerifier) -> None:
    hs = jwt.encode(transaction_payload(), "k" * 32, algorithm="HS256", headers={"x5c": chain.x5c()})
    assert "ES256" in refusal(verifier, hs).message
    assert refusal(verifier, "not-a-jws").reason is VerificationReason.MALFORMED
    assert refusal(verifier, "").reason is VerificationReason.MALFORMED


def test_missing_required_field_is_rejected(chain: AppleTestChain, verifier: AppleVerifier) -> None:
    body = transaction_payload()
    del body["productId"]
    error = refusal(verifier, chain.sign(body))
    assert error.reason is VerificationReason.MALFORMED
    assert "productId" in error.message


def test_production_falls_back_to_sandbox_and_records_it(chain: AppleTestChain) -> None:
    v = production_verifier(chain)
    sandbox = v.verify_transaction(chain.sign(transaction_payload(environment="Sandbox")))
    production = v.verify_transaction(chain.sign(transaction_payload(environment="Production")))
    assert sandbox.environment is StoreEnvironment.SANDBOX
    assert production.environment is StoreEnvironment.PRODUCTION


def test_production_without_fallback_refuses_sandbox(chain: AppleTestChain) -> None:
    v = production_verifier(chain, sandbox_fallback=False)
    error = refusal(v, chain.sign(transaction_payload(environment="Sandbox")))
    assert error.reason is VerificationReason.WRONG_ENVIRONMENT


def test_fallback_does_not_hide_a_wrong_app(chain: AppleTestChain) -> None:
    v = production_verifier(chain)
    for env in ("Sandbox", "Production"):
        error = refusal(v, chain.sign(transaction_payload(environment=env, bundle_id="com.other")))
        assert error.reason is VerificationReason.WRONG_APP


def test_fallback_does_not_accept_untrusted_sandbox_data(chain: AppleTestChain) -> None:
    v = production_verifier(chain)
    stranger = build_chain(name="Stranger")
    error = refusal(v, stranger.sign(transaction_payload(environment="Sandbox")))
    assert error.reason is VerificationReason.UNTRUSTED_CHAIN


@pytest.mark.parametrize("environment", ["Xcode", "LocalTesting"])
def test_insecure_environments_need_the_explicit_flag(chain: AppleTestChain, environment: str) -> None:
    with pytest.raises(ValueError, match="only in tests"):
        AppleVerifier(
            root_certificates=[chain.root_der],
            bundle_id=BUNDLE_ID,
            app_apple_id=None,
            environment=environment,
        )
    v = AppleVerifier(
        root_certificates=[],
        bundle_id=BUNDLE_ID,
        app_apple_id=None,
        environment=environment,
        allow_insecure_test_environments=True,
    )
    # The point of refusing it: a payload signed by anyone at all is accepted.
    forged = build_chain(name="Forger").sign(transaction_payload(environment=environment))
    assert v.verify_transaction(forged).environment is StoreEnvironment(environment)


def test_configuration_errors_are_refused_at_construction(chain: AppleTestChain) -> None:
    with pytest.raises(ValueError, match="root certificate"):
        AppleVerifier(root_certificates=[], bundle_id=BUNDLE_ID, app_apple_id=1, environment="Sandbox")
    with pytest.raises(ValueError, match="Apple id"):
        AppleVerifier(root_certificates=[chain.root_der], bundle_id=BUNDLE_ID, app_apple_id=None, environment="Production")
    with pytest.raises(ValueError):
        AppleVerifier(root_certificates=[chain.root_der], bundle_id=BUNDLE_ID, app_apple_id=1, environment="Nope")


def test_roots_load_from_pem_bundles_and_der_files(tmp_path: Path, chain: AppleTestChain) -> None:
    other = build_chain(name="Other")
    third = build_chain(name="Third")
    bundle = tmp_path / "roots.pem"
    bundle.write_bytes(chain.root_pem + b"\n" + other.root_pem)
    der = third.write_root(tmp_path / "third.cer", pem=False)

    roots = load_root_certificates([bundle, der])

    assert roots == [chain.root_der, other.root_der, third.root_der]
    v = AppleVerifier(root_certificates=roots, bundle_id=BUNDLE_ID, app_apple_id=None, environment="Sandbox", enable_online_checks=False)
    for c in (chain, other, third):
        assert v.verify_transaction(c.sign(transaction_payload())).product_id == "likeness.pro.monthly"
    assert refusal(v, build_chain(name="Fourth").sign(transaction_payload())).reason is (VerificationReason.UNTRUSTED_CHAIN)


def test_unreadable_root_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cer"
    bad.write_bytes(b"not a certificate")
    with pytest.raises(ValueError, match=r"bad\.cer"):
        load_root_certificates([bad])


def test_notification_is_decoded_with_its_transaction_and_renewal(chain: AppleTestChain, verifier: AppleVerifier) -> None:
    signed_txn = chain.sign(transaction_payload(transaction_id="2000000000000077", purchase_date=NOW))
    renewal = chain.sign(
        renewal_payload(
            original_transaction_id="2000000000000077",
            auto_renew=False,
            signed_date=NOW,
            grace_period_expires_date=NOW + timedelta(days=6),
        )
    )
    body = notification_payload(
        notification_type="DID_FAIL_TO_RENEW",
        subtype="GRACE_PERIOD",
        signed_date=NOW,
        signed_transaction=signed_txn,
        signed_renewal=renewal,
        status=4,
    )

    n = verifier.verify_notification(chain.sign(body))

    assert n.notification_uuid == body["notificationUUID"]
    assert (n.notification_type, n.subtype, n.status) == ("DID_FAIL_TO_RENEW", "GRACE_PERIOD", 4)
    assert n.signed_date == NOW
    assert n.environment is StoreEnvironment.SANDBOX
    assert n.transaction is not None and n.transaction.transaction_id == "2000000000000077"
    assert n.renewal is not None
    assert n.renewal.auto_renew is False
    assert n.renewal.grace_period_expires_date == NOW + timedelta(days=6)
    assert n.original_transaction_id == "2000000000000077"


def test_notification_with_untrusted_inner_transaction_is_rejected(chain: AppleTestChain, verifier: AppleVerifier) -> None:
    inner = build_chain(name="Stranger").sign(transaction_payload())
    body = notification_payload(notification_type="DID_RENEW", signed_date=NOW, signed_transaction=inner)
    with pytest.raises(VerificationFailed) as info:
        verifier.verify_notification(chain.sign(body))
    assert info.value.reason is VerificationReason.UNTRUSTED_CHAIN


def test_production_notification_checks_app_apple_id_and_falls_back(chain: AppleTestChain) -> None:
    v = production_verifier(chain)
    wrong_app = notification_payload(notification_type="TEST", signed_date=NOW, environment="Production", app_apple_id=42)
    with pytest.raises(VerificationFailed) as info:
        v.verify_notification(chain.sign(wrong_app))
    assert info.value.reason is VerificationReason.WRONG_APP
    # Sandbox notifications may come without appAppleId; App Review's must still be accepted.
    sandbox = notification_payload(notification_type="TEST", signed_date=NOW, environment="Sandbox", app_apple_id=None)
    assert v.verify_notification(chain.sign(sandbox)).environment is StoreEnvironment.SANDBOX
    production = notification_payload(notification_type="TEST", signed_date=NOW, environment="Production")
    assert v.verify_notification(chain.sign(production)).environment is StoreEnvironment.PRODUCTION


def test_notification_without_uuid_is_rejected(chain: AppleTestChain, verifier: AppleVerifier) -> None:
    body = notification_payload(notification_type="TEST", signed_date=NOW)
    del body["notificationUUID"]
    with pytest.raises(VerificationFailed) as info:
        verifier.verify_notification(chain.sign(body))
    assert info.value.reason is VerificationReason.MALFORMED


def test_renewal_info_is_verified(chain: AppleTestChain, verifier: AppleVerifier) -> None:
    body = renewal_payload(original_transaction_id="2000000000000099", signed_date=NOW, expiration_intent=1)
    info = verifier.verify_renewal_info(chain.sign(body))
    assert (info.original_transaction_id, info.auto_renew, info.expiration_intent) == ("2000000000000099", True, 1)
    with pytest.raises(VerificationFailed):
        verifier.verify_renewal_info(tamper(chain.sign(body), autoRenewStatus=0))
    assert ms(info.signed_date) == body["signedDate"]
