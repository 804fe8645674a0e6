"""Render's clients of ingestion and faces: an upstream that fails says so in render's log.

The caller (the gateway, then the app) only hears that render is not available; which upstream
failed, and with what status, is for the operator, in render's log.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import grpc
import pytest
from structlog.testing import capture_logs

from likeness.common.v1 import common_pb2
from likeness.faces.v1 import faces_pb2, faces_pb2_grpc
from likeness_platform.clients import RECONNECT_OPTIONS
from likeness_platform.errors import InvalidArgument, Unavailable
from likeness_render.adapters.upstreams import FacesClient, ImageSource


def _closed_port() -> str:
    """An address nobody listens on: a connection there is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


async def test_a_faces_service_that_cannot_be_reached_is_logged_by_name() -> None:
    async with grpc.aio.insecure_channel(_closed_port()) as channel:
        with capture_logs() as logs, pytest.raises(Unavailable, match="not available"):
            await FacesClient(channel, connect_grace=0.2).analyze(b"\xff\xd8 not read")
    failed = [entry for entry in logs if entry["event"] == "upstream_failed"]
    assert len(failed) == 1
    assert failed[0]["upstream"] == "faces" and failed[0]["code"] == "UNAVAILABLE" and failed[0]["log_level"] == "warning"


async def test_an_ingestion_service_that_cannot_be_reached_is_logged_by_name() -> None:
    async with grpc.aio.insecure_channel(_closed_port()) as channel:
        with capture_logs() as logs, pytest.raises(Unavailable):
            await ImageSource(channel, connect_grace=0.2).read(common_pb2.ImageRef(upload_id="u1"), "subject-1", "id_photo")
    assert [(e["upstream"], e["code"]) for e in logs if e["event"] == "upstream_failed"] == [("ingestion", "UNAVAILABLE")]


async def test_the_callers_own_mistakes_are_not_logged_as_upstream_failures() -> None:
    async with grpc.aio.insecure_channel(_closed_port()) as channel:
        with capture_logs() as logs, pytest.raises(InvalidArgument, match="empty"):
            await ImageSource(channel, connect_grace=0.2).read(common_pb2.ImageRef(data=b""), "subject-1", "id_photo")
    assert not [e for e in logs if e["event"] == "upstream_failed"]


class _Faces(faces_pb2_grpc.FacesServicer):
    async def Analyze(self, request: Any, context: Any) -> faces_pb2.AnalyzeResponse:
        return faces_pb2.AnalyzeResponse(width=7, height=5)


async def test_a_faces_service_that_comes_up_after_a_failed_try_is_used_at_once() -> None:
    """The first ID photo after a start: render's channel tried faces before it was serving (the
    demo templates' meshes), so it sits in a reconnect backoff of up to 2 s when faces comes up.
    The call waits for the connection instead of failing at once with UNAVAILABLE."""
    address = _closed_port()
    async with grpc.aio.insecure_channel(address, options=RECONNECT_OPTIONS) as channel:
        client = FacesClient(channel)
        started = time.monotonic()
        while time.monotonic() - started < 2.5:  # tries while faces is down: the backoff grows to its 2 s ceiling
            with pytest.raises(Unavailable):
                await FacesClient(channel, connect_grace=0.0).analyze(b"x")
            await asyncio.sleep(0.3)
        server = grpc.aio.server()
        faces_pb2_grpc.add_FacesServicer_to_server(_Faces(), server)
        server.add_insecure_port(address)
        await server.start()
        try:
            reply = await client.analyze(b"x")
        finally:
            await server.stop(None)
    assert (reply.width, reply.height) == (7, 5)


async def test_a_faces_service_that_stays_down_costs_the_grace_not_the_deadline() -> None:
    async with grpc.aio.insecure_channel(_closed_port(), options=RECONNECT_OPTIONS) as channel:
        started = time.monotonic()
        with pytest.raises(Unavailable):
            await FacesClient(channel, connect_grace=0.5).analyze(b"x")
        assert 0.4 < time.monotonic() - started < 5.0
