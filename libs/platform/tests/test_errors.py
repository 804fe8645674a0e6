"""Error kinds are transport-free; the interceptor is the one place that maps them to gRPC status codes."""

from __future__ import annotations

from typing import Any

import grpc

from likeness_platform import errors
from likeness_platform.interceptors import GRPC_STATUS, grpc_status


def test_every_kind_has_a_status_and_no_two_kinds_share_one() -> None:
    assert set(GRPC_STATUS) == set(errors.ErrorKind)
    assert len(set(GRPC_STATUS.values())) == len(errors.ErrorKind)


def test_domain_errors_map_by_kind_and_keep_their_code() -> None:
    assert grpc_status(errors.InvalidArgument("bad")) is grpc.StatusCode.INVALID_ARGUMENT
    assert grpc_status(errors.NotFound("gone")) is grpc.StatusCode.NOT_FOUND
    assert grpc_status(errors.ResourceExhausted("slow down")) is grpc.StatusCode.RESOURCE_EXHAUSTED
    erasing = errors.SubjectErasing("erasing")
    assert (erasing.kind, erasing.code, grpc_status(erasing)) == (
        errors.ErrorKind.FAILED_PRECONDITION,
        "SUBJECT_ERASING",
        grpc.StatusCode.FAILED_PRECONDITION,
    )


def test_anything_else_is_internal() -> None:
    assert grpc_status(ValueError("boom")) is grpc.StatusCode.INTERNAL
    assert grpc_status(errors.DomainError("unclassified")) is grpc.StatusCode.INTERNAL


def test_the_errors_module_does_not_import_grpc() -> None:
    assert "grpc" not in vars(errors)


async def test_an_unexpected_error_is_logged_by_type_and_place_not_by_its_message(one_method: Any) -> None:
    """An exception's text can quote what the caller sent (a file name, a SQL parameter); the log keeps only where."""
    import io
    import json

    from likeness_platform.interceptors import ServerInterceptor
    from likeness_platform.logging import configure_logging

    secret = "holiday-photo-of-anna-smith.jpg"

    async def explode(request: bytes, context: object) -> bytes:
        raise ValueError(f"cannot open {secret}")

    out = io.StringIO()
    configure_logging("test", "info", stream=out)
    async with one_method(ServerInterceptor("test"), "/test.Boom/Go", explode) as call:
        try:
            await call(b"x", timeout=5)
            raise AssertionError("the call should fail")
        except grpc.aio.AioRpcError as err:
            assert err.code() is grpc.StatusCode.INTERNAL
            assert secret not in (err.details() or "")
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    failed = [line for line in lines if line.get("event") == "rpc_failed"]
    assert failed and failed[0]["error"] == "ValueError"
    assert failed[0]["where"].startswith("test_errors.py:")
    assert secret not in out.getvalue()
