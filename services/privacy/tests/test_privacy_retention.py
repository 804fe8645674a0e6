"""Retention periods and the retry backoff of an unreachable holder."""

from __future__ import annotations

from datetime import timedelta

import pytest

from likeness_privacy.domain.retention import RETENTION, backoff_seconds


def test_images_are_kept_at_most_a_day_and_records_as_the_policies_state() -> None:
    assert RETENTION["uploads"] == RETENTION["results"] == timedelta(hours=24)
    assert RETENTION["exports"] == timedelta(hours=1)
    assert RETENTION["security_events"] == timedelta(days=30)
    assert RETENTION["generation_records"] == timedelta(days=90)
    assert RETENTION["access_log"] == timedelta(days=365)


@pytest.mark.parametrize(("attempts", "expected"), [(0, 0.5), (1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (60, 30.0)])
def test_backoff_doubles_from_the_base_up_to_the_cap(attempts: int, expected: float) -> None:
    assert backoff_seconds(attempts, 0.5, 30.0) == expected
