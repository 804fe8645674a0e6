"""Render's clients of ingestion and faces: an upstream that fails says so in render's log.

The caller (the gateway, then the app) only hears that render is not available; which upstream
failed, and with what status, is for the operator, in render's log.
"""

from __future__ import annotations

import socket

import grpc
import pytest
from structlog.testing import capture_logs

from likeness.common.v1 import common_pb2
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
            await FacesClient(channel).analyze(b"\xff\xd8 not read")
    failed = [entry for entry in logs if entry["event"] == "upstream_failed"]
    assert len(failed) == 1
    assert failed[0]["upstream"] == "faces" and failed[0]["code"] == "UNAVAILABLE" and failed[0]["log_level"] == "warning"


async def test_an_ingestion_service_that_cannot_be_reached_is_logged_by_name() -> None:
    async with grpc.aio.insecure_channel(_closed_port()) as channel:
        with capture_logs() as logs, pytest.raises(Unavailable):
            await ImageSource(channel).read(common_pb2.ImageRef(upload_id="u1"), "subject-1", "id_photo")
    assert [(e["upstream"], e["code"]) for e in logs if e["event"] == "upstream_failed"] == [("ingestion", "UNAVAILABLE")]


async def test_the_callers_own_mistakes_are_not_logged_as_upstream_failures() -> None:
    async with grpc.aio.insecure_channel(_closed_port()) as channel:
        with capture_logs() as logs, pytest.raises(InvalidArgument, match="empty"):
            await ImageSource(channel).read(common_pb2.ImageRef(data=b""), "subject-1", "id_photo")
    assert not [e for e in logs if e["event"] == "upstream_failed"]
