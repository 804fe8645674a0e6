"""Remote holders report failures as domain errors: use cases never see grpc, callers never see transport details."""

from __future__ import annotations

from pathlib import Path

import pytest

from likeness_platform.devpki import DevPki
from likeness_platform.settings import ServiceSettings
from likeness_privacy.adapters.holders import RemoteHolder
from likeness_privacy.domain.errors import HolderCallFailed, describe_error


async def test_an_unreachable_holder_fails_with_a_domain_error(tmp_path: Path) -> None:
    settings = ServiceSettings(**DevPki(tmp_path).ensure("privacy").settings())
    holder = RemoteHolder("notes", "127.0.0.1:1", settings, timeout=2.0)
    try:
        with pytest.raises(HolderCallFailed) as inventory:
            await holder.inventory("subject")
        with pytest.raises(HolderCallFailed):
            [item async for item in holder.export("subject")]
    finally:
        await holder.close()
    failure = inventory.value
    assert (failure.holder, failure.status, failure.code) == ("notes", "UNAVAILABLE", "HOLDER_UNAVAILABLE")
    assert describe_error(failure).startswith("UNAVAILABLE: ") and failure.detail in describe_error(failure)
    assert "127.0.0.1" not in failure.message and failure.message == "the notes service did not answer; try again"


def test_other_failures_are_described_by_type_only() -> None:
    assert describe_error(ValueError("secret detail")) == "ValueError"
