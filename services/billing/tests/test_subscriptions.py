from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from likeness_billing.domain.purchases import Notification, ProductType
from likeness_billing.domain.subscriptions import (
    Snapshot,
    Subscription,
    SubscriptionStatus,
    fold,
    reduce,
    snapshot_from_notification,
    snapshot_from_transaction,
)

from .domainfactory import (
    C_REFUNDED,
    LIFECYCLE,
    A,
    B,
    C,
    day,
    note,
    one_time,
    txn,
)


def snaps(notifications: list[Notification] | tuple[Notification, ...]) -> list[Snapshot]:
    out = []
    for n in notifications:
        s = snapshot_from_notification(n)
        assert s is not None
        out.append(s)
    return out


def state_of(notifications: list[Notification] | tuple[Notification, ...]) -> Subscription:
    state = fold(snaps(notifications))
    assert state is not None
    return state


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[Notification], list[Notification]]:
    """A subset of the lifecycle, and the same set delivered shuffled and with repeats."""
    chosen = draw(st.sets(st.sampled_from(range(len(LIFECYCLE))), min_size=1))
    events = [LIFECYCLE[i] for i in sorted(chosen)]
    repeats = draw(st.lists(st.sampled_from(events), max_size=2 * len(events)))
    delivered = draw(st.permutations(events + repeats))
    return events, delivered


@settings(max_examples=300, deadline=None)
@given(deliveries())
def test_any_order_and_any_duplicates_reach_the_same_state(
    case: tuple[list[Notification], list[Notification]],
) -> None:
    in_order, delivered = case
    expected = state_of(in_order)
    assert state_of(delivered) == expected
    # Independent oracle: the status is the one stated by the newest notification.
    newest = max(in_order, key=lambda n: n.signed_date)
    assert expected.status is SubscriptionStatus.from_apple(newest.status or 0)
    # A refund, once seen, is never undone by an older copy of the transaction.
    if any(n.notification_type == "REFUND" for n in in_order):
        refunded = {t.transaction_id: t for t in expected.transactions}[C.transaction_id]
        assert refunded.revoked


def test_full_lifecycle_steps_through_each_state() -> None:
    expectations = [
        (SubscriptionStatus.ACTIVE, True, day(1)),
        (SubscriptionStatus.ACTIVE, True, day(31)),
        (SubscriptionStatus.GRACE, True, day(61)),
        (SubscriptionStatus.ACTIVE, True, day(63)),
        (SubscriptionStatus.ACTIVE, True, day(71)),
        (SubscriptionStatus.REVOKED, False, day(76)),
        (SubscriptionStatus.REVOKED, False, day(93)),
    ]
    state: Subscription | None = None
    for n, (status, entitled, at) in zip(LIFECYCLE, expectations, strict=True):
        snapshot = snapshot_from_notification(n)
        assert snapshot is not None
        state = reduce(state, snapshot)
        assert (state.status, state.entitled(at)) == (status, entitled), n.notification_type
    assert state is not None
    assert state.will_renew is False
    assert state.expires_date == day(60)  # C is refunded; B is the furthest paid period


def test_refund_wins_over_a_later_arriving_older_renewal() -> None:
    renew_c = LIFECYCLE[3]
    refund_c = LIFECYCLE[5]
    state = state_of([LIFECYCLE[0], refund_c, renew_c])
    assert state.status is SubscriptionStatus.REVOKED
    assert not state.entitled(day(80))
    assert {t.transaction_id: t for t in state.transactions}[C.transaction_id].revoked


def test_a_newer_renewal_after_a_refund_reactivates() -> None:
    d = txn("1000000000000004", purchase=day(100), expires=day(130), signed=day(100))
    state = state_of([LIFECYCLE[5], note("SUBSCRIBED", "RESUBSCRIBE", day(100), d, status=1)])
    assert state.status is SubscriptionStatus.ACTIVE
    assert state.entitled(day(101))
    assert state.expires_date == day(130)


def test_refund_of_an_old_period_keeps_the_current_one() -> None:
    a_refunded = txn(A.transaction_id, purchase=day(0), expires=day(30), signed=day(40), revoked_at=day(40))
    state = state_of([LIFECYCLE[0], LIFECYCLE[1], note("REFUND", None, day(40), a_refunded, status=1)])
    assert state.status is SubscriptionStatus.ACTIVE
    assert state.expires_date == day(60)
    assert state.entitled(day(45))


def test_grace_entitles_until_grace_expiry_only() -> None:
    state = state_of(list(LIFECYCLE[:3]))
    assert state.status is SubscriptionStatus.GRACE
    assert state.grace_expires_date == day(66)
    assert state.entitled(day(65))
    assert not state.entitled(day(66))


def test_billing_retry_and_expired_are_not_entitled() -> None:
    retry = note("DID_FAIL_TO_RENEW", None, day(60), B, status=3)
    assert state_of([LIFECYCLE[1], retry]).status is SubscriptionStatus.BILLING_RETRY
    assert not state_of([LIFECYCLE[1], retry]).entitled(day(59))
    expired = note("EXPIRED", "VOLUNTARY", day(60), B, status=2, auto_renew=False)
    assert not state_of([LIFECYCLE[1], expired]).entitled(day(59))


def test_active_claim_with_a_past_expiry_is_not_entitled() -> None:
    state = state_of([LIFECYCLE[1]])
    assert state.status is SubscriptionStatus.ACTIVE
    assert state.entitled(day(59))
    assert not state.entitled(day(60))


def test_status_is_derived_when_apple_leaves_it_out() -> None:
    cases = [
        (note("DID_FAIL_TO_RENEW", "GRACE_PERIOD", day(60), B, status=None), SubscriptionStatus.GRACE),
        (note("DID_FAIL_TO_RENEW", None, day(60), B, status=None), SubscriptionStatus.BILLING_RETRY),
        (note("GRACE_PERIOD_EXPIRED", None, day(66), B, status=None), SubscriptionStatus.BILLING_RETRY),
        (note("EXPIRED", "VOLUNTARY", day(60), B, status=None), SubscriptionStatus.EXPIRED),
        (note("REVOKE", None, day(40), B, status=None), SubscriptionStatus.REVOKED),
        (note("DID_RENEW", None, day(30), B, status=None), SubscriptionStatus.ACTIVE),
    ]
    for n, status in cases:
        assert state_of([n]).status is status, n.notification_type
    auto_off = note("DID_CHANGE_RENEWAL_STATUS", "AUTO_RENEW_DISABLED", day(40), B, status=None, auto_renew=None)
    assert state_of([auto_off]).will_renew is False


def test_notifications_without_subscription_data_make_no_snapshot() -> None:
    consumable = one_time("1000000000000009", "likeness.pro.monthly", ProductType.CONSUMABLE)
    assert snapshot_from_notification(note("REFUND", None, day(2), consumable, status=None)) is None
    assert snapshot_from_notification(note("TEST", None, day(2), None, status=None)) is None


def test_equal_signed_dates_resolve_pessimistically_in_any_order() -> None:
    renew = note("DID_RENEW", None, day(30), B, status=1)
    revoke = note("REVOKE", None, day(30), B, status=5)
    assert state_of([renew, revoke]) == state_of([revoke, renew])
    assert state_of([renew, revoke]).status is SubscriptionStatus.REVOKED


def test_app_sent_transactions_claim_only_what_they_prove() -> None:
    # Lapsed at signing: says nothing about status, so grace reported by Apple survives it.
    lapsed_b = txn(B.transaction_id, purchase=day(30), expires=day(60), signed=day(61))
    state = reduce(state_of(list(LIFECYCLE[:3])), snapshot_from_transaction(lapsed_b))
    assert state.status is SubscriptionStatus.GRACE
    # Paid beyond its signing time: active, and newer than Apple's expiry notice.
    expired = state_of([note("EXPIRED", "VOLUNTARY", day(60), B, status=2, auto_renew=False)])
    fresh = txn("1000000000000005", purchase=day(65), expires=day(95), signed=day(65))
    state = reduce(expired, snapshot_from_transaction(fresh))
    assert (state.status, state.will_renew, state.entitled(day(66))) == (SubscriptionStatus.ACTIVE, True, True)
    # Revoked copy: revoked.
    assert reduce(None, snapshot_from_transaction(C_REFUNDED)).status is SubscriptionStatus.REVOKED
    # Known only from a lapsed copy: expired, not entitled.
    only = reduce(None, snapshot_from_transaction(lapsed_b))
    assert (only.status, only.last_signed_date, only.entitled(day(0))) == (SubscriptionStatus.EXPIRED, None, False)


def test_renewal_extension_moves_expiry_of_the_same_transaction() -> None:
    extended = txn(B.transaction_id, purchase=day(30), expires=day(67), signed=day(50))
    state = state_of([LIFECYCLE[1], note("RENEWAL_EXTENDED", None, day(50), extended, status=1)])
    assert state.expires_date == day(67)
    assert state.entitled(day(66))


def test_reduce_refuses_a_snapshot_of_another_subscription() -> None:
    other = txn("1000000000000777", purchase=day(0), expires=day(30), signed=day(0), original="1000000000000777")
    with pytest.raises(ValueError):
        reduce(state_of([LIFECYCLE[0]]), snapshot_from_transaction(other))
