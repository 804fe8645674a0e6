"""PrivacyPort, the data-key and access-log client of every holder: a privacy service that is not
connected yet costs a moment's wait, and a failure says what privacy's channel answered."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import grpc
import pytest
from structlog.testing import capture_logs

from likeness.privacy.v1 import privacy_pb2, privacy_pb2_grpc
from likeness_platform.clients import RECONNECT_OPTIONS
from likeness_platform.errors import FailedPrecondition, Unavailable
from likeness_platform.privacy_port import PrivacyPort

KEY = bytes(range(32))


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


class _Privacy(privacy_pb2_grpc.PrivacyServicer):
    def __init__(self) -> None:
        self.accesses: list[str] = []

    async def GetDataKey(self, request: Any, context: Any) -> privacy_pb2.GetDataKeyResponse:
        return privacy_pb2.GetDataKeyResponse(key=KEY, key_id="k1")

    async def RecordAccess(self, request: Any, context: Any) -> privacy_pb2.RecordAccessResponse:
        self.accesses.append(request.resource)
        return privacy_pb2.RecordAccessResponse()


async def test_a_privacy_that_comes_up_after_failed_tries_is_used_at_once() -> None:
    """An upload right after privacy (re)started: the holder's channel tried while it was down and sits in a
    reconnect backoff; the data key and the access-log entry wait for the connection instead of failing."""
    address = _closed_port()
    async with grpc.aio.insecure_channel(address, options=RECONNECT_OPTIONS) as channel:
        started = time.monotonic()
        while time.monotonic() - started < 2.5:  # privacy down: the backoff grows to its 2 s ceiling
            with pytest.raises(Unavailable):
                await PrivacyPort(channel, "ingestion", connect_grace=0.0).data_key("s1")
            await asyncio.sleep(0.3)
        servicer = _Privacy()
        server = grpc.aio.server()
        privacy_pb2_grpc.add_PrivacyServicer_to_server(servicer, server)
        server.add_insecure_port(address)
        await server.start()
        try:
            port = PrivacyPort(channel, "ingestion")
            key = await port.data_key("s1")
            await port.record_access("s1", "upload/u1", "id_photo")
        finally:
            await server.stop(None)
    assert (key.key, key.key_id) == (KEY, "k1")
    assert servicer.accesses == ["upload/u1"]


async def test_a_privacy_that_stays_down_is_reported_with_what_the_channel_said() -> None:
    async with grpc.aio.insecure_channel(_closed_port(), options=RECONNECT_OPTIONS) as channel:
        port = PrivacyPort(channel, "render", connect_grace=0.3)
        started = time.monotonic()
        with capture_logs() as logs:
            with pytest.raises(Unavailable, match="not reachable"):
                await port.data_key("s1")
            with pytest.raises(FailedPrecondition) as refused:
                await port.record_access("s1", "result/r1", "download")
        assert time.monotonic() - started < 5.0  # the grace twice, not a deadline
    assert refused.value.code == "ACCESS_LOG_UNAVAILABLE"
    failed = [(e["rpc"], e["code"]) for e in logs if e["event"] == "upstream_failed"]
    assert failed == [("GetDataKey", "UNAVAILABLE"), ("RecordAccess", "UNAVAILABLE")]
    assert all(e["upstream"] == "privacy" and e["details"] for e in logs if e["event"] == "upstream_failed")
