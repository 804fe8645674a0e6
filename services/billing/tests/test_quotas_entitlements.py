from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from likeness_billing.domain.entitlements import EntitlementKind, compute_entitlements
from likeness_billing.domain.errors import InvalidArgument, QuotaExceeded
from likeness_billing.domain.pseudonyms import check_key, transaction_hash
from likeness_billing.domain.purchases import (
    ProductType,
    canonical_subject_id,
    claimed_subject,
    token_names_other_subject,
)
from likeness_billing.domain.quotas import QuotaPolicy, check_request_id, utc_day
from likeness_billing.domain.subscriptions import fold, snapshot_from_notification

from .domainfactory import LIFECYCLE, day, one_time, txn

SUBJECT = "0b7c1c3e-7a43-4c55-9d4e-5b1e8f0a2c11"


def test_quota_allows_exactly_the_free_allowance() -> None:
    policy = QuotaPolicy(free_daily_allowance=3)
    for used in range(3):
        policy.check(used, unlimited=False)
    with pytest.raises(QuotaExceeded) as info:
        policy.check(3, unlimited=False)
    assert info.value.code == "QUOTA_EXCEEDED"
    assert "00:00 UTC" in info.value.message
    assert policy.remaining(1, unlimited=False) == 2
    assert policy.remaining(5, unlimited=False) == 0


def test_entitled_subjects_are_unlimited() -> None:
    policy = QuotaPolicy(free_daily_allowance=0)
    policy.check(10_000, unlimited=True)
    assert policy.remaining(10_000, unlimited=True) is None
    with pytest.raises(QuotaExceeded):
        policy.check(0, unlimited=False)


def test_negative_allowance_is_refused() -> None:
    with pytest.raises(ValueError):
        QuotaPolicy(free_daily_allowance=-1)


def test_quota_day_is_the_utc_day() -> None:
    late_in_new_york = datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert utc_day(late_in_new_york) == date(2026, 3, 2)
    assert utc_day(datetime(2026, 3, 1, 23, 59, tzinfo=UTC)) == date(2026, 3, 1)
    with pytest.raises(ValueError):
        utc_day(datetime(2026, 3, 1))


def test_request_ids_are_bounded() -> None:
    assert check_request_id("r-1") == "r-1"
    for bad in ("", "x" * 129):
        with pytest.raises(InvalidArgument):
            check_request_id(bad)


def test_subject_ids_are_canonical_uuids() -> None:
    assert canonical_subject_id(SUBJECT.upper()) == SUBJECT
    with pytest.raises(InvalidArgument):
        canonical_subject_id("alice")


def test_app_account_token_binding_rules() -> None:
    mine = txn("1", purchase=day(0), expires=day(30), signed=day(0), token=SUBJECT.upper())
    other = txn("2", purchase=day(0), expires=day(30), signed=day(0), token="9b7c1c3e-7a43-4c55-9d4e-5b1e8f0a2c11")
    junk = txn("3", purchase=day(0), expires=day(30), signed=day(0), token="not-a-uuid")
    none = txn("4", purchase=day(0), expires=day(30), signed=day(0))
    assert not token_names_other_subject(mine, SUBJECT)
    assert token_names_other_subject(other, SUBJECT)
    assert token_names_other_subject(junk, SUBJECT)
    assert not token_names_other_subject(none, SUBJECT)
    assert claimed_subject(mine) == SUBJECT
    assert claimed_subject(junk) is None


def test_entitlements_from_subscriptions_and_lifetime_unlocks() -> None:
    grace = fold(s for s in map(snapshot_from_notification, LIFECYCLE[:3]) if s is not None)
    assert grace is not None
    lifetime = one_time("5", "likeness.lifetime")
    refunded = one_time("6", "likeness.lifetime.old", signed=day(2), revoked_at=day(2))
    credits = one_time("7", "likeness.credits.10", ProductType.CONSUMABLE)

    during_grace = compute_entitlements(SUBJECT, [grace], [lifetime, refunded, credits], day(61))
    after_grace = compute_entitlements(SUBJECT, [grace], [refunded, credits], day(67))

    by_product = {e.product_id: e for e in during_grace.items}
    assert set(by_product) == {"likeness.pro.monthly", "likeness.lifetime", "likeness.lifetime.old"}
    assert by_product["likeness.pro.monthly"].active
    assert by_product["likeness.pro.monthly"].grace_expires_date == day(66)
    assert by_product["likeness.lifetime"].kind is EntitlementKind.LIFETIME
    assert by_product["likeness.lifetime"].active
    assert not by_product["likeness.lifetime.old"].active
    assert during_grace.unlimited
    assert not after_grace.unlimited
    assert [e.active for e in during_grace.items] == sorted((e.active for e in during_grace.items), reverse=True)


def test_transaction_hash_is_keyed() -> None:
    k1, k2 = b"a" * 32, b"b" * 32
    assert transaction_hash(k1, "1000") == transaction_hash(k1, "1000")
    assert transaction_hash(k1, "1000") != transaction_hash(k2, "1000")
    assert transaction_hash(k1, "1000") != transaction_hash(k1, "1001")
    with pytest.raises(ValueError):
        check_key(b"short")
