"""PrivacyPort, the data-key and access-log client of every holder: a failure says what privacy's channel answered."""

from __future__ import annotations

import socket

import grpc
import pytest
from structlog.testing import capture_logs

from likeness_platform.clients import RECONNECT_OPTIONS
from likeness_platform.errors import FailedPrecondition, Unavailable
from likeness_platform.privacy_port import PrivacyPort


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


async def test_a_privacy_that_stays_down_is_reported_with_what_the_channel_said() -> None:
    async with grpc.aio.insecure_channel(_closed_port(), options=RECONNECT_OPTIONS) as channel:
        port = PrivacyPort(channel, "render")
        with capture_logs() as logs:
            with pytest.raises(Unavailable, match="not reachable"):
                await port.data_key("s1")
            with pytest.raises(FailedPrecondition) as refused:
                await port.record_access("s1", "result/r1", "download")
    assert refused.value.code == "ACCESS_LOG_UNAVAILABLE"
    failed = [(e["rpc"], e["code"]) for e in logs if e["event"] == "upstream_failed"]
    assert failed == [("GetDataKey", "UNAVAILABLE"), ("RecordAccess", "UNAVAILABLE")]
    assert all(e["upstream"] == "privacy" and e["details"] for e in logs if e["event"] == "upstream_failed")
